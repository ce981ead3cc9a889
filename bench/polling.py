"""Polling at scale: one poll round over N running jobs, and how fast users are answered meanwhile.

The database is seeded with N jobs already running on the fake muapi (each with its status
message in the fake Telegram), all due at once; then the real bot process starts. A round runs
from the first status request the provider receives until every job has been written back with
its next due time. While it runs, new users send a message each and the time until the bot
answers them is recorded. The naive baseline is the same bot polling one job after another
(``MAX_CONCURRENT_POLLS=1``); for the biggest size it runs for a while and the rest is
extrapolated from its rate.

    python -m bench.polling                # 100, 1,000 and 10,000 jobs
    python -m bench.polling --jobs 100 300 # smaller, quicker
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    BotRunner,
    Proc,
    Row,
    percentile,
    save,
    seed_running_jobs,
    wait_until,
    workdir,
)
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram

KEY = "bench-muapi-key-0000"
TOKEN = "123456:BENCHbenchBENCHbenchBENCHbench12345"
PROVIDER_LATENCY = 0.05
FIRST_USER = 1_000_000
ASKER = 5_000_000  # users who write while the round runs
ASK_EVERY = 0.1  # 10 people a second: well inside Telegram's 30 sends a second
MIN_ASKS = 10
TARGET_ROUND_1000 = 2.0
TARGET_ACK_P99 = 0.25


@dataclass
class Round:
    jobs: int
    polled: int
    wall: float
    cpu: float
    acks: list[float] = field(default_factory=list)
    extrapolated: bool = False


async def seed(db_path: Path, tg: FakeTelegram, muapi: FakeMuapi, count: int) -> None:
    """N running jobs, one per user, all due now and never finishing during the round."""
    users = range(FIRST_USER, FIRST_USER + count)
    await seed_running_jobs(db_path, tg, muapi, users, Scenario(polls_before_done=10**9), 0.0)


def polled_back(db_path: Path, since: float) -> int:
    """Jobs written back with a due time after ``since``: their poll is complete."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE state = 'running' AND next_poll_at > ?", (since,)
        ).fetchone()
    return int(n)


async def one_round(count: int, concurrency: int | None, cap: float | None) -> Round:
    """Seed, start the bot, measure one round; ``cap`` stops a slow round early."""
    with workdir("polling") as folder:
        async with FakeTelegram(token=TOKEN) as tg, FakeMuapi(api_key=KEY) as muapi:
            muapi.poll_delay = PROVIDER_LATENCY
            db_path = folder / "bot.db"
            await seed(db_path, tg, muapi, count)
            env = {
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": tg.root,
                "MUAPI_API_KEY": KEY,
                "MUAPI_BASE_URL": muapi.root,
                "POLL_INTERVAL_SECONDS": "600",  # exactly one round in the window
                "JOB_TIMEOUT_SECONDS": "3600",
                "LEASE_SECONDS": "120",
            }
            if concurrency is not None:
                env["MAX_CONCURRENT_POLLS"] = str(concurrency)
            bot = BotRunner(folder, **env)
            seeded_at = time.time()
            proc = await bot.start()
            try:
                return await measure(tg, muapi, proc, db_path, count, seeded_at, cap)
            except Exception:
                print(bot.log_tail())
                raise
            finally:
                await bot.stop()


async def measure(
    tg: FakeTelegram,
    muapi: FakeMuapi,
    proc: Proc,
    db_path: Path,
    count: int,
    seeded_at: float,
    cap: float | None,
) -> Round:
    await wait_until(lambda: muapi.answered_polls, 60, every=0.002, what="the first poll")
    started = muapi.answered_polls[0][0] - PROVIDER_LATENCY
    cpu0 = proc.cpu_seconds()
    asked: dict[int, float] = {}
    done = 0
    while True:
        now = time.monotonic()
        done = polled_back(db_path, seeded_at + 60)
        if done >= count or (cap is not None and now - started > cap):
            break
        uid = ASKER + len(asked)
        asked[uid] = time.monotonic()
        tg.user_message(uid, text="hello")
        await asyncio.sleep(ASK_EVERY)
    ended = time.monotonic()
    cpu = proc.cpu_seconds() - cpu0
    while len(asked) < MIN_ASKS:  # a round shorter than the sampling: ask right after it
        uid = ASKER + len(asked)
        asked[uid] = time.monotonic()
        tg.user_message(uid, text="hello")
        await asyncio.sleep(ASK_EVERY)
    await wait_until(
        lambda: all(tg.messages(uid) for uid in asked), 120, what="answers to every user"
    )
    first_reply = {}
    for call in tg.calls_to("sendMessage"):
        chat = call.params.get("chat_id")
        if chat in asked and chat not in first_reply:
            first_reply[chat] = call.at
    acks = [first_reply[uid] - at for uid, at in asked.items()]
    wall = ended - started
    if done < count:  # capped: the rest at the rate seen so far
        return Round(count, done, wall * count / max(done, 1), cpu * count / max(done, 1),
                     acks, extrapolated=True)  # fmt: skip
    return Round(count, done, wall, cpu, acks)


async def run(sizes: list[int], baseline_cap: float = 25.0) -> list[Row]:
    rows: list[Row] = []
    for count in sizes:
        bot = await one_round(count, None, cap=None)
        naive = await one_round(count, 1, cap=baseline_cap)
        case = f"{count:,} jobs"
        note = "baseline extrapolated" if naive.extrapolated else ""
        target = f"< {TARGET_ROUND_1000:g} s" if count == 1000 else None
        rows += [
            Row("polling", case, "round wall time", bot.wall, "s", naive.wall, target,
                bot.wall < TARGET_ROUND_1000 if count == 1000 else None, note),
            Row("polling", case, "round CPU", bot.cpu, "s", naive.cpu, note=note),
            Row("polling", case, "jobs polled per second", count / bot.wall, "/s",
                count / naive.wall, note=note),
            Row("polling", case, "answer p50 during the round", percentile(bot.acks, 50) * 1000,
                "ms", percentile(naive.acks, 50) * 1000),
            Row("polling", case, "answer p99 during the round", percentile(bot.acks, 99) * 1000,
                "ms", percentile(naive.acks, 99) * 1000, f"< {TARGET_ACK_P99 * 1000:.0f} ms",
                percentile(bot.acks, 99) < TARGET_ACK_P99, f"{len(bot.acks)} messages"),
        ]  # fmt: skip
        print(
            f"{case}: round {bot.wall:.2f} s (naive {naive.wall:.1f} s), cpu {bot.cpu:.2f} s, "
            f"answers p50 {percentile(bot.acks, 50) * 1000:.0f} ms "
            f"p99 {percentile(bot.acks, 99) * 1000:.0f} ms over {len(bot.acks)}",
            flush=True,
        )
    save("polling", rows, {"jobs": sizes, "provider_latency_s": PROVIDER_LATENCY})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--baseline-cap", type=float, default=25.0, help="seconds")
    args = parser.parse_args()
    asyncio.run(run(args.jobs, args.baseline_cap))


if __name__ == "__main__":
    main()
