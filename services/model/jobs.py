"""Jobs and their state machine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    """Where a job is; product.md's lifecycle."""

    DRAFT = "draft"
    QUEUED = "queued"
    SUBMITTING = "submitting"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"
    STALLED = "stalled"
    UNKNOWN = "unknown"


S = JobState

# Which moves are legal. A transition is written to the database (compare-and-set on the
# current state) *before* the side effect it guards, so a crash leaves an honest record.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.DRAFT: frozenset({S.QUEUED, S.CANCELED}),
    S.QUEUED: frozenset({S.SUBMITTING, S.FAILED, S.CANCELED}),
    # Back to QUEUED only when the provider surely did not receive the request.
    S.SUBMITTING: frozenset({S.RUNNING, S.QUEUED, S.FAILED, S.UNKNOWN, S.CANCELED}),
    S.RUNNING: frozenset({S.DOWNLOADING, S.FAILED, S.CANCELED, S.TIMED_OUT, S.STALLED}),
    S.DOWNLOADING: frozenset({S.DELIVERING, S.FAILED, S.CANCELED}),
    S.DELIVERING: frozenset({S.DELIVERED, S.DOWNLOADING, S.FAILED}),
}

# The poller's work: jobs in these states are picked up again after any restart.
ACTIVE_STATES: frozenset[JobState] = frozenset(
    {S.QUEUED, S.SUBMITTING, S.RUNNING, S.DOWNLOADING, S.DELIVERING}
)
FAILURE_STATES: frozenset[JobState] = frozenset(
    {S.FAILED, S.CANCELED, S.TIMED_OUT, S.STALLED, S.UNKNOWN}
)
TERMINAL_STATES: frozenset[JobState] = FAILURE_STATES | {S.DELIVERED}


def can_move(src: JobState, dst: JobState) -> bool:
    """Whether the state machine allows ``src → dst``."""
    return dst in TRANSITIONS.get(src, frozenset())


class JobKind(StrEnum):
    """What the user asked for."""

    ANIMATE = "animate"
    EXTEND = "extend"
    MUSIC = "music"
    MIX = "mix"  # the user's own audio under a clip
    TEXT = "text"  # a video made from the user's words alone
    STORY = "story"  # shots (child jobs, or the user's own clips) stitched into one video


@dataclass
class Job:
    """One user request, from draft to delivery; a row of the ``jobs`` table."""

    id: int
    user_id: int
    chat_id: int
    kind: JobKind
    state: JobState
    provider: str
    model: str
    prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    cost: int = 0
    language: str = "en"
    source_message_id: int | None = None
    input_path: str | None = None
    input_file_id: str | None = None
    input_file_unique_id: str | None = None
    card_message_id: int | None = None
    status_message_id: int | None = None
    status_text: str | None = None
    status_edited_at: float | None = None
    external_id: str | None = None
    provider_data: dict[str, Any] = field(default_factory=dict)
    provider_status: str | None = None
    progress: float | None = None
    queue_position: int | None = None
    same_status_polls: int = 0
    poll_errors: int = 0
    output_url: str | None = None
    output_path: str | None = None
    error: str | None = None
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    submitted_at: float | None = None
    finished_at: float | None = None
    next_poll_at: float | None = None
    lease_owner: str | None = None
    lease_until: float | None = None
    parent_id: int | None = None  # a shot of a story: the story's job
    step: int | None = None  # which shot of the story, from 0
    # Made due by an event (a provider's callback, a story's shot ending) since it was last
    # claimed: claimed before jobs merely due by the clock.
    woken_at: float | None = None

    @property
    def duration(self) -> int:
        """Requested length in seconds."""
        return int(self.params.get("duration", 5))

    @property
    def aspect(self) -> str:
        """Requested aspect ratio, e.g. ``16:9``."""
        return str(self.params.get("aspect", "16:9"))

    def anew(self, state: JobState, **changes: Any) -> Job:
        """A new job asking what this one asked, with the same inputs, and nothing of this
        one's run (its messages, provider request, progress, result or lease)."""
        asked = {name: getattr(self, name) for name in REQUEST_FIELDS}
        return Job(id=0, state=state, **{**asked, **changes})

    @property
    def is_shot(self) -> bool:
        """Whether this job is one shot of a story (it speaks to the user through the story)."""
        return self.parent_id is not None

    @property
    def active(self) -> bool:
        """Whether the poller still owes this job work."""
        return self.state in ACTIVE_STATES

    @classmethod
    def from_row(cls, row: Any) -> Job:
        """Build from a ``jobs`` row."""
        data = dict(row)
        data["kind"] = JobKind(data["kind"])
        data["state"] = JobState(data["state"])
        data["params"] = json.loads(data.get("params") or "{}")
        data["provider_data"] = json.loads(data.get("provider_data") or "{}")
        return cls(**data)


# What a job asks for and with what: carried over when the same request is made again.
REQUEST_FIELDS = (
    "user_id",
    "chat_id",
    "kind",
    "provider",
    "model",
    "prompt",
    "params",
    "cost",
    "language",
    "input_path",
    "input_file_id",
    "input_file_unique_id",
    "parent_id",
    "step",
)
JSON_COLUMNS = frozenset({"params", "provider_data"})
# Columns a caller may set; anything else is a programming error (and never user input).
JOB_COLUMNS = frozenset(
    name for name in Job.__dataclass_fields__ if name not in {"id", "state", "created_at"}
)
