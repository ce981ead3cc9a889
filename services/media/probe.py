"""``MediaInfo`` and the parsers that build it from ffprobe JSON or ffmpeg's input banner."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.errors import MediaError


@dataclass(frozen=True)
class MediaInfo:
    """What we know about a media file; width/height are as displayed (rotation applied)."""

    size: int
    duration: float | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    has_video: bool
    has_audio: bool
    bit_rate: int | None
    # ffmpeg's name for the container ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "image2").
    container: str = ""

    @property
    def still(self) -> bool:
        """A single picture (read by an image demuxer), not a clip, whatever its codec."""
        return _is_still_image_format(self.container)


def _is_still_image_format(format_name: str) -> bool:
    # The image demuxers report a one-frame duration (0.04 s) that means nothing for a photo.
    return any(name == "image2" or name.endswith("_pipe") for name in format_name.split(","))


def _quarter_turned(rotation: float | None) -> bool:
    return rotation is not None and round(abs(rotation)) % 180 == 90


def _to_float(value: object) -> float | None:
    try:
        result = float(str(value))
    except ValueError:
        return None
    return result if math.isfinite(result) and result >= 0 else None


def _abs_text(value: object) -> str:
    return str(value).lstrip("-")


def _to_int(value: object) -> int | None:
    number = _to_float(value)
    return int(number) if number is not None else None


def _not_media(size: int, detail: str) -> MediaError:
    return MediaError(f"not a media file ({size} bytes): {detail}")


def media_size(path: Path) -> int:
    """Size in bytes of a file about to be probed; MediaError if missing or empty."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(f"not a media file: cannot read {path.name} ({exc.strerror})") from exc
    if size == 0:
        raise MediaError(f"not a media file: {path.name} is empty")
    return size


def parse_ffprobe_output(returncode: int, stdout: bytes, stderr: bytes, size: int) -> MediaInfo:
    """Check an ffprobe run (exit code, JSON on stdout) and parse it."""
    if returncode != 0:
        raise _not_media(size, stderr.decode("utf-8", "replace").strip()[-500:])
    try:
        data = json.loads(stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _not_media(size, "ffprobe printed no JSON object")
    return parse_ffprobe_json(data, size)


def parse_ffprobe_json(data: dict[str, Any], size: int) -> MediaInfo:
    """Build a MediaInfo from ``ffprobe -print_format json -show_format -show_streams`` output."""
    streams = [s for s in data.get("streams") or [] if isinstance(s, dict)]
    fmt: dict[str, Any] = data.get("format") or {}
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and audio is None:
        raise _not_media(size, "no audio or video stream")

    width = height = None
    if video is not None:
        width, height = _to_int(video.get("width")) or None, _to_int(video.get("height")) or None
        # Newer ffprobe reports rotation in side data, older ones in a "rotate" tag.
        rotations = [
            side.get("rotation")
            for side in video.get("side_data_list") or []
            if isinstance(side, dict)
        ]
        rotations.append((video.get("tags") or {}).get("rotate"))
        rotation = next((r for r in map(_to_float, map(_abs_text, rotations)) if r), None)
        if _quarter_turned(rotation):
            width, height = height, width

    container = str(fmt.get("format_name", ""))
    duration: float | None = None
    if not _is_still_image_format(container):
        duration = _to_float(fmt.get("duration", "N/A"))
        if duration is None:
            for stream in (video, audio):
                if stream is not None and duration is None:
                    duration = _to_float(stream.get("duration", "N/A"))
    return MediaInfo(
        size=size,
        duration=duration,
        width=width,
        height=height,
        video_codec=str(video["codec_name"]) if video and video.get("codec_name") else None,
        audio_codec=str(audio["codec_name"]) if audio and audio.get("codec_name") else None,
        has_video=video is not None,
        has_audio=audio is not None,
        bit_rate=_to_int(fmt.get("bit_rate", "N/A")),
        container=container,
    )


_INPUT_RE = re.compile(r"^Input #0, (.+?), from ", re.MULTILINE)
_DURATION_RE = re.compile(
    r"^\s*Duration:\s*(?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|N/A)[^\n]*?"
    r"(?:bitrate:\s*(\d+(?:\.\d+)?)\s*kb/s)?\s*$",
    re.MULTILINE,
)
_STREAM_RE = re.compile(r"^\s*Stream #0:\d+\S*: (\w+): (.*)$")
# The first WxH token; the lookarounds skip codec tags such as "0x31637661".
_SIZE_RE = re.compile(r"(?<![\w.])([1-9]\d{0,5})x([1-9]\d{0,5})(?![\w.])")
_ROTATION_RE = re.compile(
    r"^\s*(?:display ?matrix:\s*rotation of|rotate\s*:)\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE
)


# HDR transfers as ffmpeg's banner names them (PQ: HDR10 and Dolby Vision; HLG: iPhones).
_HDR_TRANSFER_RE = re.compile(r"/(smpte2084|arib-std-b67)\b")
# Tone-mapped to BT.709 in linear light. Without it an 8-bit H.264 copy of an HDR clip keeps
# the HDR code values but (in newer ffmpegs) loses their tags, and plays washed out and grey.
_TO_SDR = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
    "tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p,"
)


def sdr_filters(video_line: str) -> str:
    """Filters (ending in a comma) bringing an HDR video stream to SDR; "" for SDR streams.

    ``video_line`` is the ``Stream #0:0: Video: …`` line of ffmpeg's input banner.
    """
    return _TO_SDR if _HDR_TRANSFER_RE.search(video_line) else ""


def parse_ffmpeg_banner(text: str, size: int) -> MediaInfo:
    """Build a MediaInfo from the stderr of ``ffmpeg -hide_banner -i FILE`` (no ffprobe)."""
    if "Invalid data found when processing input" in text:
        raise _not_media(size, "invalid data found when processing input")
    input_match = _INPUT_RE.search(text)
    if input_match is None:
        raise _not_media(size, "ffmpeg could not open it")
    body = text[input_match.end() :]

    video: tuple[str, str] | None = None
    audio_codec: str | None = None
    rotation: float | None = None
    in_video_block = False
    for line in body.splitlines():
        stream = _STREAM_RE.match(line)
        if stream is not None:
            kind, rest = stream.groups()
            codec = rest.split(None, 1)[0].rstrip(",") if rest.strip() else "unknown"
            in_video_block = False
            if kind == "Video" and video is None and "(attached pic)" not in rest:
                video, in_video_block = (codec, rest), True
            elif kind == "Audio" and audio_codec is None:
                audio_codec = codec
            continue
        rot = _ROTATION_RE.match(line)
        if rot is not None and in_video_block:
            rotation = float(rot.group(1))
    if video is None and audio_codec is None:
        raise _not_media(size, "no audio or video stream")

    width = height = None
    if video is not None and (dims := _SIZE_RE.search(video[1])) is not None:
        width, height = int(dims.group(1)), int(dims.group(2))
        if _quarter_turned(rotation):
            width, height = height, width

    duration = bit_rate = None
    dur = _DURATION_RE.search(body)
    if dur is not None:
        hours, minutes, seconds, kbps = dur.groups()
        if hours is not None and not _is_still_image_format(input_match.group(1)):
            duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        if kbps is not None:
            bit_rate = int(float(kbps) * 1000)
    return MediaInfo(
        size=size,
        duration=duration,
        width=width,
        height=height,
        video_codec=video[0] if video else None,
        audio_codec=audio_codec,
        has_video=video is not None,
        has_audio=audio_codec is not None,
        bit_rate=bit_rate,
        container=input_match.group(1),
    )
