"""Real, small media files made on the spot with ffmpeg's synthetic sources."""

from __future__ import annotations

import functools
import os
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pillow_heif
from PIL import Image, ImageChops, ImageCms, ImageDraw

from services.media.ffmpeg import default_tools


def _ffmpeg(*args: str) -> None:
    cmd = [default_tools().ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr[-2000:]}")


def make_photo(path: Path, width: int = 640, height: int = 480, fmt: str = "jpg") -> Path:
    """A decodable still (a testsrc2 frame) as jpg, png, png16 (16-bit RGB) or webp."""
    codec = {
        "jpg": ["-q:v", "3"],
        "png": ["-pix_fmt", "rgb24"],
        "png16": ["-pix_fmt", "rgb48be"],  # 16 bits per channel, as editing apps export
        "webp": ["-c:v", "libwebp"],
    }
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


# --- what phones and cameras send --------------------------------------------------------
# Each helper makes one trait on the spot: images with Pillow (what phones write), clips and
# sounds with the ffmpeg the bot itself uses, so a test runs against that ffmpeg's abilities.

RED = (220, 20, 20)
BLUE = (20, 40, 200)


def marked(width: int, height: int) -> Image.Image:
    """Blue, with a red band along the stored top: after a rotation the band says where up is.

    The blue shades diagonally (as a real photo is never one flat colour, which the studio
    rightly refuses to deliver); every point stays near BLUE.
    """
    across = Image.linear_gradient("L").rotate(90).resize((width, height))
    down = Image.linear_gradient("L").resize((width, height))
    t = ImageChops.add(across, down, scale=2.0)  # 0 top left .. 255 bottom right
    red = Image.new("L", (width, height), BLUE[0])
    green = t.point(lambda v: BLUE[1] - 40 + v * 80 // 255)
    blue = t.point(lambda v: BLUE[2] - 50 + v * 100 // 255)
    image = Image.merge("RGB", (red, green, blue))
    ImageDraw.Draw(image).rectangle((0, 0, width - 1, max(1, height // 8)), fill=RED)
    return image


def make_image(
    path: Path,
    width: int = 640,
    height: int = 480,
    *,
    fmt: str = "JPEG",
    mode: str = "RGB",
    orientation: int | None = None,
    transparent: bool = False,
    frames: int = 1,
    icc: bytes | None = None,
) -> Path:
    """A marked image in ``fmt`` (Pillow's name, HEIF and AVIF included) and pixel ``mode``.

    ``orientation`` is an EXIF tag (6 = a phone held upright: stored landscape, shown
    portrait); ``transparent`` clears the left half; ``frames`` > 1 animates it (GIF, WebP).
    """
    pillow_heif.register_heif_opener()
    base = marked(width, height)
    if transparent:
        base = base.convert("RGBA")
        ImageDraw.Draw(base).rectangle((0, 0, width // 2 - 1, height - 1), fill=(0, 0, 0, 0))
    if mode == "I;16":
        # A left-to-right 16-bit ramp: Pillow's own 8-bit conversion turns it all white.
        image = Image.linear_gradient("L").rotate(90).resize((width, height)).convert("I")
        image = image.point(lambda v: v * 257).convert("I;16")
    elif mode == "P":
        image = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    elif mode not in (base.mode, "RGB"):
        image = base.convert(mode)
    else:
        image = base
    options: dict[str, Any] = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    if icc is not None:
        options["icc_profile"] = icc
    if frames > 1:
        shades = [image.point(lambda v, k=k: (v + 40 * k) % 256) for k in range(1, frames)]
        options.update(save_all=True, append_images=shades, duration=100, loop=0)
    image.save(path, format=fmt, **options)
    return path


def srgb_icc() -> bytes:
    """An sRGB ICC profile, as cameras embed one."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes())


def make_pixel_bomb(path: Path, width: int = 30_000, height: int = 30_000) -> Path:
    """A tiny PNG that claims ``width``×``height``: its header says more than any phone shoots."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + (width + 7) // 8) * 16)  # 16 rows of zeros; the rest lost
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
    path.write_bytes(data + chunk(b"IEND", b""))
    return path


def encoders() -> frozenset[str]:
    """The encoders the bot's ffmpeg has (libx265, libsvtav1… differ between builds)."""
    return _encoders_of(default_tools().ffmpeg)


@functools.cache
def _encoders_of(ffmpeg: str) -> frozenset[str]:
    cmd = [ffmpeg, "-hide_banner", "-encoders"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith(" ") and "=" not in line]
    return frozenset(row[1] for row in rows if len(row) > 1)


# Video codec → encoder arguments (fast settings: tests, not quality).
VIDEO_CODECS: dict[str, list[str]] = {
    "h264": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    "hevc": [
        "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-x265-params", "log-level=error",
    ],
    # What an iPhone films in HDR: 10-bit HEVC, BT.2020 primaries, HLG transfer, said both in
    # the bitstream and the container (newer ffmpegs write only what the encoder was told).
    "hevc10": [
        "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-x265-params",
        "log-level=error:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc",
        "-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc",
    ],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"],
    "av1": ["-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p"],
    "mjpeg": ["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p"],
}  # fmt: skip
AUDIO_CODECS: dict[str, list[str]] = {
    "aac": ["-c:a", "aac", "-b:a", "64k"],
    "opus": ["-c:a", "libopus", "-b:a", "32k"],
    "vorbis": ["-c:a", "libvorbis", "-q:a", "2"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "flac": ["-c:a", "flac"],
    "pcm": ["-c:a", "pcm_s16le"],
    "pcm_be": ["-c:a", "pcm_s16be"],
    "alac": ["-c:a", "alac"],
}
# Container (file suffix) → ffmpeg muxer.
MUXERS = {
    ".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
    ".m4a": "ipod", ".mp3": "mp3", ".flac": "flac", ".wav": "wav", ".aiff": "aiff",
    ".ogg": "ogg", ".opus": "ogg",
}  # fmt: skip


def can_encode(codec: str) -> bool:
    """Whether this ffmpeg can make ``codec`` (a VIDEO_CODECS or AUDIO_CODECS key)."""
    table = VIDEO_CODECS.get(codec) or AUDIO_CODECS[codec]
    return table[1] in encoders()


def make_clip(
    path: Path,
    *,
    seconds: float = 1.0,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    video: str = "h264",
    audio: str | None = None,
    channels: int = 2,
    rotation: int | None = None,
    vfr: bool = False,
    streamed: bool = False,
) -> Path:
    """A clip of ``video`` (a VIDEO_CODECS key) with optional ``audio``, muxed by ``path``'s suffix.

    ``rotation`` stores display-matrix rotation as a phone does (the frames stay as encoded);
    ``vfr`` drops frames unevenly (variable frame rate); ``streamed`` writes through a pipe, as
    a browser's recorder does, so a WebM's header never gets its duration.
    """
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}"]
    codecs = list(VIDEO_CODECS[video])
    if audio is not None:
        layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
        tone = f"sine=frequency=440:sample_rate=48000,aformat=channel_layouts={layout}"
        inputs += ["-f", "lavfi", "-i", tone]
        codecs += AUDIO_CODECS[audio]
    else:
        codecs += ["-an"]
    if vfr:
        # Keep every frame for a while, then every third: the frame rate changes mid-clip.
        codecs += ["-vf", r"select='lt(n\,10)+not(mod(n\,3))'", "-fps_mode", "vfr"]
    target = path.with_name(path.stem + ".unrotated" + path.suffix) if rotation else path
    _write(target, [*inputs, "-t", f"{seconds}", *codecs], streamed=streamed)
    if rotation:
        _rotate(target, path, rotation)
        target.unlink()
    return path


def _write(path: Path, args: list[str], *, streamed: bool = False) -> None:
    """Run ffmpeg into ``path`` (muxer by suffix); ``streamed`` goes through a pipe instead."""
    muxer = ["-f", MUXERS[path.suffix.lower()]]
    if not streamed:
        _ffmpeg(*args, *muxer, str(path))
        return
    # "-live 1" and a pipe: nothing can be patched into the header afterwards.
    cmd = [default_tools().ffmpeg, "-hide_banner", "-nostdin", "-v", "error", *args]
    result = subprocess.run(
        [*cmd, *muxer, "-live", "1", "pipe:1"], capture_output=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {result.stderr[-2000:]!r}")
    path.write_bytes(result.stdout)


def _rotate(src: Path, dest: Path, degrees: int) -> None:
    """Copy ``src`` with a display rotation: ffmpeg 6+ has -display_rotation, 5.x a tag."""
    muxer = ["-f", MUXERS[dest.suffix.lower()]]
    turn = str(degrees % 360)
    try:
        _ffmpeg("-display_rotation", turn, "-i", str(src), "-c", "copy", *muxer, str(dest))
    except RuntimeError:
        tag = f"rotate={turn}"
        _ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", tag, *muxer, str(dest))


def make_sound(
    path: Path, codec: str, *, seconds: float = 1.0, channels: int = 2, streamed: bool = False
) -> Path:
    """An audio file of ``codec`` (an AUDIO_CODECS key) muxed by ``path``'s suffix.

    ``streamed`` as for make_clip: a browser's voice recording, a WebM without a duration.
    """
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    source = f"sine=frequency=330:sample_rate=44100,aformat=channel_layouts={layout}"
    args = ["-f", "lavfi", "-i", source, "-t", f"{seconds}", *AUDIO_CODECS[codec]]
    _write(path, args, streamed=streamed)
    return path
