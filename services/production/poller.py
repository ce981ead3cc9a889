"""The poller: one repeating tick that moves every active job one step further.

The database is the queue. A tick leases due jobs (so a second process sharing the database
cannot take them), works on each in its own task with a bound on concurrency, and gives the
lease back with the time the job is next due. Every state change is written before the side
effect it guards: ``submitting`` before the provider call, ``delivering`` before the upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from services import log_context, metrics
from services.errors import (
    MediaError,
    MessengerError,
    ProviderPermanent,
    ProviderTransient,
    StudioError,
    TransferError,
)
from services.model.jobs import Job, JobState
from services.model.specs import KINDS
from services.production import messages
from services.production.alerts import Alerts
from services.production.credits import Credits
from services.production.delivery import Delivery
from services.production.endings import Endings, failure_reason
from services.production.stories import Stories
from services.providers.base import (
    JobSpec,
    ProviderSet,
    ProviderState,
    ProviderStatus,
    Submission,
)
from services.providers.callbacks import CALLBACK_SECRET, callback_url, new_secret
from services.providers.catalogue import ClipFacts, fallback_after, get_model
from services.storage.repositories import (
    Clock,
    JobRepository,
    MediaRecord,
    MediaRepository,
    Release,
)
from services.telegram.inbound import content_type_of
from services.telegram.messenger import Messenger
from services.texts import text

log = logging.getLogger(__name__)

S = JobState


@dataclass(frozen=True)
class PollerConfig:
    """The poller's knobs, from settings."""

    work_dir: Path
    poll_interval: float = 15.0
    job_timeout: float = 600.0
    stall_polls: int = 20
    max_concurrent: int = 48
    max_deliveries: int = 2
    edit_interval: float = 5.0
    lease_seconds: float = 60.0
    output_limit: int = 2_000_000_000
    submit_attempts: int = 3
    download_attempts: int = 3
    download_retry_wait: float = 10.0
    max_errors: int = 30
    # Providers call back under this https URL when a job is done (then it is polled slowly).
    public_url: str | None = None


# The provider refused the job before taking it (no such model; the model's schema refused an
# input): another model of the same kind may take it, and resubmitting cannot bill twice.
REFUSED_BEFORE_ACCEPTANCE = frozenset({"model_unavailable", "invalid_input"})


# Params that the conversation keeps for itself (the card, the swap of prompts), not model options.
CONVERSATION_PARAMS = frozenset({"duration", "aspect", "as_file", "words", "crafted"})


def job_spec(job: Job, inputs: dict[str, str]) -> JobSpec:
    """What the provider is asked to do for ``job``: model, words, uploaded inputs, options."""
    return JobSpec(
        model=get_model(job.model),
        prompt=job.prompt,
        inputs=inputs,
        duration=job.duration,
        aspect=job.aspect,
        options={k: v for k, v in job.params.items() if k not in CONVERSATION_PARAMS},
    )


# Two lanes, each with its own bound: many cheap status requests at once, but only a few of the
# downloads, re-encodes and uploads that need memory, CPU and bandwidth.
POLL_STATES = frozenset({S.QUEUED, S.SUBMITTING, S.RUNNING})
CALLING_BACK = frozenset({"muapi", "fal"})  # the providers that report completion
CALLBACK_SLOWDOWN = 4  # how much slower a job that will call back is polled
# A called-back job is polled at once even when routine polls fill the lane, up to as many
# again as the lane holds: at most this many times the lane's bound of status requests at once.
POLLS_IN_FLIGHT = 2
DELIVERY_STATES = frozenset({S.DOWNLOADING, S.DELIVERING})
# Written into a job's provider data once its video has gone out to Telegram whole.
UPLOAD_SENT = "upload_sent"


@dataclass
class Lane:
    """Jobs in some states, worked on by at most ``limit`` tasks at once."""

    name: str
    states: frozenset[JobState]
    limit: int
    inflight: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    freed: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None
    claiming: int = 0
    reserved: int = 0  # slots promised to claims under way (the pump's batch, callbacks' jobs)
    again: bool = False  # more became due while the pump was claiming


class Poller:
    """Moves jobs through the lifecycle; driven by the JobQueue."""

    def __init__(
        self,
        *,
        jobs: JobRepository,
        media: MediaRepository,
        credits: Credits,
        providers: ProviderSet,
        messenger: Messenger,
        delivery: Delivery,
        config: PollerConfig,
        clock: Clock,
        owner: str,
        alerts: Alerts | None = None,
    ) -> None:
        self.jobs = jobs
        self.media = media
        self.credits = credits
        self.providers = providers
        self.messenger = messenger
        self.delivery = delivery
        self.config = config
        self.clock = clock
        self.owner = owner
        self.endings = Endings(
            jobs=jobs,
            messenger=messenger,
            providers=providers,
            alerts=alerts,
            work_dir=config.work_dir,
            edit_interval=config.edit_interval,
            clock=clock,
        )
        self.stories = Stories(
            jobs=jobs,
            endings=self.endings,
            credits=credits,
            clock=clock,
            poll_interval=config.poll_interval,
        )
        self._lanes = (
            Lane("poll", POLL_STATES, config.max_concurrent),
            Lane("delivery", DELIVERY_STATES, config.max_deliveries),
        )
        self._renewer: asyncio.Task[None] | None = None
        # A poll's outcome for a job still running, written with the job's release: one
        # statement a poll instead of two, for the thousands of polls of a big round.
        self._outcomes: dict[int, dict[str, Any]] = {}
        self._returning: list[tuple[Release, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def busy(self) -> int:
        """Jobs being worked on right now (plus lanes still claiming)."""
        return sum(len(lane.inflight) + lane.claiming for lane in self._lanes)

    async def tick(self) -> int:
        """Start claiming due jobs in every lane that is not already at it; return how many
        jobs are being worked on."""
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), name="poller-leases")
        for lane in self._lanes:
            self._start(lane)
        await asyncio.sleep(0)  # let the lanes take their first batch
        return self.busy

    def _start(self, lane: Lane) -> None:
        if self._stopping:
            return
        if lane.pump is None or lane.pump.done():
            lane.pump = asyncio.create_task(self._pump(lane), name=f"poller-{lane.name}")
        else:
            lane.again = True  # the claim under way may have been too early to see it

    async def _pump(self, lane: Lane) -> None:
        """Keep the lane's slots filled while jobs are due; stop when none are left.

        Finished jobs free their slot at once, so a round over many jobs runs back to back
        instead of waiting for the next tick; the bound keeps the provider, the database and
        the users' own messages from queueing behind a big round.
        """
        lane.claiming = 1
        try:
            while True:
                room = lane.limit - len(lane.inflight)
                if room < max(1, lane.limit // 4) and lane.inflight:
                    # Claim in batches: one statement for several free slots, not one each.
                    lane.freed.clear()
                    if lane.limit - len(lane.inflight) < max(1, lane.limit // 4):
                        await lane.freed.wait()
                    continue
                lane.again = False
                lane.reserved += room
                try:
                    claimed = await self.jobs.claim_due(
                        self.owner, self.config.lease_seconds, room, lane.states
                    )
                finally:
                    lane.reserved -= room
                for job in claimed:
                    if job.id not in lane.inflight:  # else its lease had lapsed: still ours
                        self._begin(job, lane)
                if len(claimed) < room and not lane.again:
                    return
        finally:
            lane.claiming = 0

    def _begin(self, job: Job, lane: Lane) -> None:
        task = asyncio.create_task(self._work(job, lane), name=f"job-{job.id}")
        lane.inflight[job.id] = task
        task.add_done_callback(partial(self._forget, lane, job.id))

    async def take(self, job_id: int) -> None:
        """Poll a job now, in this process: its provider just said it is done. When the job is
        held (being polled already, here or elsewhere) or far too much is in hand, it is woken
        instead: the holder's release, or the next claim here or elsewhere, takes it at once."""
        lane = self._lanes[0]
        job: Job | None = None
        if job_id not in lane.inflight and (
            len(lane.inflight) + lane.reserved < POLLS_IN_FLIGHT * lane.limit
        ):
            lane.reserved += 1
            try:
                job = await self.jobs.claim(
                    job_id, self.owner, self.config.lease_seconds, lane.states
                )
            finally:
                lane.reserved -= 1
        if job is None:
            await self.jobs.wake(job_id)
            self._start(lane)
        elif job.id not in lane.inflight:  # else its lease had lapsed mid-work: still ours
            self._begin(job, lane)

    @staticmethod
    def _forget(lane: Lane, job_id: int, task: asyncio.Task[None]) -> None:
        if lane.inflight.get(job_id) is task:
            del lane.inflight[job_id]
            lane.freed.set()

    async def stop(self) -> None:
        """Stop working; leases lapse and the jobs resume on the next start."""
        self._stopping = True
        tasks: list[asyncio.Task[None]] = [self._renewer] if self._renewer else []
        for lane in self._lanes:
            if lane.pump is not None:
                tasks.append(lane.pump)
            tasks.extend(lane.inflight.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._writer is not None:  # the last leases go back before the database closes
            with contextlib.suppress(Exception):
                await self._writer

    async def _work(self, job: Job, lane: Lane) -> None:
        log_context.job_id.set(job.id)  # this task's lines name the job
        next_at: float | None = None
        handed_over = False
        try:
            current: Job | None = job
            while current is not None and current.active:
                with metrics.JOB_TURN.time():
                    delay = await self._step(current)
                if delay is None:
                    break
                if delay > 0:
                    next_at = self.clock() + delay
                    break
                current = await self.jobs.get(current.id)
                if current is not None and current.state not in lane.states:
                    # Due now, in the other lane (a finished render goes to delivery).
                    next_at, handed_over = self.clock(), True
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: unexpected error; will retry", job.id)
            next_at = self.clock() + self.config.poll_interval
            await self._count_error(job)
        finally:
            # Out of the lane before the lease goes back: from then on a claim may take the job
            # again, in this process too, and must find no task at work on it.
            self._forget(lane, job.id, asyncio.current_task())  # type: ignore[arg-type]
            outcome = self._outcomes.pop(job.id, {})
            woken = await self._release(Release(job.id, next_at, outcome))
        if woken:
            # Its provider called back while this poll was under way (and may have finished
            # after it answered): claim it again now rather than at the next tick.
            self._start(lane)
        if handed_over:
            for other in self._lanes:
                if other is not lane:
                    self._start(other)

    async def _release(self, release: Release) -> bool:
        """Give a lease back; True when the job was woken meanwhile.

        Leases given back while others are being written go together in the next statement:
        a round over thousands of jobs costs a write per batch rather than one per poll, and a
        quiet moment costs no wait at all. The write is not cancelled with the job's task.
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._returning.append((release, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_releases(), name="poller-releases")
        return await asyncio.shield(done)

    async def _write_releases(self) -> None:
        batch: list[tuple[Release, asyncio.Future[bool]]] = []
        try:
            while self._returning:
                batch, self._returning = self._returning, []
                woken: set[int] = set()
                try:
                    woken = await self.jobs.release_all(self.owner, [r for r, _ in batch])
                except Exception as exc:
                    # No task works on these jobs any more, so nothing renews their leases:
                    # they lapse, and the jobs are claimed again then.
                    log.warning("could not give back %d leases: %s", len(batch), exc)
                for release, done in batch:
                    if not done.done():
                        done.set_result(release.job_id in woken)
        finally:  # cancelled (the loop is closing): nobody waits for ever
            for _, done in batch + self._returning:
                if not done.done():
                    done.set_result(False)

    async def _renew(self) -> None:
        # One statement renews every lease this process holds, however many jobs are in hand.
        while True:
            await asyncio.sleep(self.config.lease_seconds / 3)
            held = [job_id for lane in self._lanes for job_id in lane.inflight]
            if held:
                with contextlib.suppress(Exception):  # a busy database: the next turn renews
                    await self.jobs.renew_leases(self.owner, self.config.lease_seconds, held)

    async def _count_error(self, job: Job) -> None:
        fresh = await self.jobs.get(job.id)
        if fresh is None or not fresh.active:
            return
        await self.jobs.update(job.id, poll_errors=fresh.poll_errors + 1)
        if fresh.poll_errors + 1 >= self.config.max_errors:
            await self.endings.fail(fresh, S.FAILED, "failed_media")

    async def _step(self, job: Job) -> float | None:
        """Do the next thing for ``job``; return seconds until it is due again (0 = now)."""
        if KINDS[job.kind].runs == "story" and job.state != S.DELIVERING:
            return await self.stories.step(job)  # its shots are jobs of their own
        if job.state == S.QUEUED:
            return await self._submit(job)
        if job.state == S.SUBMITTING:
            # We crashed (or lost the lease) mid-submit: the provider may have the job and may
            # bill for it, so it is never sent again.
            await self.endings.fail(job, S.UNKNOWN, "unknown")
            return None
        if job.state == S.RUNNING:
            return await self._poll(job)
        if job.state == S.DOWNLOADING:
            return await self._download(job)
        if job.state == S.DELIVERING:
            return await self._deliver(job)
        return None

    # --- submit -----------------------------------------------------------------------------

    async def _submit(self, job: Job) -> float | None:
        if job.parent_id is not None:
            # A story's shot waits its turn, or for the shot it continues from.
            wait = await self.stories.ready_to_submit(job)
            if wait is not None:
                return wait
            job = await self._reload(job)
        # Picked on the card for a clip the model cannot work on (Veo extends only Veo-made
        # clips): move on before anything is uploaded or sent.
        clip = ClipFacts.from_params(job.params)
        if not get_model(job.model).takes(clip) and await self._fall_back(job, "model_skipped"):
            return 0
        inputs = job.provider_data.get("inputs")
        if not inputs:
            try:
                inputs = await self._upload_inputs(job)
            except ProviderTransient as exc:
                await self.jobs.update(job.id, attempts=job.attempts + 1)
                return await self._retry_submit_later(await self._reload(job), exc)
            except ProviderPermanent as exc:
                await self.endings.provider_failed(job, exc)
                return None
            await self.jobs.update(job.id, provider_data={**job.provider_data, "inputs": inputs})
        callback, secret = self._callback(job)
        if not await self.jobs.transition(
            job.id, S.QUEUED, S.SUBMITTING, attempts=job.attempts + 1
        ):
            return None
        try:
            spec = replace(job_spec(job, inputs), callback_url=callback)
            submission = await self.providers.get(job.provider).submit(spec)
        except ProviderTransient as exc:
            if exc.reached:
                await self.endings.fail(await self._reload(job), S.UNKNOWN, "unknown")
                return None
            await self.jobs.transition(job.id, S.SUBMITTING, S.QUEUED)
            return await self._retry_submit_later(await self._reload(job), exc)
        except ProviderPermanent as exc:
            fresh = await self._reload(job)
            if exc.reason in REFUSED_BEFORE_ACCEPTANCE and await self._fall_back(fresh):
                return 0
            await self.endings.provider_failed(fresh, exc)
            return None
        now = self.clock()
        data = {**job.provider_data, "inputs": inputs, **submission.data}
        if secret:
            data[CALLBACK_SECRET] = secret
        moved = await self.jobs.transition(
            job.id,
            S.SUBMITTING,
            S.RUNNING,
            external_id=submission.external_id,
            provider_data=data,
            submitted_at=now,
            provider_status="submitted",
        )
        if not moved:
            # Canceled while the submit was in flight: stop it on the provider too.
            with contextlib.suppress(StudioError):
                await self.providers.get(job.provider).cancel(submission)
            return None
        log.info("job %s submitted to %s as %s", job.id, job.provider, submission.external_id)
        metrics.SUBMITS.labels(job.provider, job.kind.value).inc()
        # The card already says "Submitted": this line may wait for a quieter moment, so the
        # cards of people who just wrote go first in a burst.
        await self.endings.show_status(await self._reload(job), force=True, optional=True)
        return min(self.config.poll_interval, 2.0)

    def _callback(self, job: Job) -> tuple[str | None, str | None]:
        """The callback URL for a submit, and the job's secret in it (none without a public
        URL, or for the local studio)."""
        if not self.config.public_url or job.provider not in CALLING_BACK:
            return None, None
        secret = str(job.provider_data.get(CALLBACK_SECRET) or new_secret())
        return callback_url(self.config.public_url, job.provider, job.id, secret), secret

    def _poll_interval(self, job: Job) -> float:
        # A job that will call back is polled only as a fallback, for a lost callback.
        if job.provider_data.get(CALLBACK_SECRET):
            return self.config.poll_interval * CALLBACK_SLOWDOWN
        return self.config.poll_interval

    async def _upload_inputs(self, job: Job) -> dict[str, str]:
        """Upload the job's files (the bytes, never a Telegram URL) under their roles."""
        if job.params.get("source_request_id"):
            return {"chained": "1"}  # the provider continues its own earlier result
        provider = self.providers.get(job.provider)
        # The kind says which files it sends: the job's input first, then its audio.
        roles = KINDS[job.kind].inputs
        sources = [job.input_path, job.params.get("audio_path")]
        files = {role: str(name or "") for role, name in zip(roles, sources, strict=False)}
        inputs: dict[str, str] = {}
        for role, name in files.items():
            if not name or not Path(name).is_file():
                raise ProviderPermanent("an input file is gone", reason="failed_media")
            path = Path(name)
            inputs[role] = await provider.upload(path, content_type_of(path))
        return inputs

    async def _retry_submit_later(self, job: Job, exc: ProviderTransient) -> float | None:
        """The provider surely did not take the job: try again later, a few times at most."""
        if job.attempts >= self.config.submit_attempts:
            if await self._fall_back(job):
                return 0
            await self.endings.fail(job, S.FAILED, "failed_unavailable")
            return None
        return exc.retry_after or 2.0 ** max(1, job.attempts)

    async def _fall_back(self, job: Job, reason_key: str = "model_fallback") -> bool:
        """Move a job the provider would not take to the next model of the same kind that can
        work on the job's clip; ``reason_key`` is the text that tells the user.

        Only called before the provider accepted the job, so resubmitting cannot bill twice.
        The price stays what the user agreed to.
        """
        current = get_model(job.model)
        following = fallback_after(current, ClipFacts.from_params(job.params))
        if following is None:
            return False
        params = dict(job.params)
        if job.duration not in following.durations:
            params["duration"] = min(following.durations, key=lambda d: abs(d - job.duration))
        if following.aspects and job.aspect not in following.aspects:
            params["aspect"] = following.aspects[0]
        changes: dict[str, Any] = {"model": following.key, "params": params, "attempts": 0}
        if job.state == S.SUBMITTING:
            if not await self.jobs.transition(job.id, S.SUBMITTING, S.QUEUED, **changes):
                return False
        else:
            await self.jobs.update(job.id, **changes)
        log.info("job %s: %s refused it, falling back to %s", job.id, current.key, following.key)
        body = text(job.language, reason_key, old=current.title, new=following.title)
        with contextlib.suppress(MessengerError):
            await self.messenger.send_text(job.chat_id, body)
        return True

    # --- poll -------------------------------------------------------------------------------

    async def _poll(self, job: Job) -> float | None:
        now = self.clock()
        over_time = now - (job.submitted_at or job.created_at) > self.config.job_timeout
        try:
            provider = self.providers.get(job.provider)
            status = await provider.poll(Submission(job.external_id or "", job.provider_data))
        except ProviderTransient as exc:
            if over_time:
                return await self._time_out(job)
            await self.jobs.update(job.id, poll_errors=job.poll_errors + 1)
            return exc.retry_after or self.config.poll_interval
        except ProviderPermanent as exc:
            await self.endings.provider_failed(job, exc)
            return None
        if status.state in (ProviderState.QUEUED, ProviderState.RUNNING):
            # A provider that times its own work (the local studio, whose line is not slowness:
            # every render ahead is bounded) is timed from the start of that work, not its turn.
            if status.running_for is not None:
                over_time = status.running_for > self.config.job_timeout
            if over_time:
                return await self._time_out(job)
        if status.state == ProviderState.COMPLETED:
            if not status.outputs:
                await self.endings.fail(
                    job, S.FAILED, "failed_provider", params={"detail": "no video in the result"}
                )
                return None
            await self.jobs.transition(
                job.id,
                S.RUNNING,
                S.DOWNLOADING,
                output_url=status.outputs[0],
                progress=1.0,
                provider_status=status.signature,
                queue_position=None,
            )
            return 0
        if status.state == ProviderState.FAILED:
            key, params = failure_reason(status)
            await self.endings.fail(job, S.FAILED, key, params=params)
            return None
        if status.state == ProviderState.CANCELED:
            await self.endings.fail(job, S.CANCELED, "canceled")
            return None
        return await self._progress(job, status)

    async def _time_out(self, job: Job) -> float | None:
        """Stop the job at the provider and end it as timed out; nothing more to poll."""
        await self.endings.cancel_remote(job)
        await self.endings.fail(job, S.TIMED_OUT, "timed_out")
        return None

    async def _progress(self, job: Job, status: ProviderStatus) -> float | None:
        same = job.same_status_polls + 1 if status.signature == job.provider_status else 0
        if same >= self.config.stall_polls:
            # The provider id stays on the job: an operator can still look it up.
            await self.endings.fail(job, S.STALLED, "stalled")
            return None
        changes: dict[str, Any] = {
            "provider_status": status.signature,
            "same_status_polls": same,
            "poll_errors": 0,
            "progress": status.progress,
            "queue_position": status.queue_position,
        }
        # Written when the job is released, right after: nothing reads them before.
        self._outcomes[job.id] = changes
        await self.endings.show_status(replace(job, **changes))
        return self._poll_interval(job)

    # --- download and deliver ---------------------------------------------------------------

    async def _download(self, job: Job) -> float | None:
        folder = self.endings.job_folder(job)
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / "output.mp4"
        try:
            async with self.endings.status_when_slow(job):
                await self._fetch_output(job, dest)
        except OSError as exc:
            # Our own disk (full, or not writable): the user is refunded, the operator alerted.
            log.error("job %s: cannot store the output: %s", job.id, exc.strerror or exc)
            dest.unlink(missing_ok=True)
            if self.endings.alerts is not None:
                await self.endings.alerts.storage_problem(str(exc.strerror or exc))
            await self.endings.fail(job, S.FAILED, "failed_storage")
            return None
        if not dest.is_file():
            if job.parent_id is None:  # a shot's failure is told by its story
                await self.delivery.send_link_or_apology(
                    job, text(job.language, "reason_download_failed")
                )
            await self.endings.fail(job, S.FAILED, "failed_download", notify=False)
            return None
        await self.jobs.transition(job.id, S.DOWNLOADING, S.DELIVERING, output_path=str(dest))
        return 0

    async def _fetch_output(self, job: Job, dest: Path) -> None:
        """Download the result into ``dest``, retrying what may pass; absent if it never came."""
        for attempt in range(self.config.download_attempts):
            try:
                await self.providers.get(job.provider).fetch_output(
                    job.output_url or "", dest, self.config.output_limit
                )
                return
            except (ProviderTransient, TransferError) as exc:
                log.warning("job %s: download attempt %d failed: %s", job.id, attempt + 1, exc)
                if attempt + 1 < self.config.download_attempts:
                    await asyncio.sleep(self.config.download_retry_wait)
            except ProviderPermanent as exc:
                log.warning("job %s: download failed: %s", job.id, exc)
                return

    async def _deliver(self, job: Job) -> float | None:
        if job.parent_id is not None:
            return await self.stories.hand_over(job)  # a shot goes to its story, not the chat
        path = Path(job.output_path or "")
        if not job.output_path or not path.is_file():
            await self.jobs.transition(job.id, S.DELIVERING, S.DOWNLOADING)
            return 0
        if job.provider_data.get(UPLOAD_SENT):
            # A process died (or lost its lease) after this video had gone out whole and
            # before Telegram's answer: it may well be in the chat, and Telegram cannot say.
            # Sending it again could show it twice, so the user decides, as when Telegram
            # never answers an upload. (An upload cut off midway is simply sent again.)
            await self._unconfirmed(job, path)
            return None

        async def sent_whole() -> None:
            await self.jobs.update(
                job.id, provider_data={**job.provider_data, UPLOAD_SENT: self.clock()}
            )

        try:
            async with self.endings.status_when_slow(job):
                outcome = await self.delivery.deliver(
                    job,
                    path,
                    messages.after_delivery(job),
                    as_document=bool(job.params.get("as_file")),
                    on_sent_whole=sent_whole,
                )
        except MediaError as exc:
            log.warning("job %s: output unreadable: %s", job.id, exc)
            await self.endings.fail(job, S.FAILED, "failed_media")
            return None
        if outcome.unconfirmed and outcome.path is not None:
            # Telegram holds the whole upload and most likely posted it.
            await self._unconfirmed(job, outcome.path)
            return None
        if outcome.sent is None:
            await self.endings.fail(job, S.FAILED, "failed_delivery", notify=False)
            return None
        now = self.clock()
        await self.jobs.transition(
            job.id, S.DELIVERING, S.DELIVERED, settle="keep", finished_at=now
        )
        info = outcome.info
        await self.media.add(
            MediaRecord(
                job_id=job.id,
                chat_id=job.chat_id,
                message_id=outcome.sent.message_id,
                kind=outcome.sent.kind,
                file_id=outcome.sent.file_id,
                width=info.width if info else None,
                height=info.height if info else None,
                duration=info.duration if info else None,
                size=info.size if info else None,
            ),
            outcome.sent.file_unique_id,
        )
        log.info("job %s delivered", job.id)
        if outcome.path is not None:
            self._keep_output(job, outcome.path)
        done = text(
            job.language,
            "status_done",
            elapsed=messages.elapsed(now - (job.submitted_at or job.created_at)),
        )
        await self.endings.edit_status(job, done, keyboard=None)
        await self.endings.clean(job)
        return None

    async def _unconfirmed(self, job: Job, path: Path) -> None:
        """The video may or may not be in the chat: charge it (it was made), keep the file and
        offer a button to send it again rather than risk showing it twice."""
        if not await self.jobs.transition(
            job.id, S.DELIVERING, S.DELIVERED, settle="keep", finished_at=self.clock()
        ):
            return
        self._keep_output(job, path)
        log.warning("job %s: upload unconfirmed; offering to send it again", job.id)
        unconfirmed = text(job.language, "status_unconfirmed")
        if not await self.endings.edit_status(job, unconfirmed, keyboard=messages.resend(job)):
            await self.messenger.send_text(job.chat_id, unconfirmed, messages.resend(job))
        await self.endings.clean(job)

    def _keep_output(self, job: Job, path: Path) -> None:
        # Kept a day for "As file" and "Send it again"; housekeeping removes it after that.
        kept = self.config.work_dir / "outputs" / f"{job.id}.mp4"
        kept.parent.mkdir(parents=True, exist_ok=True)
        path.replace(kept)

    async def _reload(self, job: Job) -> Job:
        fresh = await self.jobs.get(job.id)
        assert fresh is not None
        return fresh
