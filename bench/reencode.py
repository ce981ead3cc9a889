"""Re-encoding: how long the bot takes to bring a big 1080p video under the upload limit.

A user waits for this before a large result arrives, so it should cost no more than the video's
own length on a small 2-core box, without giving up resolution the bitrate could carry. The
baseline is what one would write by hand: a single libx264 encode at ffmpeg's default preset
(medium) aimed at the same bitrate, measured on the same input in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Row, save, workdir
from bench.videos import AUDIO_BPS, cached_video
from services.media.ffmpeg import MediaInfo, default_tools, probe, reencode_to_fit, run_ffmpeg
from services.production.delivery import FIT_TARGET

TARGET_RATIO = 1.0
MB = 1_000_000


@dataclass(frozen=True)
class Case:
    megabytes: float
    seconds: float
    height: int = 1080

    @property
    def name(self) -> str:
        return f"{self.megabytes:g} MB, {self.seconds:g} s {self.height}p"


CASES = [Case(60, 30), Case(120, 60)]
QUICK_CASES = [Case(55, 20)]


@dataclass(frozen=True)
class Encode:
    """One encode's cost and result."""

    wall: float
    cpu: float
    size: int
    width: int
    height: int
    video_bps: float


class _Overshoots(logging.Handler):
    """Counts the re-encoder's retries, which are the first suspect when it runs slow."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("re-encode overshot"):
            self.count += 1


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _video_bytes(path: Path) -> int:
    """The video stream's payload, read from ffmpeg's stream-copy summary (no ffprobe needed)."""
    proc = await asyncio.create_subprocess_exec(
        default_tools().ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-i", str(path),
        "-map", "0:v:0", "-c", "copy", "-f", "null", "-",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    found = re.search(r"video:\s*(\d+)\s*(KiB|kB)", err.decode("utf-8", "replace"))
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"cannot read the video size of {path}")
    return int(found.group(1)) * 1024


async def _result(out: Path, wall: float, cpu: float) -> Encode:
    info = await probe(out)
    video = await _video_bytes(out)
    return Encode(
        wall=wall,
        cpu=cpu,
        size=info.size,
        width=info.width or 0,
        height=info.height or 0,
        video_bps=video * 8 / (info.duration or 1.0),
    )


async def _bot(src: Path, out: Path, info: MediaInfo) -> tuple[Encode, int]:
    """The bot's own path, given the probe that delivery has already made."""
    overshoots = _Overshoots()
    media_log = logging.getLogger("services.media.ffmpeg")
    level = media_log.level
    media_log.addHandler(overshoots)
    media_log.setLevel(logging.INFO)
    try:
        cpu, start = _children_cpu(), time.monotonic()
        fits = await reencode_to_fit(src, out, max_bytes=FIT_TARGET, info=info)
        wall, cpu = time.monotonic() - start, _children_cpu() - cpu
    finally:
        media_log.removeHandler(overshoots)
        media_log.setLevel(level)
    if not fits:
        raise RuntimeError(f"the bot could not fit {src.name} into {FIT_TARGET} bytes")
    return await _result(out, wall, cpu), 1 + overshoots.count


async def _naive(src: Path, out: Path, duration: float) -> Encode:
    """One libx264 pass with ffmpeg's defaults at the bitrate the budget allows; no scaling."""
    rate = str(int(FIT_TARGET * 8 * 0.95 / duration - AUDIO_BPS))
    args = [
        "-i", str(src.resolve()), "-map", "0:V:0", "-map", "0:a:0?",
        "-c:v", "libx264", "-b:v", rate, "-c:a", "aac", "-b:a", str(AUDIO_BPS), str(out),
    ]  # fmt: skip
    cpu, start = _children_cpu(), time.monotonic()
    await run_ffmpeg(args)
    wall, cpu = time.monotonic() - start, _children_cpu() - cpu
    return await _result(out, wall, cpu)


def _rows(case: Case, info: MediaInfo, bot: Encode, naive: Encode, attempts: int) -> list[Row]:
    seconds = info.duration or case.seconds
    ratio = bot.wall / seconds
    same_frame = (bot.width, bot.height) == (info.width, info.height)
    budget = (FIT_TARGET * 8 * 0.95 / seconds - AUDIO_BPS) / MB
    row = functools.partial(Row, "reencode", case.name)
    return [
        row(metric="wall s per video s", value=ratio, unit="×",
            baseline=naive.wall / seconds, target=f"≤ {TARGET_RATIO:g}", ok=ratio <= TARGET_RATIO,
            note=f"{bot.wall:.1f} s for {seconds:.1f} s; {attempts} attempt(s)"),
        row(metric="CPU s per video s", value=bot.cpu / seconds, unit="×",
            baseline=naive.cpu / seconds, note=f"ffmpeg user+sys, {bot.cpu:.0f} s"),
        row(metric="output size", value=bot.size / MB, unit="MB",
            baseline=naive.size / MB, target=f"≤ {FIT_TARGET / MB:g} MB",
            ok=bot.size <= FIT_TARGET, note=f"input {info.size / MB:.1f} MB"),
        row(metric="output height", value=bot.height, unit="p", baseline=naive.height,
            target=f"= input ({info.height}p)", ok=same_frame,
            note=f"{bot.width}x{bot.height} from {info.width}x{info.height}"),
        row(metric="output video bitrate", value=bot.video_bps / MB, unit="Mbit/s",
            baseline=naive.video_bps / MB, note=f"budget {budget:.2f} Mbit/s"),
    ]  # fmt: skip


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _table(rows: list[Row]) -> str:
    lines = [f"{'case':<22} {'metric':<22} {'bot':>14} {'baseline':>10} {'target':>14}  ok"]
    for r in rows:
        base = "–" if r.baseline is None else _num(r.baseline)
        met = {True: "yes", False: "NO", None: ""}[r.ok]
        lines.append(
            f"{r.case:<22} {r.metric:<22} {f'{_num(r.value)} {r.unit}':>14} {base:>10} "
            f"{r.target or '':>14}  {met}"
        )
    return "\n".join(lines)


async def run(quick: bool = False) -> list[Row]:
    """Measure every case, save the rows and return them."""
    cases = QUICK_CASES if quick else CASES
    rows: list[Row] = []
    with workdir("reencode") as folder:
        for case in cases:
            start = time.monotonic()
            src = await cached_video(
                megabytes=case.megabytes, seconds=case.seconds, height=case.height
            )
            print(f"{case.name}: input ready in {time.monotonic() - start:.1f} s", flush=True)
            info = await probe(src)
            bot, attempts = await _bot(src, folder / "bot.mp4", info)
            naive = await _naive(src, folder / "naive.mp4", info.duration or case.seconds)
            rows += _rows(case, info, bot, naive, attempts)
            for out in folder.iterdir():
                out.unlink()
    params = {
        "quick": quick,
        "cases": [case.name for case in cases],
        "fit_target": FIT_TARGET,
        "ffmpeg": default_tools().source,
    }
    save("reencode", rows, params)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one smaller case (55 MB, 20 s)")
    args = parser.parse_args()
    print(_table(asyncio.run(run(quick=args.quick))))


if __name__ == "__main__":
    main()
