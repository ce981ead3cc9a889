"""A user's settings: what /settings changes and what new drafts start from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

from services.providers.catalogue import ModelKind, models_for

T = TypeVar("T")

QUALITY_MODES = ("quality", "fast")
ASPECT_CHOICES: tuple[str | None, ...] = (None, "16:9", "9:16", "1:1")
DURATION_CHOICES: tuple[int | None, ...] = (None, 5, 10)
LANGUAGE_CHOICES: tuple[str | None, ...] = (None, "en", "ru")
# The /settings buttons, in display order; each press moves the field to its next value.
FIELDS = ("model", "quality", "aspect", "duration", "as_file", "skip_confirm", "language")


@dataclass(frozen=True)
class Preferences:
    """None means "automatic": the model's default, the photo's shape, the Telegram language."""

    model: str | None = None
    quality: str = "quality"
    aspect: str | None = None
    duration: int | None = None
    as_file: bool = False
    skip_confirm: bool = False
    language: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preferences:
        """Read stored settings, dropping anything no longer valid."""
        prefs = cls()
        clean: dict[str, Any] = {}
        if isinstance(data.get("model"), str):
            clean["model"] = data["model"]
        if data.get("quality") in QUALITY_MODES:
            clean["quality"] = data["quality"]
        if data.get("aspect") in ASPECT_CHOICES:
            clean["aspect"] = data.get("aspect")
        if data.get("duration") in DURATION_CHOICES:
            clean["duration"] = data.get("duration")
        for flag in ("as_file", "skip_confirm"):
            if isinstance(data.get(flag), bool):
                clean[flag] = data[flag]
        if data.get("language") in LANGUAGE_CHOICES:
            clean["language"] = data.get("language")
        return replace(prefs, **clean)

    def to_dict(self) -> dict[str, Any]:
        """For storage."""
        return asdict(self)

    def cycled(self, name: str, provider: str) -> Preferences:
        """These settings with ``name`` moved to its next value."""
        if name == "model":
            keys: list[str | None] = [None]
            keys += [m.key for m in models_for(provider, ModelKind.IMAGE_TO_VIDEO)]
            return replace(self, model=_following(keys, self.model))
        if name == "quality":
            return replace(self, quality=_following(list(QUALITY_MODES), self.quality))
        if name == "aspect":
            return replace(self, aspect=_following(list(ASPECT_CHOICES), self.aspect))
        if name == "duration":
            return replace(self, duration=_following(list(DURATION_CHOICES), self.duration))
        if name == "as_file":
            return replace(self, as_file=not self.as_file)
        if name == "skip_confirm":
            return replace(self, skip_confirm=not self.skip_confirm)
        if name == "language":
            return replace(self, language=_following(list(LANGUAGE_CHOICES), self.language))
        raise ValueError(f"no setting {name!r}")


def _following(options: list[T], current: T) -> T:
    if current not in options:
        return options[0]
    return options[(options.index(current) + 1) % len(options)]
