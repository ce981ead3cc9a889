"""Idle cost: the bot's resident memory and CPU while it waits, with 0 and with 1,000 jobs.

Between poller ticks the bot should cost next to nothing, however many jobs are running on the
provider: a small VM hosts it alongside other things.

How: the real bot process starts against the fake Telegram and the fake muapi (a provider key
set, so the poller is live). With no jobs it settles for a few seconds of long polling; with
1,000 jobs the database is seeded exactly as in the polling benchmark (each job running on
muapi with its status message), ``POLL_INTERVAL_SECONDS`` is 600 and the first poll round is
waited out, so that nothing is due while measuring. Then, over a window (10 s), resident memory
is sampled (the median is reported) and CPU is the process's user+system seconds over the
window's wall time, as a percentage of one core (from each thread's schedstat, to the
nanosecond; stat's 10 ms clock ticks are too coarse for an idle process).

The baseline is the framework alone: a bare python-telegram-bot ``Application`` (same version,
same ``base_url`` shape as the bot) long-polling the same fake with no handlers, measured the
same way. It serves as the baseline for both cases.

    python -m bench.idle           # 0 and 1,000 running jobs
    python -m bench.idle --quick   # 0 and 200 running jobs, 4 s windows
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench.common import ROOT, BotRunner, Proc, Row, median, save, wait_until, workdir
from bench.polling import polled_back, seed
from tests.fakes.muapi import FakeMuapi
from tests.fakes.telegram import FakeTelegram

KEY = "bench-muapi-key-0000"
TOKEN = "123456:BENCHbenchBENCHbenchBENCHbench12345"
PROVIDER_LATENCY = 0.05
SETTLE = 3.0  # seconds after the first getUpdates (or the end of the round) before measuring
ROUND_TIMEOUT = 600.0
SAMPLE_EVERY = 0.25


@dataclass(frozen=True)
class Reading:
    """Resident memory (MB, median over the window) and CPU (% of one core) while idle."""

    rss: float
    cpu: float
    window: float
    api_calls: int  # Bot API calls the fake Telegram received during the window
    polls: int  # status polls the fake provider received during the window
    wait: float = 0.0  # seconds from start until the window could begin


def cpu_ns(proc: Proc) -> dict[str, int]:
    """Nanoseconds on a CPU per thread, from schedstat: far finer than stat's clock ticks."""
    spent: dict[str, int] = {}
    for task in Path(f"/proc/{proc.pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            spent[task.name] = int((task / "schedstat").read_text().split()[0])
    return spent


async def measure(
    proc: Proc, seconds: float, tg: FakeTelegram, muapi: FakeMuapi | None = None
) -> Reading:
    """Sample ``proc`` over a window of ``seconds``."""
    calls = len(tg.calls)
    polls = len(muapi.answered_polls) if muapi else 0
    samples: list[float] = []
    t0, ticks0, ns0 = time.monotonic(), proc.cpu_seconds(), cpu_ns(proc)
    while (now := time.monotonic()) - t0 < seconds:
        samples.append(proc.rss_mb())
        await asyncio.sleep(min(SAMPLE_EVERY, max(0.0, seconds - (now - t0))))
    wall, ticks, ns = time.monotonic() - t0, proc.cpu_seconds() - ticks0, cpu_ns(proc)
    # A thread that ended within the window takes its time with it: then only stat will do.
    precise = ns0.keys() <= ns.keys() and sum(ns.values()) > 0
    cpu = sum(ns[t] - ns0.get(t, 0) for t in ns) / 1e9 if precise else ticks
    return Reading(
        rss=median(samples),
        cpu=100 * cpu / wall,
        window=wall,
        api_calls=len(tg.calls) - calls,
        polls=len(muapi.answered_polls) - polls if muapi else 0,
    )


# --- the bot ----------------------------------------------------------------------------------


async def bot_idle(jobs: int, window: float) -> Reading:
    """Start the bot with ``jobs`` running jobs, let it go quiet, and measure it."""
    with workdir("idle") as folder:
        async with FakeTelegram(token=TOKEN) as tg, FakeMuapi(api_key=KEY) as muapi:
            muapi.poll_delay = PROVIDER_LATENCY
            db_path = folder / "bot.db"
            if jobs:
                await seed(db_path, tg, muapi, jobs)
            bot = BotRunner(
                folder,
                TELEGRAM_BOT_TOKEN=TOKEN,
                TELEGRAM_API_URL=tg.root,
                MUAPI_API_KEY=KEY,
                MUAPI_BASE_URL=muapi.root,
                POLL_INTERVAL_SECONDS="600",  # after the first round nothing is due for 10 min
                JOB_TIMEOUT_SECONDS="3600",
                LEASE_SECONDS="120",
            )
            seeded_at = time.time()
            started = time.monotonic()
            proc = await bot.start()
            try:
                await wait_until(lambda: tg.calls_to("getUpdates"), 60, what="the first getUpdates")
                if jobs:
                    await wait_until(
                        lambda: polled_back(db_path, seeded_at + 60) >= jobs, ROUND_TIMEOUT,
                        every=0.1, what="the first poll round",
                    )  # fmt: skip
                await asyncio.sleep(SETTLE)
                wait = time.monotonic() - started
                reading = await measure(proc, window, tg, muapi)
                return replace(reading, wait=wait)
            except Exception:
                print(bot.log_tail(), file=sys.stderr)
                raise
            finally:
                await bot.stop()


# --- the baseline -----------------------------------------------------------------------------

BARE = """
import sys
from telegram.ext import Application

root, token = sys.argv[1:3]
app = (
    Application.builder()
    .token(token)
    .base_url(f"{root}/bot")
    .base_file_url(f"{root}/file/bot")
    .get_updates_read_timeout(30)
    .build()
)
app.run_polling(allowed_updates=["message", "callback_query"], drop_pending_updates=False)
"""


async def bare_idle(window: float) -> Reading:
    """A handler-less python-telegram-bot Application long-polling the fake."""
    async with FakeTelegram(token=TOKEN) as tg:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", BARE, tg.root, TOKEN, cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            started = time.monotonic()
            await wait_until(lambda: tg.calls_to("getUpdates"), 60, what="the first getUpdates")
            await asyncio.sleep(SETTLE)
            wait = time.monotonic() - started
            reading = await measure(Proc(child.pid), window, tg)
            return replace(reading, wait=wait)
        finally:
            await _stop(child)


async def _stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(child.communicate(), 20)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()


# --- running ----------------------------------------------------------------------------------


def _rows(case: str, bot: Reading, bare: Reading) -> list[Row]:
    note = f"{bot.window:.0f} s window, {bot.api_calls} Bot API calls, {bot.polls} polls in it"
    return [
        Row("idle", case, "resident memory", bot.rss, "MB", bare.rss, note=note),
        Row("idle", case, "CPU", bot.cpu, "% of one core", bare.cpu, note=note),
    ]


async def run(quick: bool = False) -> list[Row]:
    """Measure the baseline and both cases, save the rows and return them."""
    window = 4.0 if quick else 10.0
    many = 200 if quick else 1000
    bare = await bare_idle(window)
    print(
        f"bare python-telegram-bot: {bare.rss:.1f} MB, CPU {bare.cpu:.3f}% of one core",
        flush=True,
    )
    rows: list[Row] = []
    for jobs in (0, many):
        bot = await bot_idle(jobs, window)
        case = f"{jobs:,} running jobs" if jobs else "0 jobs"
        rows += _rows(case, bot, bare)
        print(
            f"{case}: {bot.rss:.1f} MB, CPU {bot.cpu:.3f}% of one core over {bot.window:.0f} s "
            f"({bot.api_calls} Bot API calls, {bot.polls} polls; ready after {bot.wait:.1f} s)",
            flush=True,
        )
    params = {
        "quick": quick,
        "window_s": window,
        "jobs": [0, many],
        "poll_interval_s": 600,
        "provider_latency_s": PROVIDER_LATENCY,
    }
    save("idle", rows, params)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 jobs and 4 s windows")
    args = parser.parse_args()
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
