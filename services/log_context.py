"""What a log line is about: the update or job being worked on in the current task.

Set where the work begins (an update's first handler, a job's turn in the poller); asyncio copies
the context into every task started from there, so each line of that work carries the ids.
"""

from __future__ import annotations

from contextvars import ContextVar

update_id: ContextVar[int | None] = ContextVar("update_id", default=None)
job_id: ContextVar[int | None] = ContextVar("job_id", default=None)


def current() -> dict[str, int]:
    """The ids set for the work in hand."""
    ids = {"update_id": update_id.get(), "job_id": job_id.get()}
    return {name: value for name, value in ids.items() if value is not None}
