"""A burst: many people send a photo within one second, against Telegram's flood limit.

The fake Bot API answers 429 to any send or edit beyond 30 in a second, as Telegram does. Each
person sends a photo with a caption, gets the confirm card, presses Generate as soon as it
shows, and waits for the video (made by the fake muapi). Measured: the time until every photo
was answered, the time until every video was delivered, and the 429 answers. The naive
baseline is the same bot with no send budget (``TELEGRAM_SENDS_PER_SECOND`` far above
Telegram's limit), so it sends as fast as it can and meets the limit head on.

    python -m bench.burst             # 100 people
    python -m bench.burst --people 30 # smaller, quicker
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import BotRunner, Row, save, wait_until, workdir
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_photo, make_video

KEY = "bench-muapi-key-0000"
TOKEN = "123456:BENCHbenchBENCHbenchBENCHbench12345"
FIRST_USER = 2_000_000
TELEGRAM_RATE = 30  # sends a second, Telegram's overall limit for a bot
SPREAD = 1.0  # seconds over which the photos arrive


@dataclass
class Burst:
    acked: float | None  # None: somebody was never answered
    delivered: float | None  # None: somebody's video never arrived
    floods: int
    answered: int
    videos: int


def go_button(tg: FakeTelegram, uid: int, message_id: int) -> str | None:
    msg = tg.message(uid, message_id)
    for button in msg.buttons if msg else []:
        data = str(button.get("callback_data", ""))
        if data.split(":")[2:3] == ["go"]:
            return data
    return None


async def one_burst(people: int, sends_per_second: int | None, folder: Path) -> Burst:
    photo = make_photo(folder / "photo.jpg", 1280, 720).read_bytes()
    output = make_video(folder / "out.mp4", seconds=2.0)
    async with (
        FakeTelegram(token=TOKEN, flood_limit_per_second=TELEGRAM_RATE) as tg,
        FakeMuapi(api_key=KEY) as muapi,
    ):
        muapi.scenario = Scenario(polls_before_done=1, output=output)
        env = {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": tg.root,
            "MUAPI_API_KEY": KEY,
            "MUAPI_BASE_URL": muapi.root,
            "POLL_INTERVAL_SECONDS": "1",
        }
        if sends_per_second is not None:
            env["TELEGRAM_SENDS_PER_SECOND"] = str(sends_per_second)
        run = folder / ("naive" if sends_per_second else "bot")
        run.mkdir()
        bot = BotRunner(run, **env)
        await bot.start()
        try:
            await wait_until(lambda: tg.calls_to("getUpdates"), 30, what="the bot to start")
            users = [FIRST_USER + i for i in range(people)]
            sent: dict[int, int] = {}
            start = time.monotonic()
            for i, uid in enumerate(users):
                msg = tg.user_message(uid, photo=photo, caption="zoom in")
                sent[uid] = int(msg["message_id"])
                await asyncio.sleep(max(0.0, start + SPREAD * (i + 1) / people - time.monotonic()))
            pressed: set[int] = set()
            acked_at: dict[int, float] = {}
            # A bot that meets the limit head on gives up on some cards after its retries:
            # those people are never answered, and the run says how many.
            deadline = time.monotonic() + 120
            while len(pressed) < people and time.monotonic() < deadline:
                for uid in users:
                    if uid in pressed:
                        continue
                    for m in tg.messages(uid):
                        acked_at.setdefault(uid, time.monotonic())
                        data = go_button(tg, uid, m.message_id)
                        if data:
                            tg.press_button(uid, m.message_id, data)
                            pressed.add(uid)
                            break
                await asyncio.sleep(0.01)
            acked = max(acked_at.values()) - start if len(acked_at) == people else None
            try:
                # The naive bot loses some videos for good: a minute tells enough of its story.
                patience = 60 if sends_per_second else 300
                done: float | None = await wait_until(
                    lambda: all(tg.videos(uid) for uid in users), patience, what="every video"
                )
            except TimeoutError:
                done = None
            return Burst(
                acked,
                done - start if done is not None else None,
                tg.flood_429_count,
                len(acked_at),
                sum(1 for uid in users if tg.videos(uid)),
            )
        except Exception:
            print(bot.log_tail())
            raise
        finally:
            await bot.stop()


async def run(people: int = 100) -> list[Row]:
    with workdir("burst") as folder:
        ours = await one_burst(people, None, folder)
        naive = await one_burst(people, 10_000, folder)
    floor = people / TELEGRAM_RATE
    target = 1.2 * floor
    case = f"{people} people in {SPREAD:g} s"
    lost = (
        f"naive: {people - naive.answered} never answered, {people - naive.videos} videos missing"
        if naive.acked is None or naive.delivered is None
        else ""
    )
    inf = float("inf")
    rows = [
        Row("burst", case, "all photos answered", ours.acked or inf, "s", naive.acked,
            f"≤ {target:.1f} s (1.2 × {floor:.1f} s)", (ours.acked or inf) <= target, lost),
        Row("burst", case, "all videos delivered", ours.delivered or inf, "s", naive.delivered),
        Row("burst", case, "429 answers", ours.floods, "", naive.floods, "0", ours.floods == 0),
    ]  # fmt: skip
    print(
        f"{case}: answered in {_s(ours.acked)} (naive {_s(naive.acked)}), delivered in "
        f"{_s(ours.delivered)} (naive {_s(naive.delivered)}), 429s {ours.floods} "
        f"(naive {naive.floods}) {lost}",
        flush=True,
    )
    save("burst", rows, {"people": people, "spread_s": SPREAD, "flood_limit": TELEGRAM_RATE})
    return rows


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.people))


if __name__ == "__main__":
    main()
