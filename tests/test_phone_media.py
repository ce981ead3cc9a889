"""Media as real phones and cameras make it: each trait accepted the right way, or refused in words.

The corpus is made on the spot (images with Pillow, clips and sounds with the bot's own ffmpeg),
so every case runs against whichever ffmpeg the bot would use: Debian's 5.1 or the wheel's.
Inbound cases call the fetch functions directly with a messenger that copies files; a few end to
end cases drive the real bot through the fake Bot API.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from services.errors import MediaError, UserInputError
from services.media import effects as media_effects
from services.media import ffmpeg as media
from services.media import images
from services.media.probe import sdr_filters
from services.model.jobs import JobKind, JobState
from services.telegram import inbound
from services.telegram.inbound import InboundImage, InboundMedia, Kind
from tests.conftest import (
    USER,
    data_for,
    delivered_jobs,
    make_settings,
    reply_to,
    running_bot,
    services_of,
)
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import (
    BLUE,
    RED,
    banner,
    can_encode,
    make_clip,
    make_image,
    make_photo,
    make_pixel_bomb,
    make_sound,
    srgb_icc,
)

# --- the corpus ----------------------------------------------------------------------------

# name → (make_image keyword arguments); 640×480 stored unless said otherwise.
IMAGES: dict[str, dict[str, Any]] = {
    "plain.jpg": {},
    "exif1.jpg": {"orientation": 1},
    "exif3.jpg": {"orientation": 3},
    "exif6.jpg": {"orientation": 6},
    "exif8.jpg": {"orientation": 8},
    "exif6.heic": {"fmt": "HEIF", "orientation": 6},
    "plain.heic": {"fmt": "HEIF"},
    "exif6.avif": {"fmt": "AVIF", "orientation": 6},
    "cmyk.jpg": {"mode": "CMYK"},
    "icc.jpg": {"icc": b"srgb"},
    "grey16.png": {"mode": "I;16", "fmt": "PNG"},
    "alpha.png": {"transparent": True, "fmt": "PNG"},
    "alpha.webp": {"transparent": True, "fmt": "WEBP"},
    "palette.gif": {"mode": "P", "fmt": "GIF"},
    "alpha.gif": {"transparent": True, "fmt": "GIF"},
    "animated.gif": {"mode": "P", "fmt": "GIF", "frames": 3},
    "bmp.bmp": {"fmt": "BMP"},
    "tiff.tif": {"fmt": "TIFF"},
    "tiny.png": {"fmt": "PNG", "width": 10, "height": 10},
    "thin.png": {"fmt": "PNG", "width": 2000, "height": 64},
    "huge.jpg": {"width": 9000, "height": 6000},
    "big.png": {"fmt": "PNG", "width": 5000, "height": 3000},
}

# name → (make_clip keyword arguments, the encoder it needs)
CLIPS: dict[str, dict[str, Any]] = {
    "portrait.mp4": {"rotation": 90, "audio": "aac"},
    "portrait.mov": {"rotation": -90, "video": "hevc", "audio": "aac"},
    "hevc.mov": {"video": "hevc", "audio": "aac"},
    "hevc10.mov": {"video": "hevc10"},
    "vp9.webm": {"video": "vp9", "audio": "opus"},
    "av1.mp4": {"video": "av1"},
    "av1.mkv": {"video": "av1", "audio": "opus"},
    "mjpeg.avi": {"video": "mjpeg", "audio": "pcm"},
    "h264.mkv": {"audio": "aac"},
    "h264.mov": {"audio": "aac"},
    "vfr.mp4": {"vfr": True, "seconds": 2.0},
    "browser.webm": {"video": "vp9", "audio": "opus", "streamed": True, "seconds": 2.0},
    "surround.mp4": {"audio": "aac", "channels": 6},
    "silent.mp4": {},
    "long.mp4": {"seconds": 61.0, "width": 64, "height": 64, "fps": 5},
}

# name → audio codec (the suffix picks the container)
SOUNDS: dict[str, str] = {
    "voice.opus": "opus",
    "aac.m4a": "aac",
    "song.mp3": "mp3",
    "lossless.flac": "flac",
    "pcm.wav": "pcm",
    "pcm.aiff": "pcm_be",
    "alac.m4a": "alac",
    "vorbis.ogg": "vorbis",
    "opus.webm": "opus",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every trait once per test module: name → file."""
    root = tmp_path_factory.mktemp("phone")
    made: dict[str, Path] = {}
    for name, options in IMAGES.items():
        options = dict(options)
        if options.get("icc"):
            options["icc"] = srgb_icc()
        made[name] = make_image(root / name, **options)
    made["rgb16.png"] = make_photo(root / "rgb16.png", 320, 240, fmt="png16")
    made["rgb24.png"] = make_photo(root / "rgb24.png", 320, 240, fmt="png")
    made["telegram.jpg"] = make_photo(root / "telegram.jpg", 320, 240)
    made["bomb.png"] = make_pixel_bomb(root / "bomb.png")
    for name, options in CLIPS.items():
        if can_encode(options.get("video", "h264")):
            made[name] = make_clip(root / name, **options)
    for name, codec in SOUNDS.items():
        made[name] = make_sound(root / name, codec)
    # An audio-only recording written as a stream, as a browser records a voice message.
    made["voice-only.webm"] = make_sound(
        root / "voice-only.webm", "opus", seconds=2.0, streamed=True
    )
    whole = made["plain.jpg"].read_bytes()
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    made["truncated.jpg"] = root / "truncated.jpg"
    (root / "notes.txt").write_text("these are not pixels\n" * 40)
    made["notes.txt"] = root / "notes.txt"
    return made


def need(corpus: dict[str, Path], name: str) -> Path:
    """A corpus file, or a skip saying which encoder this ffmpeg lacks."""
    if name not in corpus:
        codec = CLIPS[name].get("video", "h264")
        pytest.skip(f"this ffmpeg ({media.default_tools().ffmpeg}) cannot encode {codec}")
    return corpus[name]


class CopyingMessenger:
    """The one Messenger call inbound makes: "download" copies a corpus file by its id."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        self.downloads: list[str] = []

    async def download(self, file_id: str, dest: Path, max_bytes: int) -> int:
        self.downloads.append(file_id)
        shutil.copyfile(self.files[file_id], dest)
        return dest.stat().st_size


def as_image(name: str, path: Path, mime: str = "image/jpeg") -> InboundImage:
    return InboundImage(name, f"u-{name}", path.stat().st_size, None, None, mime)


def as_media(name: str, path: Path, mime: str = "video/mp4") -> InboundMedia:
    return InboundMedia(name, f"u-{name}", path.stat().st_size, mime)


def colour_at(path: Path, x: float, y: float) -> tuple[int, int, int]:
    """The RGB colour at a fraction (x, y) of a JPEG's width and height."""
    with Image.open(path) as image:
        pixel = image.convert("RGB").getpixel(
            (
                min(image.width - 1, int(x * image.width)),
                min(image.height - 1, int(y * image.height)),
            )
        )
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def near(colour: tuple[int, int, int], target: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(colour, target, strict=True))


# --- images --------------------------------------------------------------------------------

# name → (displayed width, height, where the red band shows: "top", "right", "bottom", "left")
UPRIGHT: dict[str, tuple[int, int, str]] = {
    "plain.jpg": (640, 480, "top"),
    "exif3.jpg": (640, 480, "bottom"),
    "exif6.jpg": (480, 640, "right"),
    "exif8.jpg": (480, 640, "left"),
    "exif6.heic": (480, 640, "right"),
    "plain.heic": (640, 480, "top"),
    "exif6.avif": (480, 640, "right"),
    "cmyk.jpg": (640, 480, "top"),
    "icc.jpg": (640, 480, "top"),
    "palette.gif": (640, 480, "top"),
    "bmp.bmp": (640, 480, "top"),
    "tiff.tif": (640, 480, "top"),
}
BAND_AT = {"top": (0.5, 0.02), "bottom": (0.5, 0.98), "left": (0.02, 0.5), "right": (0.98, 0.5)}
FAR_FROM = {"top": (0.5, 0.9), "bottom": (0.5, 0.1), "left": (0.9, 0.5), "right": (0.1, 0.5)}


async def fetch(
    corpus: dict[str, Path], name: str, tmp_path: Path, mime: str = "image/jpeg"
) -> tuple[Path, images.Picture]:
    messenger = CopyingMessenger(corpus)
    return await inbound.fetch_image(
        messenger,  # type: ignore[arg-type]
        as_image(name, corpus[name], mime),
        tmp_path / "inbound",
        20_000_000,
    )


@pytest.mark.parametrize("name", list(UPRIGHT))
async def test_images_arrive_upright_in_srgb_jpeg(
    name: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    path, picture = await fetch(corpus, name, tmp_path)
    width, height, band = UPRIGHT[name]
    assert (picture.width, picture.height) == (width, height)
    with Image.open(path) as written:
        assert (written.format, written.mode, written.size) == ("JPEG", "RGB", (width, height))
        assert not written.getexif().get(0x0112), "no orientation left for anyone to apply twice"
    assert near(colour_at(path, *BAND_AT[band]), RED), colour_at(path, *BAND_AT[band])
    assert near(colour_at(path, *FAR_FROM[band]), BLUE), colour_at(path, *FAR_FROM[band])
    assert path.suffix == ".jpg" and inbound.content_type_of(path) == "image/jpeg"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # the download is gone


async def test_a_plain_photo_is_passed_on_byte_for_byte(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    # Already upright 8-bit sRGB without metadata (every Telegram photo): no second JPEG loss.
    for name, suffix in (("plain.jpg", ".jpg"), ("telegram.jpg", ".jpg"), ("rgb24.png", ".png")):
        path, _ = await fetch(corpus, name, tmp_path)
        assert path.suffix == suffix and path.read_bytes() == corpus[name].read_bytes(), name
        assert inbound.content_type_of(path) == f"image/{'png' if suffix == '.png' else 'jpeg'}"
    # Anything else is rewritten: 16 bits per channel, or EXIF (a camera's GPS stays here).
    for name in ("rgb16.png", "exif1.jpg"):
        path, _ = await fetch(corpus, name, tmp_path)
        assert path.suffix == ".jpg" and path.read_bytes() != corpus[name].read_bytes(), name
        with Image.open(path) as written:
            assert "exif" not in written.info and written.mode == "RGB"


@pytest.mark.parametrize("name", ["alpha.png", "alpha.webp", "alpha.gif"])
async def test_transparency_is_laid_over_white_not_black(
    name: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    path, picture = await fetch(corpus, name, tmp_path, mime="image/png")
    assert (picture.width, picture.height) == (640, 480)
    assert near(colour_at(path, 0.25, 0.6), images.BACKGROUND, slack=12)
    assert near(colour_at(path, 0.75, 0.6), BLUE)


async def test_sixteen_bit_images_keep_their_tones(corpus: dict[str, Path], tmp_path: Path) -> None:
    path, _ = await fetch(corpus, "grey16.png", tmp_path, mime="image/png")
    dark, light = colour_at(path, 0.05, 0.5), colour_at(path, 0.95, 0.5)
    # Pillow's own conversion would clip every 16-bit value above 255 to white.
    assert max(dark) < 60 and min(light) > 190, (dark, light)
    path, picture = await fetch(corpus, "rgb16.png", tmp_path, mime="image/png")
    assert (picture.width, picture.height) == (320, 240)
    with Image.open(path) as written:
        assert written.mode == "RGB" and 30 < sum(written.convert("L").getextrema()) < 400


async def test_an_animated_gif_gives_its_first_frame_and_says_so(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    path, picture = await fetch(corpus, "animated.gif", tmp_path, mime="image/gif")
    assert picture.animated and picture.frames == 3 and picture.source_format == "GIF"
    assert near(colour_at(path, 0.5, 0.02), RED) and near(colour_at(path, 0.5, 0.9), BLUE)
    _, still = await fetch(corpus, "palette.gif", tmp_path, mime="image/gif")
    assert not still.animated


async def test_huge_images_are_scaled_down_not_refused(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    for name, size in (("huge.jpg", (4096, 2731)), ("big.png", (4096, 2458))):
        path, picture = await fetch(corpus, name, tmp_path, mime="image/png")
        assert (picture.width, picture.height) == size, name
        assert near(colour_at(path, 0.5, 0.01), RED) and near(colour_at(path, 0.5, 0.9), BLUE)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("tiny.png", "photo_dimensions"),
        ("thin.png", "photo_dimensions"),
        ("bomb.png", "photo_too_many_pixels"),
        ("truncated.jpg", "photo_unreadable"),
        ("notes.txt", "photo_unreadable"),
        ("hevc.mov", "photo_unreadable"),
    ],
)
async def test_unfit_images_are_refused_in_words(
    name: str, key: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    if name in CLIPS:
        need(corpus, name)
    with pytest.raises(UserInputError) as caught:
        await fetch(corpus, name, tmp_path)
    assert caught.value.key == key
    if key == "photo_too_many_pixels":
        assert caught.value.params == {"megapixels": 900, "limit": 120}
    assert list((tmp_path / "inbound").iterdir()) == []  # nothing left behind


async def test_telegram_dimensions_are_checked_before_downloading(tmp_path: Path) -> None:
    messenger = CopyingMessenger({})
    for width, height in ((40, 400), (3000, 100)):
        image = InboundImage("x", "ux", 1000, width, height)
        with pytest.raises(UserInputError, match="photo_dimensions"):
            await inbound.fetch_image(messenger, image, tmp_path, 20_000_000)  # type: ignore[arg-type]
    assert messenger.downloads == []


# --- clips ---------------------------------------------------------------------------------

# name → (displayed width, height, duration, saved suffix)
GOOD_CLIPS: dict[str, tuple[int, int, float, str]] = {
    "portrait.mp4": (240, 320, 1.0, ".mp4"),
    "portrait.mov": (240, 320, 1.0, ".mp4"),
    "hevc.mov": (320, 240, 1.0, ".mp4"),
    "hevc10.mov": (320, 240, 1.0, ".mp4"),
    "vp9.webm": (320, 240, 1.0, ".webm"),
    "av1.mp4": (320, 240, 1.0, ".mp4"),
    "av1.mkv": (320, 240, 1.0, ".webm"),
    "mjpeg.avi": (320, 240, 1.0, ".avi"),
    "h264.mkv": (320, 240, 1.0, ".mkv"),
    "h264.mov": (320, 240, 1.0, ".mp4"),
    "vfr.mp4": (320, 240, 2.0, ".mp4"),
    "browser.webm": (320, 240, 2.0, ".webm"),
    "surround.mp4": (320, 240, 1.0, ".mp4"),
    "silent.mp4": (320, 240, 1.0, ".mp4"),
}


async def fetch_clip(
    corpus: dict[str, Path], name: str, tmp_path: Path, mime: str = "video/mp4"
) -> tuple[Path, media.MediaInfo]:
    messenger = CopyingMessenger(corpus)
    return await inbound.fetch_clip(
        messenger,  # type: ignore[arg-type]
        as_media(name, need(corpus, name), mime),
        tmp_path / "inbound",
        20_000_000,
    )


@pytest.mark.parametrize("name", list(GOOD_CLIPS))
async def test_clips_are_accepted_by_what_ffmpeg_decodes(
    name: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    path, info = await fetch_clip(corpus, name, tmp_path, mime="application/octet-stream")
    width, height, seconds, suffix = GOOD_CLIPS[name]
    assert (info.width, info.height) == (width, height)
    assert info.duration == pytest.approx(seconds, abs=0.1)
    assert path.suffix == suffix and path.is_file()
    assert info.has_audio == (CLIPS[name].get("audio") is not None)
    # What is saved is what later steps read: the same size and length, whatever the header.
    again = await media.probe(path)
    assert (again.width, again.height) == (width, height)
    assert again.duration == pytest.approx(seconds, abs=0.1)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("aac.m4a", "clip_unreadable"),
        ("plain.jpg", "clip_is_still"),
        ("notes.txt", "clip_unreadable"),
        ("long.mp4", "clip_too_long"),
    ],
)
async def test_what_is_not_a_clip_is_refused_in_words(
    name: str, key: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(UserInputError) as caught:
        await fetch_clip(corpus, name, tmp_path)
    assert caught.value.key == key
    assert list((tmp_path / "inbound").iterdir()) == []


async def test_only_a_clip_bigger_than_720p_is_told_to_send_720p(tmp_path: Path) -> None:
    messenger = CopyingMessenger({})
    cases = [((1280, 720), "clip_too_big"), ((720, 1280), "clip_too_big"),
             ((1920, 1080), "clip_too_big_hd"), ((None, None), "clip_too_big")]  # fmt: skip
    for (width, height), key in cases:
        clip = InboundMedia("c", "uc", 30_000_000, "video/mp4", width, height)
        with pytest.raises(UserInputError) as caught:
            await inbound.fetch_clip(messenger, clip, tmp_path, 20_000_000)  # type: ignore[arg-type]
        assert caught.value.key == key, (width, height)
        assert caught.value.params == {"size": "30.0 MB", "limit": "20.0 MB"}
    assert messenger.downloads == []


@pytest.mark.parametrize("name", list(GOOD_CLIPS))
async def test_every_accepted_clip_extends_and_takes_a_soundtrack(
    name: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    # What inbound keeps is what the local studio renders from: no trait may break a render.
    path, _ = await fetch_clip(corpus, name, tmp_path)
    width, height, seconds, _ = GOOD_CLIPS[name]
    effect = media_effects.EXTEND_EFFECTS[list(GOOD_CLIPS).index(name) % 3]
    extended, scored = tmp_path / "extended.mp4", tmp_path / "scored.mp4"
    await media_effects.extend_clip(path, extended, seconds=1.0, effect=effect)
    await media_effects.add_soundtrack(path, corpus["lossless.flac"], scored)
    for out, length in ((extended, seconds + 1.0), (scored, seconds)):
        info = await media.probe(out)
        assert (info.width, info.height) == (width, height), (out.name, effect)
        assert info.duration == pytest.approx(length, abs=0.15), (out.name, effect)
        assert info.has_audio == (out is scored or CLIPS[name].get("audio") is not None)


async def test_an_hdr_clip_is_tone_mapped_not_washed_out(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    clip = need(corpus, "hevc10.mov")
    assert "arib-std-b67" in banner(clip)  # HLG, as an iPhone films it
    extended, scored = tmp_path / "extended.mp4", tmp_path / "scored.mp4"
    await media_effects.extend_clip(clip, extended, seconds=1.0)
    await media_effects.add_soundtrack(clip, corpus["aac.m4a"], scored)
    for out in (extended, scored):
        line = next(x for x in banner(out).splitlines() if "Video:" in x)
        # BT.709 SDR throughout: HDR code values with their tags lost would play grey.
        assert "bt709" in line and "bt2020" not in line and "arib" not in line, line
        assert " yuv420p(" in line


def test_only_hdr_transfers_get_tone_mapping() -> None:
    hlg = "Video: hevc (Main 10), yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67), 1920x1080"
    pq = "Video: hevc (Main 10), yuv420p10le(tv, bt2020nc/bt2020/smpte2084), 3840x2160"
    sdr = "Video: h264 (High), yuv420p(tv, bt709, progressive), 1920x1080"
    assert "tonemap" in sdr_filters(hlg) and "tonemap" in sdr_filters(pq)
    assert sdr_filters(sdr) == "" and sdr_filters("Video: hevc, yuv420p10le, 320x240") == ""


# --- sounds --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SOUNDS, "voice-only.webm", "surround.mp4"])
async def test_sounds_are_accepted_by_what_ffmpeg_decodes(
    name: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    messenger = CopyingMessenger(corpus)
    sound = as_media(name, corpus[name], "application/octet-stream")
    path = await inbound.fetch_audio(messenger, sound, tmp_path, 20_000_000)  # type: ignore[arg-type]
    info = await media.probe(path)
    assert info.has_audio and info.duration is not None and info.duration > 0.9
    assert inbound.content_type_of(path).startswith(("audio/", "video/")), path.name


@pytest.mark.parametrize("name", ["silent.mp4", "notes.txt", "plain.jpg"])
async def test_what_has_no_sound_is_refused_in_words(
    name: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    messenger = CopyingMessenger(corpus)
    with pytest.raises(UserInputError, match="audio_unreadable"):
        await inbound.fetch_audio(
            messenger,  # type: ignore[arg-type]
            as_media(name, corpus[name], "audio/mpeg"),
            tmp_path,
            20_000_000,
        )
    assert list(tmp_path.iterdir()) == []


async def test_a_browser_recording_without_a_duration_gets_one(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    raw = await media.probe(corpus["browser.webm"])
    assert raw.duration is None, "the corpus file should lack a duration, as browsers write it"
    path, info = await fetch_clip(corpus, "browser.webm", tmp_path)
    assert info.duration == pytest.approx(2.0, abs=0.1) and path.suffix == ".webm"


# --- files of unknown kind ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mime", "kind"),
    [
        ("exif6.heic", "application/octet-stream", Kind.IMAGE),
        ("exif6.avif", "", Kind.IMAGE),
        ("animated.gif", "image/gif", Kind.IMAGE),
        ("h264.mkv", "application/octet-stream", Kind.CLIP),
        ("mjpeg.avi", "video/x-msvideo", Kind.CLIP),
        ("lossless.flac", "application/octet-stream", Kind.SOUND),
        ("opus.webm", "video/webm", Kind.SOUND),
        ("vorbis.ogg", "application/ogg", Kind.SOUND),
        ("plain.jpg", "video/mp4", Kind.IMAGE),
    ],
)
async def test_documents_are_identified_by_decoding(
    name: str, mime: str, kind: Kind, corpus: dict[str, Path], tmp_path: Path
) -> None:
    messenger = CopyingMessenger(corpus)
    found, path = await inbound.identify(
        messenger,  # type: ignore[arg-type]
        as_media(name, corpus[name], mime),
        tmp_path,
        20_000_000,
    )
    assert found is kind and path.is_file()


@pytest.mark.parametrize(
    ("mime", "key"),
    [
        ("application/octet-stream", "file_unreadable"),
        ("image/jpeg", "photo_unreadable"),
        ("video/mp4", "clip_unreadable"),
        ("audio/ogg", "audio_unreadable"),
    ],
)
async def test_a_document_that_is_nothing_is_refused_by_its_hint(
    mime: str, key: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    messenger = CopyingMessenger(corpus)
    with pytest.raises(UserInputError) as caught:
        await inbound.identify(
            messenger,  # type: ignore[arg-type]
            as_media("notes.txt", corpus["notes.txt"], mime),
            tmp_path,
            20_000_000,
        )
    assert caught.value.key == key and list(tmp_path.iterdir()) == []


def test_files_are_saved_under_a_suffix_that_matches_their_content() -> None:
    def info(container: str, video: str | None, audio: str | None) -> media.MediaInfo:
        return media.MediaInfo(
            1, 1.0, 2, 2, video, audio, video is not None, audio is not None, None, container
        )

    matroska, mov = "matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2"
    assert inbound.suffix_for(info(matroska, "vp9", "opus")) == ".webm"
    assert inbound.suffix_for(info(matroska, None, "opus")) == ".webm"
    assert inbound.suffix_for(info(matroska, "h264", "aac")) == ".mkv"
    assert inbound.suffix_for(info(mov, None, "alac")) == ".m4a"
    assert inbound.suffix_for(info(mov, "hevc", "aac")) == ".mp4"
    assert inbound.suffix_for(info("rm", "rv40", None)) == ".bin"
    assert inbound.content_type_of(Path("x.webm")) == "video/webm"
    assert inbound.content_type_of(Path("x.bin")) == "application/octet-stream"


def test_which_documents_are_worth_decoding() -> None:
    for mime in ("image/heic", "video/x-matroska", "audio/flac", "application/octet-stream", None):
        assert inbound.worth_decoding(mime), mime
    for mime in ("application/pdf", "application/zip", "text/plain"):
        assert not inbound.worth_decoding(mime), mime


# --- end to end through the fake Bot API ---------------------------------------------------


async def delivered(tg: FakeTelegram, tmp_path: Path, index: int = 0) -> media.MediaInfo:
    """Probe a video the bot sent (the bytes the fake Bot API received)."""
    await tg.wait_for(lambda: len(tg.videos(USER)) > index, timeout=90)
    sent = tg.videos(USER)[index]
    path = tmp_path / f"sent-{index}.mp4"
    path.write_bytes(tg.file_content(sent.file_id))
    return await media.probe(path)


def said(tg: FakeTelegram) -> str:
    return "\n".join(m.text_plain or m.caption_plain or "" for m in tg.messages(USER))


def push(tg: FakeTelegram, reply_to_message: dict[str, Any] | None = None, **fields: Any) -> None:
    """A message with fields the fake's helpers do not build (audio)."""
    message: dict[str, Any] = {
        "message_id": tg.state.next_message_id(USER),
        "from": {"id": USER, "is_bot": False, "first_name": "Ann", "language_code": "en"},
        "chat": {"id": USER, "type": "private", "first_name": "Ann"},
        "date": int(time.time()),
        **fields,
    }
    if reply_to_message is not None:
        message["reply_to_message"] = reply_to_message
    tg.push_update({"message": message})


async def test_a_portrait_exif_photo_sent_as_a_file_becomes_a_portrait_video(
    tg: FakeTelegram, tmp_path: Path, corpus: dict[str, Path]
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        tg.user_message(
            USER,
            document=corpus["exif6.jpg"].read_bytes(),
            document_name="IMG_0001.JPG",
            mime_type="image/jpeg",
            caption="slow zoom in, just do it",
        )
        info = await delivered(tg, tmp_path)
    assert info.width is not None and info.height is not None and info.height > info.width


async def test_an_iphone_heic_sent_as_octet_stream_is_animated(
    tg: FakeTelegram, tmp_path: Path, corpus: dict[str, Path]
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        tg.user_message(
            USER,
            document=corpus["exif6.heic"].read_bytes(),
            document_name="IMG_0002.HEIC",
            mime_type="application/octet-stream",
            caption="pan up, just do it",
        )
        info = await delivered(tg, tmp_path)
    assert info.width is not None and info.height is not None and info.height > info.width


async def test_an_animated_gif_file_is_animated_from_its_first_frame_and_the_user_told(
    tg: FakeTelegram, tmp_path: Path, corpus: dict[str, Path]
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        msg = tg.user_message(
            USER,
            document=corpus["animated.gif"].read_bytes(),
            document_name="loop.gif",
            mime_type="image/gif",
            caption="zoom out",
        )
        await reply_to(tg, msg)
        await tg.wait_for(lambda: "This costs" in said(tg))
        assert "first frame" in said(tg)
        (job,) = await services_of(app).jobs.for_user(USER, [JobState.DRAFT])
        assert job.kind == JobKind.ANIMATE


async def test_an_hevc_clip_from_a_phone_is_extended(
    tg: FakeTelegram, tmp_path: Path, corpus: dict[str, Path]
) -> None:
    clip = need(corpus, "portrait.mov")
    async with running_bot(make_settings(tg, tmp_path)):
        msg = tg.user_message(
            USER,
            document=clip.read_bytes(),
            document_name="IMG_0003.MOV",
            mime_type="video/quicktime",
            caption="extend it",
        )
        card_id = await reply_to(tg, msg)
        assert "Extend clip" in (tg.message(USER, card_id).text_plain or "")
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        info = await delivered(tg, tmp_path)
    assert (info.width, info.height) == (240, 320)  # still portrait
    assert info.duration == pytest.approx(4.0, abs=0.3)  # 1 s + 3 s


async def test_a_browser_webm_without_a_duration_is_extended(
    tg: FakeTelegram, tmp_path: Path, corpus: dict[str, Path]
) -> None:
    async with running_bot(make_settings(tg, tmp_path)):
        msg = tg.user_message(
            USER,
            document=corpus["browser.webm"].read_bytes(),
            document_name="recording.webm",
            mime_type="video/webm",
            caption="continue, boomerang",
        )
        card_id = await reply_to(tg, msg)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        info = await delivered(tg, tmp_path)
    assert info.duration == pytest.approx(5.0, abs=0.3)  # 2 s + 3 s


async def test_a_flac_file_replying_to_a_clip_becomes_its_soundtrack(
    tg: FakeTelegram, tmp_path: Path, corpus: dict[str, Path]
) -> None:
    flac = corpus["lossless.flac"].read_bytes()
    async with running_bot(make_settings(tg, tmp_path)) as app:
        video = tg.user_message(
            USER, video=corpus["silent.mp4"].read_bytes(), video_meta=(320, 240, 1)
        )
        await reply_to(tg, video)
        file_id, unique_id = tg.add_file(flac)
        audio = {"file_id": file_id, "file_unique_id": unique_id, "duration": 1}
        audio |= {"mime_type": "audio/flac", "file_size": len(flac), "file_name": "take.flac"}
        push(tg, reply_to_message=video, audio=audio)
        info = await delivered(tg, tmp_path)
        (job,) = await delivered_jobs(app, USER)
    assert job.kind == JobKind.MIX and job.cost == 0
    assert info.has_audio and info.duration == pytest.approx(1.0, abs=0.3)


async def test_a_failed_render_is_told_in_plain_words_not_ffmpeg_output(
    tg: FakeTelegram, tmp_path: Path, corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise MediaError(
            "ffmpeg failed with exit code 1:\n[Parsed_aresample_6 @ 0x55d0c0ffee00] "
            "Cannot select channel layout for the link between filters"
        )

    monkeypatch.setattr(media_effects, "extend_clip", broken)
    async with running_bot(make_settings(tg, tmp_path)) as app:
        msg = tg.user_message(
            USER, video=corpus["surround.mp4"].read_bytes(), video_meta=(320, 240, 1),
            caption="extend",
        )  # fmt: skip
        card_id = await reply_to(tg, msg)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: "could not be processed" in said(tg), timeout=30)
        (job,) = await services_of(app).jobs.for_user(USER, [JobState.FAILED])
        entries = await services_of(app).studio.credits.ledger.entries(job.id)
    assert "not charged" in said(tg)
    assert "Parsed" not in said(tg) and "0x55" not in said(tg) and "ffmpeg" not in said(tg)
    assert entries[-1][0] == "refund"


async def test_a_file_that_is_no_media_at_all_gets_a_plain_answer(
    tg: FakeTelegram, tmp_path: Path, corpus: dict[str, Path]
) -> None:
    async with running_bot(make_settings(tg, tmp_path)) as app:
        tg.user_message(
            USER,
            document=corpus["notes.txt"].read_bytes(),
            document_name="data.bin",
            mime_type="application/octet-stream",
        )
        await tg.wait_for(lambda: "couldn't find a photo, video or sound" in said(tg))
        assert await services_of(app).jobs.count_by_state() == {}
