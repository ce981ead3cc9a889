"""How jobs end and what the user sees of it: the status message, failures, clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from services import metrics
from services.errors import MessengerError, ProviderPermanent, StudioError
from services.model.jobs import Job, JobKind, JobState, can_move
from services.production import messages
from services.production.alerts import Alerts
from services.providers.base import ProviderSet, ProviderStatus, Submission
from services.storage.repositories import Clock, JobRepository
from services.telegram.messenger import SLOW_STEP, Keyboard, Messenger

log = logging.getLogger(__name__)

S = JobState
CONTENT_WORDS = ("content policy", "nsfw", "safety", "moderation", "inappropriate", "sensitive")


class Endings:
    """Ends jobs honestly (state, refund, words) and keeps the status message current."""

    def __init__(
        self,
        *,
        jobs: JobRepository,
        messenger: Messenger,
        providers: ProviderSet,
        alerts: Alerts | None,
        work_dir: Path,
        edit_interval: float,
        clock: Clock,
    ) -> None:
        self.jobs = jobs
        self.messenger = messenger
        self.providers = providers
        self.alerts = alerts
        self.work_dir = work_dir
        self.edit_interval = edit_interval
        self.clock = clock

    def job_folder(self, job: Job) -> Path:
        """The job's work folder (its downloaded output), removed when the job ends."""
        return self.work_dir / "jobs" / str(job.id)

    async def provider_failed(self, job: Job, exc: ProviderPermanent) -> None:
        """A permanent provider error: alert the operator if it is theirs, then end the job."""
        if self.alerts is not None and exc.reason in ("out_of_credit", "auth"):
            await self.alerts.provider_problem(job.provider, exc.reason)
        key, params = reason_for(exc)
        await self.fail(job, S.FAILED, key, params=params)

    # --- endings ----------------------------------------------------------------------------

    async def fail(
        self,
        job: Job,
        state: JobState,
        reason_key: str,
        *,
        notify: bool = True,
        params: Mapping[str, object] | None = None,
    ) -> None:
        """End a job without a video: record it, refund, and tell the user what happened.

        A story's shot speaks through its story: the story is woken to decide what next.
        """
        moved = await self.jobs.transition(
            job.id, job.state, state, settle="refund", finished_at=self.clock(), error=reason_key
        )
        if not moved:
            return
        ended = await self._reload(job)
        log.info("job %s ended %s (%s); refunded", job.id, state.value, reason_key)
        metrics.FAILURES.labels(reason_key).inc()
        if job.parent_id is not None:
            await self.clean(ended)
            await self.jobs.wake(job.parent_id)
            return
        await self.stop_shots(ended)
        if notify:
            body, keyboard = messages.failure(ended, reason_key, **(params or {}))
            with contextlib.suppress(MessengerError):
                await self.messenger.send_text(job.chat_id, body, keyboard)
        await self.edit_status(ended, messages.stopped(ended), keyboard=None)
        await self.clean(ended)

    async def stop_shots(self, story: Job) -> None:
        """Stop the shots still being made for a story that ended, and remove their files."""
        for shot in await stop_shots(self.jobs, self.providers, story, self.clock()):
            await self.clean(shot)

    async def cancel_remote(self, job: Job) -> None:
        """Ask the provider to stop a job we gave up on (best effort)."""
        if job.external_id:
            with contextlib.suppress(StudioError):
                await self.providers.get(job.provider).cancel(
                    Submission(job.external_id, job.provider_data)
                )

    async def clean(self, job: Job) -> None:
        """Remove the job's work files here and at the provider."""
        await asyncio.to_thread(shutil.rmtree, self.job_folder(job), True)
        if job.external_id:
            with contextlib.suppress(StudioError, OSError):
                await self.providers.get(job.provider).discard(
                    Submission(job.external_id, job.provider_data)
                )

    # --- the status message -----------------------------------------------------------------

    async def show_status(
        self, job: Job, *, force: bool = False, optional: bool | None = None
    ) -> None:
        """Edit the job's status message: only on change, and not too often (``force``: now).

        A forced edit must go out unless ``optional`` says it may give way to people's answers.
        """
        now = self.clock()
        body = messages.status(job, now)
        if body == job.status_text:
            return
        if not force and job.status_edited_at and now - job.status_edited_at < self.edit_interval:
            return
        if optional is None:
            optional = not force
        await self.edit_status(job, body, keyboard=messages.cancel_keyboard(job), optional=optional)

    @contextlib.asynccontextmanager
    async def status_when_slow(self, job: Job, after: float = SLOW_STEP) -> AsyncIterator[None]:
        """Run a step; show its status line (``job``'s state) if it takes ``after`` or more.

        An edit that has begun is waited for, so it cannot land after the step's next message.
        """
        began = False

        async def later() -> None:
            nonlocal began
            await asyncio.sleep(after)
            began = True
            await self.show_status(job, force=True)

        task = asyncio.create_task(later(), name=f"status-{job.id}")
        try:
            yield
        finally:
            if not began:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StudioError):
                await task

    async def edit_status(
        self, job: Job, body: str, keyboard: Keyboard | None, *, optional: bool = False
    ) -> bool:
        """Edit the status message now and remember what it says; False if it could not be.

        An ``optional`` edit (progress) gives way to people's messages when Telegram's send
        budget is short; the text is not remembered then, so the next poll tries again.
        """
        if job.status_message_id is None:
            return False
        try:
            edited = await self.messenger.edit_text(
                job.chat_id, job.status_message_id, body, keyboard, optional=optional
            )
        except MessengerError as exc:
            # Progress edits are best effort; the final messages are sent separately.
            log.debug("job %s: status edit failed: %s", job.id, exc.kind)
            return False
        await self.jobs.update(job.id, status_text=body, status_edited_at=self.clock())
        return edited

    async def _reload(self, job: Job) -> Job:
        fresh = await self.jobs.get(job.id)
        assert fresh is not None
        return fresh


async def stop_shots(
    jobs: JobRepository, providers: ProviderSet, story: Job, now: float
) -> list[Job]:
    """Cancel a story's shots that are still being made (their credits were settled with the
    story) and ask their providers to stop; the shots stopped."""
    if story.kind != JobKind.STORY:
        return []
    stopped = []
    for shot in await jobs.shots(story.id):
        if can_move(shot.state, S.CANCELED) and await jobs.transition(
            shot.id, shot.state, S.CANCELED, settle="refund", finished_at=now
        ):
            if shot.external_id:
                with contextlib.suppress(StudioError):
                    await providers.get(shot.provider).cancel(
                        Submission(shot.external_id, shot.provider_data)
                    )
            stopped.append(shot)
    return stopped


def reason_for(exc: ProviderPermanent) -> tuple[str, dict[str, object]]:
    """The user's text for a permanent provider error."""
    if exc.reason in {"out_of_credit", "auth", "unavailable"}:
        return "failed_unavailable", {}
    if exc.reason == "content_policy":
        return "failed_content", {}
    if exc.reason == "failed_media":
        return "failed_media", {}
    return "failed_provider", {"detail": messages.user_text(str(exc), 200)}


def failure_reason(status: ProviderStatus) -> tuple[str, dict[str, object]]:
    """The user's text for a job the provider reported as failed."""
    error = (status.error or "").strip()
    if any(word in error.lower() for word in CONTENT_WORDS):
        return "failed_content", {}
    return "failed_provider", {"detail": messages.user_text(error or "no reason given", 200)}
