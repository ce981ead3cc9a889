"""Still images from phones and cameras, decoded in-process and made plain.

Everything downstream (ffmpeg's animation, a provider's upload) gets the same thing: an upright
8-bit sRGB JPEG or PNG with no EXIF, whatever arrived (HEIC, AVIF, CMYK, 16-bit, palette,
transparent, rotated by an EXIF tag). Pillow decodes in a worker thread, so one big photo never
blocks the event loop for other users; no ffmpeg process is started for a photo.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from services.errors import UserInputError

log = logging.getLogger(__name__)

pillow_heif.register_heif_opener()

# Formats we decode. A closed list: some Pillow plugins (EPS) shell out to other programs,
# and nothing a phone or camera sends needs them. JPEG covers MPO, the multi-picture JPEG
# many cameras write (Pillow reports those as "MPO").
FORMATS: Final = (
    "JPEG", "PNG", "WEBP", "GIF", "HEIF", "AVIF", "BMP", "DIB", "TIFF", "ICO", "PPM", "TGA",
)  # fmt: skip
MIN_SIDE: Final = 64
MAX_RATIO: Final = 20
# 108 MP phone sensors exist; past this a decoded image would crowd a small server's memory.
MAX_PIXELS: Final = 120_000_000
# Providers and our own 1080p renders gain nothing from more; uploads get smaller and faster.
MAX_OUTPUT_SIDE: Final = 4096
JPEG_QUALITY: Final = 92
# Transparent areas become white: what an image viewer shows, and never the black of a
# discarded alpha channel.
BACKGROUND: Final = (255, 255, 255)
# Formats sent on untouched when already upright 8-bit sRGB, with the suffix they are saved as.
PLAIN_FORMATS: Final = {"JPEG": ".jpg", "PNG": ".png"}
# Only these move; other multi-frame files (MPO, HEIF) hold a depth map or a second view.
ANIMATED_FORMATS: Final = frozenset({"GIF", "WEBP", "PNG", "AVIF"})
# At most this many decodes at once, across every user (each can take hundreds of MB). The
# waiting happens on the event loop, so queued photos never hold the worker threads that file
# copies share; one semaphore per loop, as an asyncio one cannot cross loops.
DECODES_AT_ONCE: Final = 2
_DECODE_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_HIGH_BIT_MODES: Final = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

# Pillow warns from 89 MP and refuses from 179 MP; between the two our own check (which
# answers the user in words) decides, so its warning is noise.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass(frozen=True)
class Picture:
    """A normalised image: its size as displayed, and what it was made from."""

    path: Path
    width: int
    height: int
    source_format: str
    frames: int

    @property
    def animated(self) -> bool:
        """Whether the source moved (an animated GIF, WebP or PNG): we use its first frame."""
        return self.frames > 1


def _too_many_pixels(pixels: int) -> UserInputError:
    return UserInputError(
        "photo_too_many_pixels", megapixels=round(pixels / 1e6), limit=MAX_PIXELS // 1_000_000
    )


def check_dimensions(width: int, height: int) -> None:
    """Refuse images too small, too thin or with too many pixels to animate."""
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(width * height)
    ratio = max(width, height) / max(1, min(width, height))
    if min(width, height) < MIN_SIDE or ratio > MAX_RATIO:
        raise UserInputError(
            "photo_dimensions", width=width, height=height, min_side=MIN_SIDE, max_ratio=MAX_RATIO
        )


async def normalise(src: Path, dest: Path) -> Picture:
    """Decode ``src`` and make it an upright 8-bit sRGB image at ``dest`` (suffix replaced).

    That is a fresh JPEG, or ``src`` itself moved there when it already was a plain one
    (PLAIN_FORMATS). UserInputError if it does not decode or does not fit.
    """
    loop = asyncio.get_running_loop()
    slots = _DECODE_SLOTS.setdefault(loop, asyncio.Semaphore(DECODES_AT_ONCE))
    async with slots:
        return await asyncio.to_thread(normalise_sync, src, dest)


def identify(path: Path) -> str | None:
    """The image format of a file from its header (no decoding), or None if not an image."""
    try:
        with _open(path) as image:
            return str(image.format)
    except UserInputError:
        return None


def normalise_sync(src: Path, dest: Path) -> Picture:
    """``normalise`` for callers already off the event loop."""
    with _open(src) as image:
        source_format = str(image.format)
        moving = source_format in ANIMATED_FORMATS and getattr(image, "is_animated", False)
        frames = int(getattr(image, "n_frames", 1)) if moving else 1
        width, height = _displayed_size(image)
        check_dimensions(width, height)
        _draft(image)
        try:
            image.load()
            plain = frames == 1 and _plain(image, src)
            upright = image if plain else ImageOps.exif_transpose(image)
            icc = image.info.get("icc_profile")
            picture = None if plain else _to_srgb(_shrunk(_flattened(_eight_bit(upright))), icc)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # Truncated or corrupt data surfaces only now, mid-decode.
            log.info("image decode failed (%s): %s", source_format, exc)
            raise UserInputError("photo_unreadable") from exc
    if picture is None:
        final = dest.with_suffix(PLAIN_FORMATS[source_format])
        os.replace(src, final)
        return Picture(final, width, height, source_format, frames)
    final = dest.with_suffix(".jpg")
    _write_jpeg(picture, final)
    return Picture(final, picture.width, picture.height, source_format, frames)


def _plain(image: Image.Image, src: Path) -> bool:
    """Already what we would write (e.g. every Telegram photo): then it is sent on as it came,
    sparing a JPEG a second generation of loss. Anything with EXIF is rewritten, which also
    keeps a camera's GPS position from travelling on to a provider."""
    return (
        image.format in PLAIN_FORMATS
        and image.mode == "RGB"
        and not {"exif", "icc_profile", "transparency"} & set(image.info)
        and max(image.size) <= MAX_OUTPUT_SIDE
        and (image.format != "PNG" or _png_bit_depth(src) == 8)
    )


def _png_bit_depth(path: Path) -> int:
    # Pillow shows a 16-bit RGB PNG as plain "RGB"; the IHDR chunk (bytes 16-24) tells.
    with path.open("rb") as png:
        header = png.read(25)
    return header[24] if len(header) == 25 else 0


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Image.Image]:
    """Open (header only) one of FORMATS; unreadable, empty or foreign files are refused."""
    try:
        image = Image.open(path, formats=FORMATS)
    except Image.DecompressionBombError as exc:
        # Only the message says how big: "Image size (400000000 pixels) exceeds limit…".
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_many_pixels(int(found.group(1)) if found else MAX_PIXELS * 2) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UserInputError("photo_unreadable") from exc
    with image:
        yield image


def _displayed_size(image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    # Orientations 5-8 are quarter turns: the picture is seen the other way round.
    if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
        return height, width
    return width, height


def _draft(image: Image.Image) -> None:
    """Let a big JPEG decode straight at 1/2, 1/4 or 1/8 size: far less memory and time."""
    if image.format not in ("JPEG", "MPO"):
        return
    width, height = image.size
    scale = MAX_OUTPUT_SIDE / max(width, height)
    if scale < 0.5:
        image.draft(None, (max(1, int(width * scale)), max(1, int(height * scale))))


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and float greys scaled to 8 bits (Pillow's own conversion clips them to white)."""
    if image.mode not in _HIGH_BIT_MODES:
        return image
    wide = image if image.mode == "F" else image.convert("I")
    high = _brightest(wide)
    # Floats usually run 0..1, integers 0..65535; anything brighter is scaled to its peak.
    top = max(high, 1.0 if image.mode == "F" else 65535.0)
    return wide.point(lambda v: v * (255.0 / top)).convert("L")


def _brightest(image: Image.Image) -> float:
    extrema = image.getextrema()
    high = extrema[1]
    return float(high) if isinstance(high, int | float) else 0.0


def _flattened(image: Image.Image) -> Image.Image:
    """Transparency laid over BACKGROUND; every other mode made RGB, L or CMYK."""
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if image.mode in ("RGB", "L", "CMYK"):
        return image
    return image.convert("RGB")


def _shrunk(image: Image.Image) -> Image.Image:
    if max(image.size) <= MAX_OUTPUT_SIDE:
        return image
    scale = MAX_OUTPUT_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _to_srgb(image: Image.Image, icc: object) -> Image.Image:
    """RGB in sRGB: an embedded profile (Display P3 on iPhones, CMYK press profiles) honoured."""
    if isinstance(icc, bytes) and icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            # A broken profile is common enough; the pixels themselves are still fine.
            log.info("ignoring an unusable ICC profile: %s", exc)
        else:
            if converted is not None:
                return converted
    return image if image.mode == "RGB" else image.convert("RGB")


def _write_jpeg(image: Image.Image, dest: Path) -> None:
    """Write whole or not at all: a half-written input must never reach a render."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            image.save(out, "JPEG", quality=JPEG_QUALITY)
        os.replace(name, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
