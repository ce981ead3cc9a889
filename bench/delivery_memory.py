"""Delivery memory: how much resident memory the bot adds while it delivers one big result.

A result is downloaded from the provider, probed, re-encoded when it is over Telegram's 50 MB
upload limit, and uploaded to the Bot API. Done carelessly, each step holds the whole video in
memory; on a small VM two deliveries at once can then exhaust it. The target is under 25 MB
above idle, for a 49 MB output (sent as it is) and a 120 MB one (re-encoded to fit first).

How: the database is seeded with one job already running on the fake muapi, not yet due, whose
next status poll reports it done with a real 1080p H.264/AAC file as its output (served from
disk). The real bot process starts against the fakes (the fake Telegram keeps only the first
megabyte of uploads, so the benchmark's own process stays small); once it is long-polling and
settled its resident memory is read as idle. Then the job is made due, and the bot's peak
resident memory (sampled every 10 ms, and the kernel's high-water mark reset at the start) is
recorded until the video is in the chat and the job is ``delivered``. ffmpeg runs as a child
process and is not counted.

The naive baseline, measured in the same run on the same output, is a small Python process
that does the obvious thing: ``httpx.get(url).content``, write it to a file for ffmpeg to probe
(and re-encode, when too big), read the file back whole and post it as a multipart
``sendVideo``. Its peak is taken above its own idle (after its imports, before the download).

    python -m bench.delivery_memory           # 49 MB and 120 MB outputs
    python -m bench.delivery_memory --quick   # the 49 MB output only
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    ROOT,
    BotRunner,
    PeakSampler,
    Proc,
    Row,
    save,
    seed_running_jobs,
    wait_until,
    workdir,
)
from bench.videos import cached_video
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram

KEY = "bench-muapi-key-0000"
TOKEN = "123456:BENCHbenchBENCHbenchBENCHbench12345"
USER = 1_000_000
TARGET_MB = 25.0
UPLOAD_LIMIT = 50_000_000
SETTLE = 2.0  # seconds of long polling before idle is read
DELIVERY_TIMEOUT = 300.0
MB = 1_000_000
TERMINAL = ("delivered", "failed", "canceled", "timed_out", "stalled", "unknown")


@dataclass(frozen=True)
class Output:
    """One provider output to deliver."""

    megabytes: float
    seconds: float
    height: int = 1080

    @property
    def name(self) -> str:
        return f"{self.megabytes:g} MB output"


OUTPUTS = [Output(49, 25), Output(120, 60)]
QUICK_OUTPUTS = [Output(49, 25)]


@dataclass(frozen=True)
class Reading:
    """Resident memory (MB) of one process at idle and at its peak during a delivery."""

    idle: float
    peak: float
    sent_bytes: int
    reencoded: bool
    seconds: float

    @property
    def above(self) -> float:
        return self.peak - self.idle


# --- the bot ----------------------------------------------------------------------------------


async def seed(db_path: Path, tg: FakeTelegram, muapi: FakeMuapi, video: Path) -> None:
    """One job running on muapi, due in an hour; its next poll finds it done with ``video``."""
    done = Scenario(polls_before_done=0, output=video)
    await seed_running_jobs(db_path, tg, muapi, [USER], done, time.time() + 3600)


def make_due(db_path: Path) -> None:
    with sqlite3.connect(db_path, timeout=10) as conn:
        conn.execute("UPDATE jobs SET next_poll_at = ?", (time.time(),))


def job_row(db_path: Path) -> tuple[str, str | None]:
    """The job's state and the output URL the provider gave."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute("SELECT state, output_url FROM jobs").fetchone()
    return str(row[0]), row[1]


async def bot_delivery(tg: FakeTelegram, muapi: FakeMuapi, folder: Path, video: Path) -> Reading:
    db_path = folder / "bot.db"
    await seed(db_path, tg, muapi, video)
    bot = BotRunner(
        folder,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=tg.root,
        MUAPI_API_KEY=KEY,
        MUAPI_BASE_URL=muapi.root,
        POLL_INTERVAL_SECONDS="0.5",
        STATUS_EDIT_INTERVAL_SECONDS="0",
    )
    proc = await bot.start()
    try:
        await wait_until(lambda: tg.calls_to("getUpdates"), 60, what="the bot to start polling")
        await asyncio.sleep(SETTLE)
        idle = proc.rss_mb()
        started = time.monotonic()
        async with PeakSampler(proc) as sampler:
            make_due(db_path)
            await wait_until(
                lambda: job_row(db_path)[0] in TERMINAL, DELIVERY_TIMEOUT, every=0.1,
                what="the delivery",
            )  # fmt: skip
        seconds = time.monotonic() - started
        state, _ = job_row(db_path)
        videos = tg.videos(USER)
        if state != "delivered" or not videos or videos[-1].file is None:
            raise RuntimeError(f"the job ended {state!r} without a video in the chat")
        sent = videos[-1].file.size
        return Reading(idle, sampler.peak, sent, sent != video.stat().st_size, seconds)
    except Exception:
        print(bot.log_tail(), file=sys.stderr)
        raise
    finally:
        await bot.stop()


# --- the naive baseline -----------------------------------------------------------------------

NAIVE = """
import asyncio, sys
from pathlib import Path
import httpx
from services.media import probe, reencode_to_fit

url, send_url, chat_id, folder = sys.argv[1:5]
print("ready", flush=True)
sys.stdin.readline()
data = httpx.get(url, timeout=120).content
src = Path(folder) / "naive.mp4"
src.write_bytes(data)
info = asyncio.run(probe(src))
reencoded = len(data) > {limit}
if reencoded:
    fitted = Path(folder) / "naive-fitted.mp4"
    if not asyncio.run(reencode_to_fit(src, fitted, max_bytes={fit}, info=info)):
        raise SystemExit("could not re-encode")
    data = fitted.read_bytes()
    info = asyncio.run(probe(fitted))
form = {{"chat_id": chat_id, "supports_streaming": "true", "width": str(info.width),
        "height": str(info.height), "duration": str(round(info.duration or 0))}}
answer = httpx.post(send_url, data=form, files={{"video": ("v.mp4", data, "video/mp4")}},
                    timeout=600)
answer.raise_for_status()
print("done", len(data), int(reencoded), flush=True)
sys.stdin.readline()
"""


async def naive_delivery(tg: FakeTelegram, url: str, folder: Path) -> Reading:
    from services.production.delivery import FIT_TARGET

    code = NAIVE.format(limit=UPLOAD_LIMIT, fit=FIT_TARGET)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, url, f"{tg.api_url}{TOKEN}/sendVideo", str(USER), str(folder),
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        if (await child.stdout.readline()).strip() != b"ready":
            raise RuntimeError("the naive delivery did not start")
        proc = Proc(child.pid)
        idle = proc.rss_mb()
        started = time.monotonic()
        async with PeakSampler(proc) as sampler:
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            line = await asyncio.wait_for(child.stdout.readline(), DELIVERY_TIMEOUT)
        seconds = time.monotonic() - started
        word, size, reencoded = [*line.decode().split(), "", "", ""][:3]
        if word != "done":
            raise RuntimeError("the naive delivery failed")
        return Reading(idle, sampler.peak, int(size), reencoded == "1", seconds)
    finally:
        if child.returncode is None:
            child.stdin.close()
        await child.wait()


# --- running ----------------------------------------------------------------------------------


async def one_output(output: Output) -> tuple[Reading, Reading, int]:
    """The bot's and the naive reading for one output, and the output's size."""
    video = await cached_video(
        megabytes=output.megabytes, seconds=output.seconds, height=output.height
    )
    with workdir("delivery") as folder:
        async with (
            FakeTelegram(token=TOKEN, max_stored_file_bytes=1_000_000) as tg,
            FakeMuapi(api_key=KEY) as muapi,
        ):
            bot = await bot_delivery(tg, muapi, folder, video)
            _, url = job_row(folder / "bot.db")
            assert url is not None
            naive = await naive_delivery(tg, url, folder)
    return bot, naive, video.stat().st_size


def _how(reading: Reading, size: int) -> str:
    sent = f"{reading.sent_bytes / MB:.1f} MB"
    return f"re-encoded {size / MB:.1f} → {sent}" if reading.reencoded else f"sent as is, {sent}"


async def run(quick: bool = False) -> list[Row]:
    """Measure every output, save the rows and return them."""
    outputs = QUICK_OUTPUTS if quick else OUTPUTS
    rows: list[Row] = []
    for output in outputs:
        bot, naive, size = await one_output(output)
        ok = bot.above < TARGET_MB
        rows += [
            Row("delivery_memory", output.name, "peak memory above idle", bot.above, "MB",
                naive.above, f"< {TARGET_MB:g} MB", ok,
                f"{_how(bot, size)} in {bot.seconds:.0f} s"),
            Row("delivery_memory", output.name, "resident memory at idle", bot.idle, "MB",
                note="long-polling, before the job is due"),
        ]  # fmt: skip
        print(
            f"{output.name}: bot peak {bot.peak:.1f} MB, {bot.above:.1f} MB above idle "
            f"{bot.idle:.1f} MB ({_how(bot, size)}, {bot.seconds:.1f} s); naive "
            f"{naive.above:.1f} MB above idle {naive.idle:.1f} MB ({naive.seconds:.1f} s); "
            f"target < {TARGET_MB:g} MB: {'met' if ok else 'NOT met'}",
            flush=True,
        )
    params = {
        "quick": quick,
        "outputs": [f"{o.megabytes:g} MB, {o.seconds:g} s {o.height}p" for o in outputs],
        "upload_limit": UPLOAD_LIMIT,
    }
    save("delivery_memory", rows, params)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the 49 MB output only")
    args = parser.parse_args()
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
