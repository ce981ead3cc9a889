"""The model catalogue: what each provider offers, and what it costs in credits."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ModelKind(StrEnum):
    """What a model does."""

    IMAGE_TO_VIDEO = "image-to-video"
    EXTEND_BY_CLIP = "extend-by-clip"
    EXTEND_CHAINED = "extend-chained"
    VIDEO_TO_AUDIO = "video-to-audio"
    MUSIC = "music"
    OWN_AUDIO = "own-audio"


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
WIDE = ("16:9", "9:16", "1:1")
# Credits follow the product defaults: image-to-video 5 s 100 / 10 s 180; extend 80; chained
# extend 5/10/15 s 80/100/150; generated music 40; sound from video 50; studio effects 10.
STANDARD = {5: 100, 10: 180}
FAST = {5: 60, 10: 110}

# Per provider and kind, the first model is the default and the order is the fallback order.
# ``fields`` says how a provider spells the inputs: the image field (``image_url`` or the list
# form ``images_list``), how durations are written (int, "5", "5s"), and whether the model takes
# an aspect ratio at all (image-to-video models without one follow the photo's shape).
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
    # muapi.ai — one key, many vendors. Endpoints and fields: providers.md §1.4–1.6.
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
        WIDE,
        STANDARD,
        (90, 240),
        fields={"image": "images_list"},
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
        fields={"video": "video_url", "aspect": False, "duration": None},
    ),
    Model(
        "muapi-suno",
        "muapi",
        ModelKind.MUSIC,
        "Suno",
        "suno-create-music",
        (0,),
        (),
        {0: 40},
        (30, 120),
        fields={"aspect": False, "duration": None, "extra": {"make_instrumental": True}},
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
    Model(
        "fal-veo-3.1-fast-extend",
        "fal",
        ModelKind.EXTEND_BY_CLIP,
        "Veo 3.1 Fast Extend",
        "fal-ai/veo3.1/fast/extend-video",
        (8,),
        (),
        {8: 80},
        (60, 180),
        fields={"video": "video_url", "duration": "str_s", "aspect": False},
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
        fields={"video": "video_url", "aspect": False, "duration": None},
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


def fallback_after(model: Model) -> Model | None:
    """The next model of the same provider and kind, for when ``model`` is unavailable."""
    offered = models_for(model.provider, model.kind)
    position = offered.index(model)
    return offered[position + 1] if position + 1 < len(offered) else None


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
