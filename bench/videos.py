"""Large test videos made on the spot, so the re-encode benchmark needs no fixtures in the repo.

The picture is testsrc2 with fresh grain on every frame, like a phone camera's sensor noise: a
flat test pattern would squeeze into a fraction of the target size and leave the re-encoder
nothing to do. ultrafast x264 keeps generation several times faster than real time.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.common import RESULTS
from services.media.ffmpeg import run_ffmpeg

CACHE = RESULTS / "tmp"  # git-ignored; every benchmark shares it
AUDIO_BPS = 128_000
TOLERANCE = 0.05
# Container plus x264's ABR overshoot: measured at about 0.5% of the file at 16 Mbit/s.
_OVERHEAD = 0.005


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _near(size: int, target: float) -> bool:
    return abs(size - target) <= TOLERANCE * target


async def big_video(path: Path, *, megabytes: float, seconds: float, height: int = 1080) -> Path:
    """An H.264/AAC 16:9 MP4 of about ``megabytes`` (10^6 B) and ``seconds``, kept at ``path``.

    A file already at ``path`` within 5% of the size is reused, since making one costs seconds of
    CPU per run. Size wins over duration: it is what decides whether the bot must re-encode.
    """
    target = megabytes * 1_000_000
    if path.exists() and _near(path.stat().st_size, target):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    width = _even(height * 16 / 9)
    video_bps = target * 8 * (1 - _OVERHEAD) / seconds - AUDIO_BPS
    if video_bps <= 0:
        raise ValueError(f"{megabytes} MB is too small for {seconds} s of video")
    picture = f"testsrc2=s={width}x{_even(height)}:r=30,noise=alls=12:allf=t+u"
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.part.mp4")
    size = 0
    try:
        # ABR lands within a percent or two on this content; one corrected retry covers the rest.
        for _attempt in range(2):
            rate = str(int(video_bps))
            args = [
                "-f", "lavfi", "-i", picture,
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                "-t", f"{seconds:g}", "-map", "0:v", "-map", "1:a",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                "-b:v", rate, "-maxrate", rate, "-bufsize", rate, "-r", "30",
                "-c:a", "aac", "-b:a", str(AUDIO_BPS),
                "-movflags", "+faststart", "-f", "mp4", str(tmp),
            ]  # fmt: skip
            await run_ffmpeg(args, timeout=max(120.0, seconds * 4))
            size = tmp.stat().st_size
            if _near(size, target):
                os.replace(tmp, path)
                return path
            video_bps *= target / size
    finally:
        tmp.unlink(missing_ok=True)
    raise RuntimeError(f"could not make {megabytes} MB of video: got {size / 1e6:.1f} MB")


async def cached_video(*, megabytes: float, seconds: float, height: int = 1080) -> Path:
    """:func:`big_video` under one name per size, so the whole suite makes each video once."""
    name = f"reencode-{megabytes:g}mb-{seconds:g}s-{height}p.mp4"
    return await big_video(CACHE / name, megabytes=megabytes, seconds=seconds, height=height)
