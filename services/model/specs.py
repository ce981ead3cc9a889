"""Typed specs: what a production needs, checked where it enters and wherever it is read back.

A job keeps its spec in ``params`` (JSON in the database); these models are the only way the code
reads one, so a malformed or outdated row fails loudly instead of half-working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.errors import StudioError
from services.model.jobs import Job, JobKind

MAX_SHOTS = 10  # Telegram albums hold 2–10 items; a story plan is held to the same
Transition = Literal["cut", "fade"]


class SpecError(StudioError):
    """A job's spec is missing or malformed: a bug or a hand-edited row, never user input."""


class Shot(BaseModel):
    """One shot of a story: a photo to animate, a clip of the user's to use as it is, or words
    to film."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["photo", "clip", "words"]
    seconds: float = Field(gt=0, le=60)
    prompt: str = Field("", max_length=2000)
    motion: str | None = None  # a camera move for a photo (catalogue.MOTION_PRESETS)
    path: str | None = None  # the photo or clip on our disk
    file_id: str | None = None
    file_unique_id: str | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None  # the model that makes it (else the story's ``shot_model``)
    # Continues from the last frame of the kept shot before it (image-to-video), for continuity.
    chain: bool = False

    @property
    def needs_render(self) -> bool:
        """Whether the shot is made by a job of its own (a clip is used as it is)."""
        return self.source != "clip"


class StorySpec(BaseModel):
    """A story: its shots in order, how they are joined, and the sound under them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shots: tuple[Shot, ...] = Field(min_length=1, max_length=MAX_SHOTS)
    transition: Transition = "fade"
    music: str | None = None  # a soundtrack mood (media.effects.MOODS), or None for no music
    # The film's shape when the words asked for one; else the first shot's, in the 720p class.
    aspect: Literal["16:9", "9:16", "1:1"] | None = None
    skipped: tuple[int, ...] = ()  # shots the user chose to leave out after they failed

    def changed(self, **changes: object) -> StorySpec:
        """A copy with ``changes``, validated like a new spec (``model_copy`` would not)."""
        return StorySpec.model_validate({**self.model_dump(), **changes})

    @property
    def kept(self) -> list[int]:
        """The shots that go into the film, by index."""
        return [i for i in range(len(self.shots)) if i not in self.skipped]

    @property
    def seconds(self) -> float:
        """The film's length, before crossfades overlap the shots."""
        return sum(self.shots[i].seconds for i in self.kept)

    @property
    def has_own_sound(self) -> bool:
        """Whether any shot brings its own sound (a user's clip): music then goes under it."""
        return any(self.shots[i].source == "clip" for i in self.kept)


# --- the params of every kind ------------------------------------------------------------------

Aspect = Literal["16:9", "9:16", "1:1"]


class _Params(BaseModel):
    """What every kind of job may carry: the choices the user made for delivery."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duration: int = Field(0, ge=0, le=600)
    as_file: bool = False


class ClipFacts(BaseModel):
    """What ffprobe said about the user's clip (which models can take it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    width: int | None = None
    height: int | None = None
    seconds: float | None = None


class AnimateParams(_Params):
    """A photo to animate: the camera move and the shape (a story's shot may continue the
    shot before it, from its last frame)."""

    motion: str = "zoom_in"
    aspect: Aspect | None = None
    chain: bool = False


class ClipParams(_Params):
    """A user's clip, to extend or to give sound: its facts, and until they choose, whether
    the card still asks which (``pick``) and for which delivered job (``source_job``)."""

    clip: ClipFacts | None = None
    pick: bool = False
    source_job: int | None = None


class ExtendParams(ClipParams):
    """Extend a clip: by the studio's effect, a provider's model, or continuing the provider's
    own result by its request id."""

    effect: str | None = None
    source_request_id: str | None = None


class MusicParams(ClipParams):
    """Sound for a clip: the studio's mood, or a model's."""

    mood: str | None = None


class MixParams(_Params):
    """The user's own audio under a clip."""

    audio_path: str


class TextParams(_Params):
    """A video from words: the shape, the user's words and the prompt crafted from them."""

    aspect: Aspect | None = None
    words: str = ""
    crafted: str = ""


class StoryParams(_Params):
    """A story: its spec, the models of its shots, its plan's base prompt and user edits, and
    what became of failed shots (a fallback each; the offer to the user)."""

    story: StorySpec
    shot_model: str
    follow_model: str | None = None
    aspect: Aspect | None = None
    base: str | None = None
    seconds_each: float | None = None
    edits: dict[str, str] = Field(default_factory=dict)
    fell_back: list[int] = Field(default_factory=list)
    offered: str | None = None
    offered_at: float | None = None
    offered_steps: list[int] | None = None


@dataclass(frozen=True)
class Kind:
    """One kind of job in one place: what it needs, how it runs, and what the user can do once
    it ended. Adding a kind is adding a row here, its params above and its words in the text
    table."""

    params: type[_Params]
    inputs: tuple[str, ...]  # the files sent to the provider, by role, in order
    runs: Literal["provider", "story"]  # one provider request, or shots joined into a film
    again: bool  # "Again" / "Try again" make it anew from the same inputs


KINDS: dict[JobKind, Kind] = {
    JobKind.ANIMATE: Kind(AnimateParams, ("image",), "provider", again=True),
    JobKind.EXTEND: Kind(ExtendParams, ("video",), "provider", again=True),
    JobKind.MUSIC: Kind(MusicParams, ("video",), "provider", again=True),
    JobKind.MIX: Kind(MixParams, ("video", "audio"), "provider", again=True),
    JobKind.TEXT: Kind(TextParams, (), "provider", again=True),
    # A story is planned again from words or a new album, not re-run from its inputs.
    JobKind.STORY: Kind(StoryParams, (), "story", again=False),
}


def checked_params(kind: JobKind, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` if they are a valid spec of ``kind``; SpecError (a bug, never user input)
    otherwise. The dict goes on as it is, so the row stores exactly what was checked."""
    try:
        KINDS[kind].params.model_validate(params)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        raise SpecError(f"bad {kind.value} params: {fields}") from exc
    return params


def story_of(job: Job) -> StorySpec:
    """The story spec of a ``story`` job."""
    if job.kind != JobKind.STORY:
        raise SpecError(f"job {job.id} is a {job.kind.value} job, not a story")
    try:
        return StorySpec.model_validate(job.params.get("story"))
    except ValidationError as exc:
        raise SpecError(
            f"job {job.id}: malformed story spec: {exc.error_count()} error(s)"
        ) from exc


def story_params(spec: StorySpec, **extra: object) -> dict[str, object]:
    """``params`` for a story job holding ``spec``."""
    return {**extra, "story": spec.model_dump(mode="json")}
