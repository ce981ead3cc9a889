"""A crowd: N people each send a photo at the same moment; when is each one first answered?

The fake Bot API behaves like Telegram: ``getFile`` and the file download take a few hundred
milliseconds each, and sends beyond 30 a second overall, or beyond one a second in a chat after a
short burst, get 429. Each person sends a photo with a caption; the bot fetches it and answers
with the confirm card. Measured: the time from the photos' arrival until each person's first
answer (p50, p95, max) and the 429 answers. The floor is one file fetch (``getFile`` plus the
download) plus N/30 s for the answers themselves at Telegram's overall rate. The naive baseline
is the same bot handling updates one at a time (``CONCURRENT_UPDATES=1``), so every photo waits
for the fetches of the photos before it.

    python -m bench.crowd                 # 30 and 100 people
    python -m bench.crowd --people 30     # one size
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import BotRunner, Row, percentile, save, wait_until, workdir
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_photo

TOKEN = "123456:BENCHbenchBENCHbenchBENCHbench12345"
FIRST_USER = 3_000_000
TELEGRAM_RATE = 30  # sends a second, Telegram's overall limit for a bot
FILE_LATENCY = 0.3  # seconds, for getFile and again for the download
TARGET = 1.5  # × the floor, for the last person


@dataclass
class Crowd:
    waits: list[float]  # seconds until each person's first answer
    floods: int

    @property
    def everyone(self) -> float:
        return max(self.waits) if self.waits else float("inf")


async def one_crowd(people: int, folder: Path, *, one_at_a_time: bool) -> Crowd:
    """Run the bot against a Telegram-like fake and let ``people`` send a photo at once."""
    photo = make_photo(folder / "photo.jpg", 1280, 720).read_bytes()
    telegram = FakeTelegram(
        token=TOKEN,
        flood_limit_per_second=TELEGRAM_RATE,
        chat_limit_per_second=1.0,
        file_latency=FILE_LATENCY,
    )
    async with telegram as tg:
        env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.root}
        if one_at_a_time:
            env["CONCURRENT_UPDATES"] = "1"
        run = folder / f"{'naive' if one_at_a_time else 'bot'}-{people}"
        run.mkdir()
        bot = BotRunner(run, **env)
        await bot.start()
        try:
            await wait_until(lambda: tg.calls_to("getUpdates"), 30, what="the bot to start")
            users = [FIRST_USER + i for i in range(people)]
            start = time.monotonic()
            for uid in users:
                tg.user_message(uid, photo=photo, caption="zoom in")
            answered: dict[int, float] = {}
            deadline = start + 30 + people * 4 * FILE_LATENCY
            while len(answered) < people and time.monotonic() < deadline:
                now = time.monotonic()
                for uid in users:
                    if uid not in answered and tg.messages(uid):
                        answered[uid] = now - start
                await asyncio.sleep(0.005)
            if len(answered) < people:
                raise TimeoutError(f"only {len(answered)} of {people} people were answered")
            return Crowd(sorted(answered.values()), tg.flood_429_count)
        except Exception:
            print(bot.log_tail())
            raise
        finally:
            await bot.stop()


async def run(sizes: list[int] | None = None) -> list[Row]:
    rows: list[Row] = []
    sizes = sizes or [30, 100]
    with workdir("crowd") as folder:
        for people in sizes:
            ours = await one_crowd(people, folder, one_at_a_time=False)
            naive = await one_crowd(people, folder, one_at_a_time=True)
            floor = 2 * FILE_LATENCY + people / TELEGRAM_RATE
            target = TARGET * floor
            case = f"{people} people at once"
            note = f"floor {floor:.2f} s: a {2 * FILE_LATENCY:.1f} s file fetch + {people}/30 s"
            rows += [
                Row("crowd", case, "first answer p50", percentile(ours.waits, 50), "s",
                    percentile(naive.waits, 50)),
                Row("crowd", case, "first answer p95", percentile(ours.waits, 95), "s",
                    percentile(naive.waits, 95)),
                Row("crowd", case, "first answer, last person", ours.everyone, "s",
                    naive.everyone, f"≤ {target:.1f} s ({TARGET:g} × floor)",
                    ours.everyone <= target, note),
                Row("crowd", case, "429 answers", ours.floods, "", naive.floods, "0",
                    ours.floods == 0),
            ]  # fmt: skip
            print(
                f"{case}: first answers p50 {percentile(ours.waits, 50):.2f} s, "
                f"p95 {percentile(ours.waits, 95):.2f} s, last {ours.everyone:.2f} s "
                f"(floor {floor:.2f} s, target {target:.2f} s); one at a time: p50 "
                f"{percentile(naive.waits, 50):.2f} s, last {naive.everyone:.2f} s; 429s "
                f"{ours.floods} (one at a time {naive.floods})",
                flush=True,
            )
    params = {
        "people": sizes,
        "file_latency_s": FILE_LATENCY,
        "flood_limit": TELEGRAM_RATE,
        "chat_limit_per_s": 1.0,
    }
    save("crowd", rows, params)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[30, 100])
    args = parser.parse_args()
    asyncio.run(run(args.people))


if __name__ == "__main__":
    main()
