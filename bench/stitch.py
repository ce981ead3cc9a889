"""Stitching: what one ffmpeg pass costs to join a story's shots, against joining them by hand.

A 4-shot 720p story (4 × 5 s at 1280×720, 30 fps, with sound) is joined by ``services.media.stitch``
with cuts, with crossfades, and with crossfades under a music bed. The baseline is the usual
hand-written way, in the same run on the same clips: re-encode each clip to a common format,
then join the parts with the concat demuxer (cuts only: a crossfade would need yet another
encode). Figures are seconds of work per second of output, ffmpeg's CPU per output second,
and the peak resident memory of the ffmpeg processes.

    python -m bench.stitch            # 4 shots of 5 s
    python -m bench.stitch --quick    # 2 shots of 3 s
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import Row, save, workdir
from services.media.ffmpeg import default_tools, probe, run_ffmpeg
from services.media.stitch import stitch
from tests.media_factory import make_sound, make_video

WIDTH, HEIGHT, FPS = 1280, 720, 30
FADE = 0.5
TARGET_RATIO = 1.0


@dataclass(frozen=True)
class Run:
    """One way of joining the shots: its cost and what came out."""

    wall: float
    cpu: float
    peak_mb: float
    seconds: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ffmpeg_peaks() -> dict[int, float]:
    """VmHWM (MB) of every ffmpeg process this one started and has not yet reaped."""
    peaks: dict[int, float] = {}
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == me and "ffmpeg" in fields.get("Name", ""):
            peaks[int(status.parent.name)] = int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
    return peaks


async def _measure(work: Callable[[], Awaitable[Path]]) -> Run:
    """Run ``work``, sampling its ffmpeg children's peak memory (they run one at a time)."""
    peak = 0.0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max([peak, *_ffmpeg_peaks().values()])
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    cpu, start = _children_cpu(), time.monotonic()
    try:
        out = await work()
    finally:
        sampler.cancel()
    wall, cpu = time.monotonic() - start, _children_cpu() - cpu
    info = await probe(out)
    return Run(wall=wall, cpu=cpu, peak_mb=peak, seconds=info.duration or 0.0)


async def _naive(clips: list[Path], folder: Path) -> Path:
    """Each clip re-encoded alone to one format, then joined by the concat demuxer (no encode)."""
    fit = (
        f"scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease,"
        f"pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={FPS},format=yuv420p"
    )
    parts = []
    for i, clip in enumerate(clips):
        part = folder / f"part{i}.mp4"
        args = [
            "-i", str(clip), "-vf", fit, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
            "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", str(part),
        ]  # fmt: skip
        await run_ffmpeg(args)
        parts.append(part)
    listing = folder / "parts.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    out = folder / "naive.mp4"
    args = ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy"]
    await run_ffmpeg([*args, "-movflags", "+faststart", str(out)])
    return out


async def _ours(clips: list[Path], out: Path, **options: object) -> Path:
    await stitch(clips, out, **options)  # type: ignore[arg-type]
    return out


def _rows(name: str, ours: Run, naive: Run, note: str) -> list[Row]:
    ratio = ours.wall / ours.seconds
    row = functools.partial(Row, "stitch", name)
    return [
        row(metric="wall s per output s", value=ratio, unit="×",
            baseline=naive.wall / naive.seconds, target=f"≤ {TARGET_RATIO:g}",
            ok=ratio <= TARGET_RATIO,
            note=f"{ours.wall:.1f} s for {ours.seconds:.1f} s; {note}"),
        row(metric="CPU s per output s", value=ours.cpu / ours.seconds, unit="×",
            baseline=naive.cpu / naive.seconds, note="ffmpeg user+sys"),
        row(metric="ffmpeg peak memory", value=ours.peak_mb, unit="MB",
            baseline=naive.peak_mb, note="VmHWM, largest ffmpeg process"),
    ]  # fmt: skip


async def run(quick: bool = False) -> list[Row]:
    """Make the shots, join them every way, save the rows and return them."""
    shots, seconds = (2, 3.0) if quick else (4, 5.0)
    with workdir("stitch") as folder:
        clips = [
            make_video(
                folder / f"shot{i}.mp4", seconds=seconds, width=WIDTH, height=HEIGHT,
                fps=FPS, audio=True,
            )
            for i in range(shots)
        ]  # fmt: skip
        music = make_sound(folder / "music.m4a", "aac", seconds=7.0)
        naive = await _measure(lambda: _naive(clips, folder))
        print(f"naive: {naive}", flush=True)
        cases: list[tuple[str, dict[str, object], str]] = [
            ("ours, cuts", {"transition": "cut"}, "one pass"),
            ("ours, crossfades", {"transition": "fade", "fade": FADE}, f"{FADE:g} s fades"),
            (
                "ours, crossfades + music bed",
                {"transition": "fade", "fade": FADE, "music": music},
                "looped 7 s bed",
            ),
        ]
        rows: list[Row] = []
        for name, options, note in cases:
            out = folder / f"{len(rows)}.mp4"
            ours = await _measure(functools.partial(_ours, clips, out, **options))
            print(f"{name}: {ours}", flush=True)
            rows += _rows(name, ours, naive, note)
    params = {
        "quick": quick,
        "story": f"{shots} × {seconds:g} s, {WIDTH}x{HEIGHT} {FPS} fps, AAC",
        "baseline": "re-encode each clip (veryfast, crf 23), concat demuxer, cuts only",
        "ffmpeg": default_tools().source,
    }
    save("stitch", rows, params)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 shots of 3 s")
    args = parser.parse_args()
    rows = asyncio.run(run(quick=args.quick))
    for r in rows:
        base = "–" if r.baseline is None else f"{r.baseline:.3g}"
        print(f"{r.case:<30} {r.metric:<22} {r.value:>8.3g} {r.unit:<3} naive {base:>6}  {r.note}")


if __name__ == "__main__":
    main()
