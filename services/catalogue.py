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


MODELS: tuple[Model, ...] = (
    Model(
        key="studio-motion",
        provider="local",
        kind=ModelKind.IMAGE_TO_VIDEO,
        title="Studio motion",
        endpoint="animate",
        durations=(5, 10),
        aspects=("16:9", "9:16", "1:1"),
        costs={5: 10, 10: 10},
        typical_seconds=(5, 40),
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


def default_model(provider: str, kind: ModelKind) -> Model:
    """The model used unless the user picks another."""
    offered = models_for(provider, kind)
    if not offered:
        raise LookupError(f"{provider} offers no {kind} model")
    return offered[0]
