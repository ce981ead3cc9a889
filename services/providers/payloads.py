"""Turning a JobSpec into a model's JSON input, as the catalogue describes the model."""

from __future__ import annotations

from typing import Any

from services.intents import DEFAULT_MOTION, MOTION_PROMPTS
from services.providers.base import JobSpec

SWAPS = {
    "image_url": "images_list",
    "images_list": "image_url",
    "video_url": "videos_list",
    "videos_list": "video_url",
}


def prompt_of(spec: JobSpec) -> str:
    """The user's words, or a prompt describing the chosen motion preset."""
    motion = str(spec.options.get("motion", DEFAULT_MOTION))
    return spec.prompt.strip() or MOTION_PROMPTS.get(motion, MOTION_PROMPTS[DEFAULT_MOTION])


def duration_value(fmt: str | None, seconds: int) -> Any:
    """A duration as the model wants it written."""
    if fmt == "str":
        return str(seconds)
    if fmt == "str_s":
        return f"{seconds}s"
    return seconds


def build_payload(spec: JobSpec, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """The model input; ``overrides`` renames an input field (the 422 field swap)."""
    fields = spec.model.fields
    renamed = overrides or {}
    payload: dict[str, Any] = {"prompt": prompt_of(spec)}
    for role in ("image", "video"):
        url = spec.inputs.get(role)
        if url is None:
            continue
        name = fields.get(role, f"{role}_url")
        name = renamed.get(name, name)
        payload[name] = [url] if name.endswith("_list") else url
    chain = fields.get("chain")
    if chain and spec.options.get("source_request_id"):
        payload[chain] = spec.options["source_request_id"]
    fmt = fields.get("duration", "int")
    if fmt is not None and spec.duration:
        payload["duration"] = duration_value(fmt, spec.duration)
    if fields.get("aspect", True) and spec.aspect:
        payload["aspect_ratio"] = spec.aspect
    payload.update(fields.get("extra", {}))
    return payload


def swapped_field(error_text: str, payload: dict[str, Any]) -> dict[str, str] | None:
    """If a 422 names the other spelling of an input we sent, the rename that fixes it."""
    for sent, other in SWAPS.items():
        if sent in payload and other in error_text and sent not in error_text.replace(other, ""):
            return {sent: other}
    return None
