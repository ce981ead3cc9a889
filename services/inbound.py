"""Files users send: checked before anything is spent, then fetched into the work folder."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from services import media
from services.errors import MediaError, MessengerError, UserInputError
from services.telegram_edge import Messenger
from services.views import human_size

log = logging.getLogger(__name__)

MIN_SIDE = 64
MAX_SIDE = 10_000
MAX_RATIO = 20
IMAGE_CODECS = frozenset(
    {"mjpeg", "png", "webp", "bmp", "tiff", "gif", "jpegls", "heif", "hevc", "av1"}
)
IMAGE_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "image/heic": ".heic",
}


MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
}


def content_type_of(path: Path) -> str:
    """The MIME type for a file we saved (we chose its suffix ourselves)."""
    suffix = path.suffix.lower()
    images = {ext: kind for kind, ext in IMAGE_TYPES.items()}
    return images.get(suffix) or MEDIA_TYPES.get(suffix, "application/octet-stream")


@dataclass(frozen=True)
class InboundImage:
    """A photo, or an image sent as a file, as Telegram describes it."""

    file_id: str
    file_unique_id: str
    size: int | None
    width: int | None
    height: int | None
    mime_type: str = "image/jpeg"


async def _probed(dest: Path, unreadable: str) -> media.MediaInfo:
    """Probe a downloaded file; one that does not decode is removed and explained."""
    try:
        return await media.probe(dest)
    except MediaError as exc:
        dest.unlink(missing_ok=True)
        raise UserInputError(unreadable) from exc


def _refuse(dest: Path, key: str, **params: object) -> NoReturn:
    """Remove a downloaded file we will not use and say why."""
    dest.unlink(missing_ok=True)
    raise UserInputError(key, **params)


def check_dimensions(width: int, height: int) -> None:
    """Refuse images too small, too large or too thin to animate."""
    ratio = max(width, height) / max(1, min(width, height))
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE or ratio > MAX_RATIO:
        raise UserInputError(
            "photo_dimensions", width=width, height=height, min_side=MIN_SIDE, max_ratio=MAX_RATIO
        )


def check_declared(image: InboundImage, limit: int) -> None:
    """What Telegram tells us about the file, checked before downloading it."""
    if image.mime_type not in IMAGE_TYPES:
        raise UserInputError("not_an_image")
    if image.size is not None and image.size > limit:
        raise UserInputError("photo_too_big", size=human_size(image.size), limit=human_size(limit))
    if image.width and image.height:
        check_dimensions(image.width, image.height)


async def fetch_image(
    messenger: Messenger, image: InboundImage, folder: Path, limit: int
) -> tuple[Path, media.MediaInfo]:
    """Download and decode-check an image; the file name is ours, never the user's."""
    check_declared(image, limit)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{uuid.uuid4().hex}{IMAGE_TYPES[image.mime_type]}"
    await _fetch(messenger, image.file_id, image.size, dest, limit, "photo_too_big")
    info = await _probed(dest, "photo_unreadable")
    if not info.has_video or not info.width or not info.height:
        _refuse(dest, "photo_unreadable")
    if info.duration and info.duration > 0.5 and (info.video_codec or "") not in IMAGE_CODECS:
        _refuse(dest, "not_an_image")
    try:
        check_dimensions(info.width, info.height)
    except UserInputError:
        dest.unlink(missing_ok=True)
        raise
    return dest, info


VIDEO_TYPES = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm"}
AUDIO_TYPES = {
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".m4a",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
}
MAX_CLIP_SECONDS = 60


@dataclass(frozen=True)
class InboundMedia:
    """A clip (video, animation, video file) or a sound (voice, audio), as Telegram describes it."""

    file_id: str
    file_unique_id: str
    size: int | None
    mime_type: str


async def _fetch(
    messenger: Messenger, file_id: str, size: int | None, dest: Path, limit: int, too_big: str
) -> None:
    """Download through getFile; a file over the limit is explained with its size."""
    if size is not None and size > limit:
        raise UserInputError(too_big, size=human_size(size), limit=human_size(limit))
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        await messenger.download(file_id, dest, limit)
    except MessengerError as exc:
        if exc.kind == "too_large":
            shown = human_size(size or limit + 1)
            raise UserInputError(too_big, size=shown, limit=human_size(limit)) from exc
        raise


async def fetch_clip(
    messenger: Messenger, clip: InboundMedia, folder: Path, limit: int
) -> tuple[Path, media.MediaInfo]:
    """Download and check a clip: a real video, not too long; the file name is ours."""
    suffix = VIDEO_TYPES.get(clip.mime_type)
    if suffix is None:
        raise UserInputError("not_a_video")
    dest = folder / f"{uuid.uuid4().hex}{suffix}"
    await _fetch(messenger, clip.file_id, clip.size, dest, limit, "clip_too_big")
    info = await _probed(dest, "clip_unreadable")
    if not info.has_video or not info.duration or (info.video_codec or "") in IMAGE_CODECS:
        _refuse(dest, "clip_unreadable")
    if info.duration > MAX_CLIP_SECONDS:
        _refuse(dest, "clip_too_long", seconds=int(info.duration), limit=MAX_CLIP_SECONDS)
    return dest, info


async def fetch_audio(messenger: Messenger, sound: InboundMedia, folder: Path, limit: int) -> Path:
    """Download and check a voice note or audio file."""
    suffix = AUDIO_TYPES.get(sound.mime_type)
    if suffix is None:
        raise UserInputError("audio_unreadable")
    dest = folder / f"{uuid.uuid4().hex}{suffix}"
    await _fetch(messenger, sound.file_id, sound.size, dest, limit, "audio_too_big")
    info = await _probed(dest, "audio_unreadable")
    if not info.has_audio:
        _refuse(dest, "audio_unreadable")
    return dest
