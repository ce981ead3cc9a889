"""Typed specs: what a production needs, checked where it enters and wherever it is read back.

A job keeps its spec in ``params`` (JSON in the database); these models are the only way the code
reads one, so a malformed or outdated row fails loudly instead of half-working.
"""

from __future__ import annotations

from typing import Literal

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
