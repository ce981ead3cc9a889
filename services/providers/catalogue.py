"""The model catalogue: what each provider offers, and what it costs in credits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ModelKind(StrEnum):
    """What a model does."""

    IMAGE_TO_VIDEO = "image-to-video"
    TEXT_TO_VIDEO = "text-to-video"
    EXTEND_BY_CLIP = "extend-by-clip"
    EXTEND_CHAINED = "extend-chained"
    VIDEO_TO_AUDIO = "video-to-audio"
    OWN_AUDIO = "own-audio"
    STITCH = "stitch"  # shots joined into one film, here


# Camera moves for a photo: the presets offered as buttons (in display order) and the prompt a
# model is sent for each when the user gave no words of their own.
DEFAULT_MOTION = "zoom_in"

MOTION_PRESETS: tuple[str, ...] = (
    "zoom_in",
    "zoom_out",
    "pan_left",
    "pan_right",
    "pan_up",
    "pan_down",
)


MOTION_PROMPTS: dict[str, str] = {
    "zoom_in": "slow cinematic push-in toward the subject, subtle natural motion",
    "zoom_out": "slow cinematic pull-back revealing the scene, subtle natural motion",
    "pan_left": "smooth camera pan to the left, subtle natural motion",
    "pan_right": "smooth camera pan to the right, subtle natural motion",
    "pan_up": "smooth camera tilt upward, subtle natural motion",
    "pan_down": "smooth camera tilt downward, subtle natural motion",
}


@dataclass(frozen=True)
class ClipFacts:
    """What ffprobe said about a user's clip: enough to know which models can take it."""

    width: int | None
    height: int | None
    seconds: float | None

    def as_params(self) -> dict[str, Any]:
        """The form kept in a job's params (JSON)."""
        return {"width": self.width, "height": self.height, "seconds": self.seconds}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ClipFacts | None:
        """The clip facts a job was made with, if it carries any."""
        clip = params.get("clip")
        if not isinstance(clip, dict):
            return None
        width, height, seconds = clip.get("width"), clip.get("height"), clip.get("seconds")
        return cls(
            width if isinstance(width, int) else None,
            height if isinstance(height, int) else None,
            float(seconds) if isinstance(seconds, int | float) else None,
        )


# Container durations run a little over the frames' (audio priming): an 8 s Veo clip probes 8.04.
SECONDS_SLACK = 0.1
ASPECT_SLACK = 0.01
ASPECT_RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}


@dataclass(frozen=True)
class ClipLimits:
    """Which source clips a model accepts; an unknown fact never passes a limit on it."""

    max_seconds: float | None = None
    short_sides: tuple[int, ...] = ()  # 720 and 1080 for "720p or 1080p"
    aspects: tuple[str, ...] = ()

    def admit(self, clip: ClipFacts | None) -> bool:
        """Whether the model takes this clip."""
        if clip is None:
            return False
        if self.max_seconds is not None and (
            clip.seconds is None or clip.seconds > self.max_seconds + SECONDS_SLACK
        ):
            return False
        if not (self.short_sides or self.aspects):
            return True
        if not clip.width or not clip.height:
            return False
        if self.short_sides and min(clip.width, clip.height) not in self.short_sides:
            return False
        ratio = clip.width / clip.height
        return not self.aspects or any(
            abs(ratio / ASPECT_RATIOS[a] - 1) <= ASPECT_SLACK for a in self.aspects
        )


@dataclass(frozen=True)
class Model:
    """One model of one provider, as data."""

    key: str
    provider: str
    kind: ModelKind
    title: str
    endpoint: str
    durations: tuple[int, ...]
    aspects: tuple[str, ...]
    costs: dict[int, int]  # duration in seconds -> credits
    typical_seconds: tuple[int, int]
    tier: str = "quality"
    fields: dict[str, Any] = field(default_factory=dict)
    accepts: ClipLimits | None = None  # for clip models: which source clips it can work on

    def takes(self, clip: ClipFacts | None) -> bool:
        """Whether this model can work on ``clip`` (models without limits take anything)."""
        return self.accepts is None or self.accepts.admit(clip)

    def cost(self, duration: int) -> int:
        """Credits for a run of ``duration`` seconds (nearest listed duration at or above)."""
        listed = sorted(self.costs)
        for d in listed:
            if duration <= d:
                return self.costs[d]
        return self.costs[listed[-1]]

    def typical_text(self) -> str:
        """``usually 10–40 s`` style range."""
        low, high = self.typical_seconds
        if high < 120:
            return f"{low}–{high} s"
        return f"{low // 60}–{high // 60} min"


I2V = ModelKind.IMAGE_TO_VIDEO
T2V = ModelKind.TEXT_TO_VIDEO
WIDE = ("16:9", "9:16", "1:1")
# Credits follow the product defaults: image- and text-to-video 5 s 100 / 10 s 180 (an 8 s Veo
# 150, the fast tier less); extend 80; chained extend 5/10/15 s 80/100/150; generated music 40;
# sound from video 50; studio effects 10.
STANDARD = {5: 100, 10: 180}
FAST = {5: 60, 10: 110}

# fal's MMAudio reads only the first ``duration`` seconds of the video, 30 at most (fal
# mmaudio-v2 llms.txt; providers.md §7), and muapi's runs on it. Longer clips are refused with a
# clear note rather than returned with silence after 30 s. The plan for them: score the clip in
# ≤ 30 s windows with the same prompt and seed, cross-fade the tracks and mux them locally.
MMAUDIO_MAX_SECONDS = 30.0

# Per provider and kind, the first model is the default and the order is the fallback order.
# ``fields`` says how a provider spells the inputs: the image field (``image_url`` or the list
# form ``images_list``), how durations are written (int, "5", "5s", "clip_seconds": the source
# clip's own length, or None: the model has no duration field), whether the model takes an
# aspect ratio at all (image-to-video models without one follow the photo's shape), and
# ``extra`` constants to send as they are.
# ``accepts`` says which source clips a clip model can work on. The schemas these follow, with
# their sources, are in tests/fakes/schemas.json.
MODELS: tuple[Model, ...] = (
    Model(
        "studio-motion",
        "local",
        I2V,
        "Studio motion",
        "animate",
        (5, 10),
        WIDE,
        {5: 10, 10: 10},
        (5, 40),
    ),
    Model(
        "studio-extend",
        "local",
        ModelKind.EXTEND_BY_CLIP,
        "Studio extend",
        "extend",
        (3, 5),
        (),
        {3: 10, 5: 10},
        (5, 40),
    ),
    Model(
        "studio-music",
        "local",
        ModelKind.VIDEO_TO_AUDIO,
        "Studio soundtrack",
        "music",
        (0,),
        (),
        {0: 10},
        (5, 30),
    ),
    Model(
        "studio-mix", "local", ModelKind.OWN_AUDIO, "Your audio", "mix", (0,), (), {0: 0}, (5, 30)
    ),
    # A story's own step: its shots are priced by their models; joining them is free.
    Model(
        "studio-story", "local", ModelKind.STITCH, "Story", "stitch", (0,), (), {0: 0}, (20, 300)
    ),
    # muapi.ai — one key, many vendors. Endpoints and fields: providers.md §1.4–1.6.
    Model(
        "muapi-kling-2.1-pro",
        "muapi",
        I2V,
        "Kling 2.1 Pro",
        "kling-v2.1-pro-i2v",
        (5, 10),
        WIDE,
        STANDARD,
        (120, 300),
        fields={"image": "image_url"},
    ),
    Model(
        "muapi-seedance-2",
        "muapi",
        I2V,
        "Seedance 2.0",
        "seedance-2-i2v",
        (5, 10),
        WIDE,
        STANDARD,
        (90, 240),
        # Its results can be continued on muapi by request id (no re-upload).
        fields={"image": "images_list", "chains_to": "muapi-seedance-2-extend"},
    ),
    Model(
        "muapi-wan-2.5",
        "muapi",
        I2V,
        "Wan 2.5",
        "wan2.5-image-to-video",
        (5, 10),
        (),  # no aspect_ratio field: the video follows the photo
        STANDARD,
        (90, 240),
        # The image field is disputed (image_url in muapi's schema table and ComfyUI nodes,
        # images_list in muapi-cli): the 422 swap covers the other. It renders 480p unless asked.
        fields={"image": "image_url", "aspect": False, "extra": {"resolution": "720p"}},
    ),
    Model(
        "muapi-veo-3.1-fast",
        "muapi",
        I2V,
        "Veo 3.1 Fast",
        "veo3.1-fast-image-to-video",
        (8,),
        ("16:9", "9:16"),
        {8: 150},
        (60, 180),
        fields={"image": "image_url"},
    ),
    Model(
        "muapi-hailuo-02",
        "muapi",
        I2V,
        "Hailuo 02",
        "minimax-hailuo-02-standard-i2v",
        (6, 10),
        (),
        {6: 60, 10: 110},
        (60, 180),
        tier="fast",
        fields={"image": "image_url", "aspect": False},
    ),
    Model(
        "muapi-pixverse-5",
        "muapi",
        I2V,
        "PixVerse v5",
        "pixverse-v5-i2v",
        (5, 8),
        WIDE,
        {5: 60, 8: 100},
        (60, 180),
        tier="fast",
        fields={"image": "images_list"},
    ),
    # Text-to-video on muapi (providers.md §7): only the prompt, a length and, where the model
    # takes one, a shape. The local studio cannot make a video from words, so it has none.
    Model(
        "muapi-kling-2.5-turbo-t2v",
        "muapi",
        T2V,
        "Kling 2.5 Turbo",
        "kling-v2.5-turbo-pro-t2v",
        (5, 10),
        WIDE,
        STANDARD,
        (120, 300),
    ),
    Model(
        "muapi-seedance-pro-t2v",
        "muapi",
        T2V,
        "Seedance Pro",
        "seedance-pro-t2v",
        (5, 10),
        WIDE,
        STANDARD,
        (90, 240),
        # It renders 480p unless asked, like muapi's Wan.
        fields={"extra": {"resolution": "720p"}},
    ),
    Model(
        "muapi-wan-2.5-t2v",
        "muapi",
        T2V,
        "Wan 2.5",
        "wan2.5-text-to-video",
        (5, 10),
        ("16:9", "9:16"),
        STANDARD,
        (90, 240),
        fields={"extra": {"resolution": "720p"}},
    ),
    Model(
        "muapi-veo3-fast-t2v",
        "muapi",
        T2V,
        "Veo 3 Fast",
        "veo3-fast-text-to-video",
        (8,),
        ("16:9", "9:16"),
        {8: 150},
        (60, 180),
        # Veo 3 makes 8 s clips and its schema has no duration field at all.
        fields={"duration": None},
    ),
    Model(
        "muapi-hailuo-02-t2v",
        "muapi",
        T2V,
        "Hailuo 02",
        "minimax-hailuo-02-standard-t2v",
        (6, 10),
        (),
        {6: 60, 10: 110},
        (60, 180),
        tier="fast",
        fields={"aspect": False},
    ),
    Model(
        "muapi-seedance-1.5-extend",
        "muapi",
        ModelKind.EXTEND_BY_CLIP,
        "Seedance 1.5 Extend",
        "seedance-v1.5-pro-video-extend",
        (5,),
        (),
        {5: 80},
        (90, 240),
        fields={"video": "video_url", "aspect": False},
    ),
    Model(
        "muapi-wan-2.7-extend",
        "muapi",
        ModelKind.EXTEND_BY_CLIP,
        "Wan 2.7 Extend",
        "wan2.7-video-extend",
        (5,),
        (),
        {5: 80},
        (90, 240),
        fields={"video": "video_url", "aspect": False, "duration": None},
    ),
    Model(
        "muapi-seedance-2-extend",
        "muapi",
        ModelKind.EXTEND_CHAINED,
        "Seedance 2.0 Extend",
        "seedance-2-extend",
        (5, 10, 15),
        (),
        {5: 80, 10: 100, 15: 150},
        (90, 240),
        fields={"chain": "request_id", "aspect": False},
    ),
    Model(
        "muapi-mmaudio-2",
        "muapi",
        ModelKind.VIDEO_TO_AUDIO,
        "MMAudio v2",
        "mmaudio-v2/video-to-video",
        (0,),
        (),
        {0: 50},
        (30, 120),
        # fal's MMAudio underneath (muapi models.json), so the same 8 s default and 30 s cap.
        fields={"video": "video_url", "aspect": False, "duration": "clip_seconds"},
        accepts=ClipLimits(max_seconds=MMAUDIO_MAX_SECONDS),
    ),
    # fal.ai queue — model ids and inputs: providers.md §2.5.
    Model(
        "fal-kling-2.1-pro",
        "fal",
        I2V,
        "Kling 2.1 Pro",
        "fal-ai/kling-video/v2.1/pro/image-to-video",
        (5, 10),
        (),
        STANDARD,
        (120, 300),
        fields={"image": "image_url", "duration": "str", "aspect": False},
    ),
    Model(
        "fal-wan-2.5",
        "fal",
        I2V,
        "Wan 2.5",
        "fal-ai/wan-25-preview/image-to-video",
        (5, 10),
        (),
        STANDARD,
        (90, 240),
        fields={"image": "image_url", "duration": "str", "aspect": False},
    ),
    Model(
        "fal-veo-3.1-fast",
        "fal",
        I2V,
        "Veo 3.1 Fast",
        "fal-ai/veo3.1/fast/image-to-video",
        (8,),
        ("16:9", "9:16"),
        {8: 150},
        (60, 180),
        fields={"image": "image_url", "duration": "str_s"},
    ),
    Model(
        "fal-hailuo-02",
        "fal",
        I2V,
        "Hailuo 02",
        "fal-ai/minimax/hailuo-02/standard/image-to-video",
        (6, 10),
        (),
        {6: 60, 10: 110},
        (60, 180),
        tier="fast",
        fields={"image": "image_url", "duration": "str", "aspect": False},
    ),
    # Text-to-video on fal (providers.md §7; fal-js endpoints.ts).
    Model(
        "fal-kling-2.5-turbo-t2v",
        "fal",
        T2V,
        "Kling 2.5 Turbo",
        "fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
        (5, 10),
        WIDE,
        STANDARD,
        (120, 300),
        fields={"duration": "str"},
    ),
    Model(
        "fal-veo-3.1-fast-t2v",
        "fal",
        T2V,
        "Veo 3.1 Fast",
        "fal-ai/veo3.1/fast",
        (8,),
        ("16:9", "9:16"),
        {8: 150},
        (60, 180),
        fields={"duration": "str_s"},
    ),
    Model(
        "fal-wan-2.5-t2v",
        "fal",
        T2V,
        "Wan 2.5",
        "fal-ai/wan-25-preview/text-to-video",
        (5, 10),
        WIDE,
        STANDARD,
        (90, 240),
        fields={"duration": "str"},
    ),
    Model(
        "fal-hailuo-02-t2v",
        "fal",
        T2V,
        "Hailuo 02",
        "fal-ai/minimax/hailuo-02/standard/text-to-video",
        (6, 10),
        (),  # no aspect_ratio field
        {6: 60, 10: 110},
        (60, 180),
        tier="fast",
        fields={"duration": "str", "aspect": False},
    ),
    Model(
        "fal-seedance-pro-t2v",
        "fal",
        T2V,
        "Seedance Pro",
        "fal-ai/bytedance/seedance/v1/pro/text-to-video",
        (5, 10),
        WIDE,
        STANDARD,
        (90, 240),
        fields={"duration": "str"},
    ),
    Model(
        "fal-veo-3.1-fast-extend",
        "fal",
        ModelKind.EXTEND_BY_CLIP,
        "Veo 3.1 Fast Extend",
        "fal-ai/veo3.1/fast/extend-video",
        (7,),  # "7s" is the only length the endpoint takes
        (),
        {7: 80},
        (60, 180),
        fields={"video": "video_url", "duration": "str_s", "aspect": False},
        # It extends Veo-made clips: any other clip goes straight to the next extend model.
        accepts=ClipLimits(max_seconds=8, short_sides=(720, 1080), aspects=("16:9", "9:16")),
    ),
    Model(
        "fal-pixverse-extend",
        "fal",
        ModelKind.EXTEND_BY_CLIP,
        "PixVerse Extend",
        "fal-ai/pixverse/extend",
        (5,),
        (),
        {5: 80},
        (60, 180),
        fields={"video": "video_url", "duration": "str", "aspect": False},
    ),
    Model(
        "fal-mmaudio-2",
        "fal",
        ModelKind.VIDEO_TO_AUDIO,
        "MMAudio v2",
        "fal-ai/mmaudio-v2",
        (0,),
        (),
        {0: 50},
        (30, 120),
        fields={"video": "video_url", "aspect": False, "duration": "clip_seconds"},
        accepts=ClipLimits(max_seconds=MMAUDIO_MAX_SECONDS),
    ),
)

# The first model of a kind for a provider is its default; the rest are the fallback order.
_BY_KEY = {m.key: m for m in MODELS}


def get_model(key: str) -> Model:
    """The model with this key."""
    return _BY_KEY[key]


def models_for(provider: str, kind: ModelKind) -> list[Model]:
    """Models of one kind offered by a provider, default first."""
    return [m for m in MODELS if m.provider == provider and m.kind == kind]


def fallback_after(model: Model, clip: ClipFacts | None = None) -> Model | None:
    """The next model of the same provider and kind that takes the job's clip, for when
    ``model`` is unavailable or refused the job."""
    offered = models_for(model.provider, model.kind)
    following = offered[offered.index(model) + 1 :]
    return next((m for m in following if m.takes(clip)), None)


def model_for_clip(provider: str, kind: ModelKind, clip: ClipFacts | None) -> Model | None:
    """The first model of a kind that can work on ``clip`` (the catalogue's order)."""
    return next((m for m in models_for(provider, kind) if m.takes(clip)), None)


def chained_extend_for(model: Model) -> Model | None:
    """The model that continues ``model``'s own results on the provider, if there is one."""
    key = model.fields.get("chains_to")
    return get_model(key) if isinstance(key, str) else None


def pick_model(provider: str, kind: ModelKind, preferred: str | None, quality: str) -> Model:
    """The user's chosen model if this provider offers it, else the default of their mode."""
    offered = models_for(provider, kind)
    if not offered:
        raise LookupError(f"{provider} offers no {kind} model")
    for model in offered:
        if model.key == preferred:
            return model
    tiered = [m for m in offered if m.tier == quality]
    return tiered[0] if tiered else offered[0]


def default_model(provider: str, kind: ModelKind) -> Model:
    """The model used unless the user picks another."""
    offered = models_for(provider, kind)
    if not offered:
        raise LookupError(f"{provider} offers no {kind} model")
    return offered[0]
