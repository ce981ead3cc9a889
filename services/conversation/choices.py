"""Choosing among what a model offers: a wish that fits, the next option, a draft kept valid."""

from __future__ import annotations

from typing import TypeVar

from services.providers.catalogue import Model

T = TypeVar("T")


def next_option(options: tuple[T, ...], current: T) -> T:
    """The option after ``current``, wrapping around (a button that cycles values)."""
    if current not in options:
        return options[0]
    return options[(options.index(current) + 1) % len(options)]


def first_offered(
    offered: tuple[T, ...], wishes: list[T | None], default: T | None = None
) -> T | None:
    """The first wish the model offers, else ``default``."""
    for wish in wishes:
        if wish is not None and wish in offered:
            return wish
    return default


def fit_params(params: dict[str, object], model: Model) -> dict[str, object]:
    """Keep a draft's length and shape valid for a newly chosen model."""
    fitted = dict(params)
    duration = int(str(params.get("duration", model.durations[0])))
    if duration not in model.durations:
        fitted["duration"] = min(model.durations, key=lambda d: abs(d - duration))
    if model.aspects and params.get("aspect") not in model.aspects:
        fitted["aspect"] = model.aspects[0]
    return fitted
