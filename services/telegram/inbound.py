"""Files users send: checked before anything is spent, then fetched into the work folder.

What a file *is* is decided by decoding it, never by its MIME type or name: phones send HEIC
as application/octet-stream, cameras MJPEG in AVI, browsers WebM with no duration. A MIME type
only says what to try first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from services.errors import MediaError, MessengerError, UserInputError
from services.media import ffmpeg as media
from services.media import images
from services.media.images import MAX_RATIO, MIN_SIDE, Picture, check_dimensions
from services.telegram.messenger import Messenger
from services.texts import human_size

__all__ = ["MAX_RATIO", "MIN_SIDE", "check_dimensions"]

log = logging.getLogger(__name__)

MAX_CLIP_SECONDS = 60
# Shorter than a couple of frames is a still picture in a video's clothes, not a clip.
MIN_CLIP_SECONDS = 0.1
# "Send it in 720p" is advice only for a clip that is bigger than that.
HD_SHORT_SIDE = 720
# Remuxing copies packets without decoding: seconds even for a 2 GB file from a local server.
_REMUX_TIMEOUT = 120.0
_DECODE_TIMEOUT = 60.0

# Saved files' suffixes → the MIME type a provider is told on upload.
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".aiff": "audio/aiff",
    ".aac": "audio/aac",
    ".amr": "audio/amr",
    ".caf": "audio/x-caf",
    ".flv": "video/x-flv",
    ".mpg": "video/mpeg",
    ".wmv": "video/x-ms-wmv",
    ".gif": "image/gif",
}
# ffmpeg's container names → the suffix we save a clip or sound under.
CONTAINER_SUFFIXES = {
    "mov,mp4,m4a,3gp,3g2,mj2": ".mp4",
    "matroska,webm": ".mkv",
    "avi": ".avi",
    "mpegts": ".ts",
    "ogg": ".ogg",
    "mp3": ".mp3",
    "flac": ".flac",
    "wav": ".wav",
    "aiff": ".aiff",
    "aac": ".aac",
    "amr": ".amr",
    "caf": ".caf",
    "flv": ".flv",
    "mpeg": ".mpg",
    "asf": ".wmv",
    "gif": ".gif",
}
# Codecs a WebM may hold: a Matroska file of only these is saved (and uploaded) as WebM.
WEBM_CODECS = frozenset({"vp8", "vp9", "av1", "opus", "vorbis"})
# Documents whose MIME type says nothing about their content: decoding them tells.
UNTRUSTED_TYPES = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/binary",
        "application/unknown",
        "application/x-unknown",
        "application/ogg",
        "application/mp4",
        "application/x-matroska",
        "application/vnd.apple.photos",
    }
)


def content_type_of(path: Path) -> str:
    """The MIME type for a file we saved (we chose its suffix ourselves)."""
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def worth_decoding(mime_type: str | None) -> bool:
    """Whether a document may be a photo, clip or sound (so it is fetched and decoded)."""
    mime = (mime_type or "").lower()
    return mime.startswith(("image/", "video/", "audio/")) or mime in UNTRUSTED_TYPES


@dataclass(frozen=True)
class InboundImage:
    """A photo, or an image sent as a file, as Telegram describes it.

    ``local_path`` is set when the file was already fetched (to learn what it was).
    """

    file_id: str
    file_unique_id: str
    size: int | None
    width: int | None
    height: int | None
    mime_type: str = "image/jpeg"
    local_path: Path | None = None


@dataclass(frozen=True)
class InboundMedia:
    """A clip (video, animation, file) or a sound (voice, audio, file), as Telegram describes it.

    ``width``/``height`` are what Telegram says (videos only); ``local_path`` as for images.
    """

    file_id: str
    file_unique_id: str
    size: int | None
    mime_type: str
    width: int | None = None
    height: int | None = None
    local_path: Path | None = None


class Kind(StrEnum):
    """What a file turned out to hold."""

    IMAGE = "image"
    CLIP = "clip"
    SOUND = "sound"


# Per kind: the text for a file too big to fetch, and for one that does not decode as it.
TOO_BIG = {Kind.IMAGE: "photo_too_big", Kind.CLIP: "clip_too_big", Kind.SOUND: "audio_too_big"}
UNREADABLE = {
    Kind.IMAGE: "photo_unreadable",
    Kind.CLIP: "clip_unreadable",
    Kind.SOUND: "audio_unreadable",
}


def _refuse(path: Path, key: str, **params: object) -> NoReturn:
    """Remove a downloaded file we will not use and say why."""
    path.unlink(missing_ok=True)
    raise UserInputError(key, **params)


async def _fetch(
    messenger: Messenger,
    file_id: str,
    size: int | None,
    dest: Path,
    limit: int,
    too_big: str,
    fetched: Path | None = None,
) -> None:
    """Download through getFile (or take a copy ``fetched`` already); too big is explained."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fetched is not None and fetched.is_file():
        os.replace(fetched, dest)
        return
    if size is not None and size > limit:
        raise UserInputError(too_big, size=human_size(size), limit=human_size(limit))
    try:
        await messenger.download(file_id, dest, limit)
    except MessengerError as exc:
        if exc.kind == "too_large":
            shown = human_size(size or limit + 1)
            raise UserInputError(too_big, size=shown, limit=human_size(limit)) from exc
        raise


# --- images ---------------------------------------------------------------------------------


def check_declared(image: InboundImage, limit: int) -> None:
    """What Telegram tells us about the file, checked before downloading it."""
    if image.size is not None and image.size > limit:
        raise UserInputError("photo_too_big", size=human_size(image.size), limit=human_size(limit))
    if image.width and image.height:
        check_dimensions(image.width, image.height)


async def fetch_image(
    messenger: Messenger, image: InboundImage, folder: Path, limit: int
) -> tuple[Path, Picture]:
    """Download, decode and normalise an image into an upright sRGB one of our own name."""
    check_declared(image, limit)
    name = uuid.uuid4().hex
    raw = folder / f"{name}.in"
    await _fetch(
        messenger, image.file_id, image.size, raw, limit, "photo_too_big", image.local_path
    )
    try:
        picture = await images.normalise(raw, folder / name)
    finally:
        raw.unlink(missing_ok=True)  # gone already if it was moved into place as it came
    return picture.path, picture


# --- clips and sounds -----------------------------------------------------------------------


def clip_too_big_key(clip: InboundMedia) -> str:
    """The too-big text: "send it in 720p" only to a clip known to be larger than 720p."""
    if clip.width and clip.height and min(clip.width, clip.height) > HD_SHORT_SIDE:
        return "clip_too_big_hd"
    return "clip_too_big"


def suffix_for(info: media.MediaInfo) -> str:
    """The suffix a clip or sound is saved under, from what ffmpeg found inside."""
    suffix = CONTAINER_SUFFIXES.get(info.container, ".bin")
    if suffix == ".mkv" and {info.video_codec, info.audio_codec} - {None} <= WEBM_CODECS:
        return ".webm"
    if suffix == ".mp4" and not info.has_video:
        return ".m4a"
    return suffix


async def _probed(path: Path, unreadable: str) -> media.MediaInfo:
    """Probe a downloaded file; one that ffmpeg cannot open is removed and explained."""
    try:
        return await media.probe(path)
    except MediaError as exc:
        log.info("inbound file did not probe: %s", exc)
        _refuse(path, unreadable)


async def _decodes(path: Path, stream: str) -> bool:
    """Whether ffmpeg really decodes the first moments of ``stream`` ("V" or "a")."""
    # Probing reads headers only; a codec this ffmpeg lacks shows up when decoding starts.
    args = ["-v", "error", "-i", str(path.absolute()), "-map", f"0:{stream}:0"]
    args += ["-frames:v", "1"] if stream == "V" else ["-t", "1"]
    try:
        await media.run_ffmpeg([*args, "-f", "null", "-"], timeout=_DECODE_TIMEOUT)
    except MediaError as exc:
        log.info("inbound %s stream does not decode: %s", stream, exc)
        return False
    return True


async def _with_duration(path: Path, info: media.MediaInfo) -> tuple[Path, media.MediaInfo]:
    """A clip or sound whose header lacks a duration, rewritten so that it has one.

    Browser recordings (MediaRecorder WebM) are written as a stream and never get one; copying
    the packets into a fresh file makes ffmpeg count them and write it, for every later step.
    """
    if info.duration is not None:
        return path, info
    # Matroska takes any codec and writes the duration once it has seen the last packet.
    muxer, suffix = ("webm", ".webm") if suffix_for(info) == ".webm" else ("matroska", ".mkv")
    fixed = path.with_name(f"{path.stem}.fixed{suffix}")
    args = ["-i", str(path.absolute()), "-map", "0:V:0?", "-map", "0:a:0?", "-c", "copy"]
    try:
        await media.run_ffmpeg([*args, "-f", muxer, str(fixed)], timeout=_REMUX_TIMEOUT)
        fixed_info = await media.probe(fixed)
    except MediaError as exc:
        log.info("could not rewrite a file without a duration: %s", exc)
        fixed.unlink(missing_ok=True)
        return path, info
    path.unlink(missing_ok=True)
    return fixed, fixed_info


def _settle(path: Path, info: media.MediaInfo) -> Path:
    """Rename a checked file to a suffix that matches its content."""
    dest = path.with_name(f"{path.stem.split('.')[0]}{suffix_for(info)}")
    os.replace(path, dest)
    return dest


async def fetch_clip(
    messenger: Messenger, clip: InboundMedia, folder: Path, limit: int
) -> tuple[Path, media.MediaInfo]:
    """Download and check a clip: moving video that ffmpeg decodes, not too long."""
    raw = folder / f"{uuid.uuid4().hex}.in"
    too_big = clip_too_big_key(clip)
    await _fetch(messenger, clip.file_id, clip.size, raw, limit, too_big, clip.local_path)
    info = await _probed(raw, "clip_unreadable")
    if not info.has_video or not info.width or not info.height:
        _refuse(raw, "clip_unreadable")
    if info.still or (info.duration is not None and info.duration < MIN_CLIP_SECONDS):
        _refuse(raw, "clip_is_still")
    if not await _decodes(raw, "V"):
        _refuse(raw, "clip_unreadable")
    raw, info = await _with_duration(raw, info)
    if info.duration is None:
        _refuse(raw, "clip_unreadable")
    if info.duration > MAX_CLIP_SECONDS:
        _refuse(raw, "clip_too_long", seconds=int(info.duration), limit=MAX_CLIP_SECONDS)
    return _settle(raw, info), info


async def fetch_audio(messenger: Messenger, sound: InboundMedia, folder: Path, limit: int) -> Path:
    """Download and check a voice note or audio file: any sound ffmpeg decodes."""
    raw = folder / f"{uuid.uuid4().hex}.in"
    await _fetch(
        messenger, sound.file_id, sound.size, raw, limit, "audio_too_big", sound.local_path
    )
    info = await _probed(raw, "audio_unreadable")
    if not info.has_audio or not await _decodes(raw, "a"):
        _refuse(raw, "audio_unreadable")
    raw, info = await _with_duration(raw, info)
    return _settle(raw, info)


# --- files of unknown kind ------------------------------------------------------------------


def tries_for(mime_type: str | None) -> tuple[Kind, ...]:
    """The kinds to try a document as, most likely first (its MIME type is only a hint)."""
    mime = (mime_type or "").lower()
    if mime.startswith("video/"):
        return (Kind.CLIP, Kind.SOUND, Kind.IMAGE)
    if mime.startswith("audio/") or mime == "application/ogg":
        return (Kind.SOUND, Kind.CLIP, Kind.IMAGE)
    return (Kind.IMAGE, Kind.CLIP, Kind.SOUND)


async def identify(
    messenger: Messenger, item: InboundMedia, folder: Path, limit: int
) -> tuple[Kind, Path]:
    """Fetch a document and find what it holds; the file is then handed to that kind's check."""
    order = tries_for(item.mime_type)
    hinted = item.mime_type.startswith(("image/", "video/", "audio/"))
    raw = folder / f"{uuid.uuid4().hex}.in"
    too_big = TOO_BIG[order[0]] if hinted else "file_too_big"
    await _fetch(messenger, item.file_id, item.size, raw, limit, too_big)
    is_image = await asyncio.to_thread(images.identify, raw) is not None
    try:
        info: media.MediaInfo | None = None if is_image else await media.probe(raw)
    except MediaError:
        info = None
    found = {
        Kind.IMAGE: is_image,
        Kind.CLIP: info is not None and info.has_video and not info.still,
        Kind.SOUND: info is not None and info.has_audio,
    }
    for kind in order:
        if found[kind]:
            return kind, raw
    _refuse(raw, UNREADABLE[order[0]] if hinted else "file_unreadable")
