"""Real, small media files made on the spot with ffmpeg's synthetic sources."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from services.media import default_tools


def _ffmpeg(*args: str) -> None:
    cmd = [default_tools().ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr[-2000:]}")


def make_photo(path: Path, width: int = 640, height: int = 480, fmt: str = "jpg") -> Path:
    """A decodable still (a testsrc2 frame) as jpg, png or webp."""
    codec = {"jpg": ["-q:v", "3"], "png": ["-pix_fmt", "rgb24"], "webp": ["-c:v", "libwebp"]}
    if fmt not in codec:
        raise ValueError(f"unsupported photo format {fmt!r}")
    source = f"testsrc2=size={width}x{height}:rate=1"
    _ffmpeg("-f", "lavfi", "-i", source, "-frames:v", "1", *codec[fmt], "-f", "image2", str(path))
    return path


def make_video(
    path: Path,
    *,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    audio: bool = False,
    fps: int = 25,
) -> Path:
    """A small H.264 MP4 (moov at the end, as cameras write it), with an AAC tone if asked."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    codecs += ["-c:a", "aac", "-b:a", "64k"] if audio else ["-an"]
    _ffmpeg(*inputs, "-t", f"{seconds}", *codecs, "-f", "mp4", str(path))
    return path


def make_big_video(
    path: Path,
    *,
    target_bytes: int,
    seconds: float = 10.0,
    width: int = 1280,
    height: int = 720,
) -> Path:
    """An H.264 MP4 of about ``target_bytes`` (0-10% above), made in a second or two.

    Temporal noise defeats prediction so the encoder really spends the bits, and CBR filler
    pads any shortfall, which pins the size whatever the frame size.
    """
    bps = int(target_bytes * 8 / seconds * 1.01)
    source = f"testsrc2=size={width}x{height}:rate=25,noise=alls=40:allf=t"
    _ffmpeg(
        "-f", "lavfi", "-i", source, "-t", f"{seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-b:v", str(bps), "-maxrate", str(bps), "-bufsize", str(bps // 10),
        "-x264-params", "nal-hrd=cbr:filler=1", "-an", "-f", "mp4", str(path),
    )  # fmt: skip
    size = path.stat().st_size
    if not target_bytes <= size <= target_bytes * 1.1:
        raise RuntimeError(f"made {size} bytes, wanted about {target_bytes}")
    return path


def banner(path: Path) -> str:
    """ffmpeg's description of a file (its stderr), for checks ffprobe would do."""
    cmd = [default_tools().ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stderr


def ffmpeg_children() -> list[str]:
    """ffmpeg processes (or zombies of any kind) whose parent is this test process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        state, ppid = text[text.rindex(")") + 2 :].split()[:2]
        if int(ppid) == os.getpid() and (state == "Z" or "ffmpeg" in comm):
            found.append(f"{stat.parent.name} {comm} {state}")
    return found
