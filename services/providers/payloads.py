"""Turning a JobSpec into a model's JSON input, as the catalogue describes the model.

The schemas these payloads must match, with their sources, are in tests/fakes/schemas.json;
tests/test_provider_schemas.py sends every choice the bot can make to fakes that enforce them.
"""

from __future__ import annotations

from typing import Any

from services.providers.base import JobSpec
from services.providers.catalogue import DEFAULT_MOTION, MOTION_PROMPTS, ClipFacts, ModelKind

SWAPS = {
    "image_url": "images_list",
    "images_list": "image_url",
    "video_url": "videos_list",
    "videos_list": "video_url",
}

# An extend prompt says how the clip goes on; the motion presets describe a still photo's camera.
EXTEND_PROMPT = (
    "continue the scene naturally: same subject, style and lighting, smooth consistent motion"
)
# A video-to-audio prompt describes what is heard (MMAudio's prompt is a sound description), by
# the soundtrack mood read from the user's words (services.media.effects.MOODS).
SOUND_PROMPTS = {
    "calm": "calm ambient music with soft pads and a gentle natural ambience",
    "happy": "upbeat cheerful music with light percussion and a bright melody",
    "epic": "epic orchestral music with big drums and rising brass",
    "dark": "dark tense ambient drones with a deep rumbling bass",
    "dreamy": "dreamy ethereal music with shimmering pads and soft reverb",
}
SOUND_TAIL = "with natural sound effects that match what happens on screen"
MIN_SOUND_SECONDS = 1.0  # MMAudio's duration range starts at 1 s


def motion_prompt(spec: JobSpec) -> str:
    """The user's words, or a prompt describing the chosen camera-motion preset."""
    motion = str(spec.options.get("motion", DEFAULT_MOTION))
    return spec.prompt.strip() or MOTION_PROMPTS.get(motion, MOTION_PROMPTS[DEFAULT_MOTION])


def sound_prompt(spec: JobSpec) -> str:
    """What the soundtrack should sound like: the user's words first, then the mood's sound."""
    mood = str(spec.options.get("mood", "calm"))
    sound = f"{SOUND_PROMPTS.get(mood, SOUND_PROMPTS['calm'])}, {SOUND_TAIL}"
    words = spec.prompt.strip()
    return f"{words}; {sound}" if words else sound


def prompt_for(spec: JobSpec) -> str:
    """The prompt in the terms the model's kind works in (camera, continuation or sound)."""
    kind = spec.model.kind
    if kind == ModelKind.VIDEO_TO_AUDIO:
        return sound_prompt(spec)
    if kind in (ModelKind.EXTEND_BY_CLIP, ModelKind.EXTEND_CHAINED):
        return spec.prompt.strip() or EXTEND_PROMPT
    return motion_prompt(spec)


def clip_seconds(spec: JobSpec) -> float | None:
    """The source clip's length as the model's ``duration``, within what the model reads."""
    clip = ClipFacts.from_params(spec.options)
    if clip is None or clip.seconds is None:
        return None  # the model's own default (8 s for MMAudio) then
    limits = spec.model.accepts
    cap = limits.max_seconds if limits is not None and limits.max_seconds else clip.seconds
    return round(max(MIN_SOUND_SECONDS, min(clip.seconds, cap)), 2)


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
    payload: dict[str, Any] = {"prompt": prompt_for(spec)}
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
    if fmt == "clip_seconds":
        seconds = clip_seconds(spec)
        if seconds is not None:
            payload["duration"] = seconds
    elif fmt is not None and spec.duration:
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
