"""Stories: shots made as jobs of their own, then stitched into one film and delivered.

A story job owns its shots. Each shot that must be made (a photo to animate, words to film) is a
child job with its own provider request and its own credit hold; a user's clip is used as it is.
The story waits while its shots run, asks the user what to do about a shot that failed, joins
the finished shots, and goes through the same delivery as any video.

Credits: every shot's hold is written with the story's move to the queue. A failed shot is
refunded when it fails; the shots that were made are kept in the transaction that delivers the
story, or refunded with a story that ends without a film. Nothing is billed twice: a shot that
was made is never made again, whatever restarts in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from services.errors import MediaError, MessengerError, QuotaExceeded
from services.media import effects, stitch
from services.media.ffmpeg import FFmpegTools
from services.model.jobs import FAILURE_STATES, Job, JobKind, JobState
from services.model.specs import Shot, StorySpec, story_of
from services.production import messages
from services.production.credits import Credits
from services.production.endings import Endings
from services.providers.catalogue import fallback_after, get_model
from services.storage.repositories import Clock, JobRepository, Reservation
from services.texts import text

log = logging.getLogger(__name__)
S = JobState

STORY_MODEL = "studio-story"  # the stitch itself: local, free
FADE = 0.5
FRAMES = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)}
OFFER_WAIT = 86_400.0  # how long a story waits for the user to decide about a failed shot
OFFER_RECHECK = 60.0  # a story or shot waiting on the user looks again this often (or is woken)
# Marks of each shot in a story's status signature: made, being made, waiting, failed.
# A blocked shot waits for the picture of a shot that failed.
DONE, MAKING, WAITING, FAILED, BLOCKED = "d", "r", "q", "f", "b"
PARALLEL = 3  # shots of one story at the provider at once: one story never floods a provider


@dataclass(frozen=True)
class ShotState:
    """Where one shot of a story is: its latest job (None for a user's clip) and mark."""

    index: int
    shot: Shot
    job: Job | None
    mark: str


def shot_jobs(story: Job, indexes: list[int] | None = None) -> list[Job]:
    """The jobs that make the story's shots (those that are not the user's own clips): all
    of the kept ones, or those of ``indexes``."""
    spec = story_of(story)
    jobs: list[Job] = []
    for index in indexes if indexes is not None else spec.kept:
        shot = spec.shots[index]
        if not shot.needs_render:
            continue
        model = get_model(shot.model or str(story.params.get("shot_model") or STORY_MODEL))
        duration = min(model.durations, key=lambda d: abs(d - shot.seconds))
        params: dict[str, object] = {"duration": duration}
        if shot.motion:
            params["motion"] = shot.motion
        if model.aspects:
            params["aspect"] = str(story.params.get("aspect") or model.aspects[0])
        if shot.chain:
            params["chain"] = True  # its picture is the last frame of the shot before
        kind = JobKind.TEXT if shot.source == "words" and not shot.chain else JobKind.ANIMATE
        jobs.append(
            Job(
                id=0,
                user_id=story.user_id,
                chat_id=story.chat_id,
                kind=kind,
                state=S.QUEUED,
                provider=model.provider,
                model=model.key,
                prompt=shot.prompt,
                params=params,
                cost=0 if model.provider == "local" else model.cost(duration),
                language=story.language,
                input_path=None if shot.chain else shot.path,
                input_file_id=shot.file_id,
                input_file_unique_id=shot.file_unique_id,
                next_poll_at=0.0,
                step=index,
            )
        )
    return jobs


class Stories:
    """Runs story jobs for the poller: waits for the shots, stitches, hands over to delivery."""

    def __init__(
        self,
        *,
        jobs: JobRepository,
        endings: Endings,
        credits: Credits,
        clock: Clock,
        poll_interval: float,
        tools: FFmpegTools | None = None,
    ) -> None:
        self.jobs = jobs
        self.endings = endings
        self.credits = credits
        self.clock = clock
        self.poll_interval = poll_interval
        self.tools = tools

    async def step(self, job: Job) -> float | None:
        """Do the story's next thing; seconds until it is due again (0 = now, None = done)."""
        if job.state == S.QUEUED:
            # Nothing goes to a provider here (the shots are jobs of their own), so passing
            # through "submitting" cannot send anything twice.
            await self.jobs.transition(job.id, S.QUEUED, S.SUBMITTING)
            return 0
        if job.state == S.SUBMITTING:
            await self.jobs.transition(
                job.id, S.SUBMITTING, S.RUNNING, submitted_at=self.clock(), provider_status=""
            )
            return 0
        if job.state == S.RUNNING:
            return await self._follow(job)
        if job.state == S.DOWNLOADING:
            return await self._assemble(job)
        return None

    # --- while the shots are made -----------------------------------------------------------

    async def shot_states(self, story: Job, spec: StorySpec) -> list[ShotState]:
        """Each kept shot's latest job and where it is."""
        latest: dict[int, Job] = {}
        for attempt in await self.jobs.shots(story.id):
            if attempt.step is not None:
                latest[attempt.step] = attempt  # ordered by step, then attempt
        states: list[ShotState] = []
        for index in spec.kept:
            shot = spec.shots[index]
            shot_job = latest.get(index)
            if not shot.needs_render:
                mark = DONE
            elif shot_job is None:
                mark = FAILED  # its job was never made: a bug, or a row removed by hand
            elif shot_job.state == S.DELIVERED:
                mark = DONE
            elif shot_job.state in FAILURE_STATES:
                mark = FAILED
            elif (
                shot_job.state == S.QUEUED
                and shot.chain
                and states
                and states[-1].mark
                in (
                    FAILED,
                    BLOCKED,
                )
            ):
                mark = BLOCKED
            elif shot_job.state in (S.QUEUED, S.SUBMITTING):
                mark = WAITING
            else:
                mark = MAKING
            states.append(ShotState(index, shot, shot_job, mark))
        return states

    async def ready_to_submit(self, shot: Job) -> float | None:
        """Whether a shot may go to its provider now; else seconds to wait (0: it ended here).
        A story sends a few shots at a time, and a shot that continues another waits for that
        one's last frame."""
        story = await self.jobs.get(shot.parent_id or 0)
        if story is None or not story.active:
            await self.endings.fail(shot, S.CANCELED, "canceled")  # its story ended
            return 0
        if shot.params.get("chain") and not (shot.input_path and Path(shot.input_path).is_file()):
            wait = await self._chain(story, shot)
            if wait is not None:
                return wait
        # One statement checks and takes the turn, so shots claimed together cannot all go.
        if not await self.jobs.take_turn(shot.id, story.id, PARALLEL):
            return self.poll_interval
        return None

    async def _chain(self, story: Job, shot: Job) -> float | None:
        """Give a continuing shot the last frame of the kept shot before it; seconds to wait
        while that shot is not made yet; None when the shot can go."""
        spec = story_of(story)
        earlier = [i for i in spec.kept if shot.step is not None and i < shot.step]
        if not earlier:
            # The shots before it were left out: it is filmed from its words instead.
            params = {k: v for k, v in shot.params.items() if k != "chain"}
            model = str(story.params.get("shot_model") or shot.model)
            await self.jobs.update(shot.id, kind=JobKind.TEXT, model=model, params=params)
            return None
        siblings = await self.jobs.shots(story.id)
        source = next((s for s in reversed(siblings) if s.step == earlier[-1]), None)
        if source is None or source.state != S.DELIVERED or not source.output_path:
            # Made later, or tried again after a failure: its hand-over wakes this shot.
            return self.poll_interval if source is not None and source.active else OFFER_RECHECK
        folder = self.endings.job_folder(story)
        folder.mkdir(parents=True, exist_ok=True)
        frame = folder / f"frame-{source.step}-{source.id}.jpg"
        try:
            await stitch.last_frame(Path(source.output_path), frame, self.tools)
        except MediaError as exc:
            log.warning("story %s: no last frame of shot %s: %s", story.id, source.step, exc)
            await self.endings.fail(shot, S.FAILED, "failed_media")
            return 0
        await self.jobs.update(shot.id, input_path=str(frame))
        return None

    async def _follow(self, story: Job) -> float | None:
        spec = story_of(story)
        states = await self.shot_states(story, spec)
        marks = "".join(s.mark for s in states)
        if marks != story.provider_status:
            done = marks.count(DONE)
            changes = {"provider_status": marks, "progress": done / max(1, len(states))}
            await self.jobs.update(story.id, **changes)
            story = await self._reload(story)
            await self.endings.show_status(story)
        if WAITING in marks or MAKING in marks:
            return self.poll_interval  # a shot that ends wakes the story sooner
        failed = [s for s in states if s.mark == FAILED]
        if failed:
            return await self._after_failure(story, spec, failed)
        await self.jobs.transition(story.id, S.RUNNING, S.DOWNLOADING, progress=1.0)
        return 0

    async def _after_failure(
        self, story: Job, spec: StorySpec, failed: list[ShotState]
    ) -> float | None:
        """Shots failed for good: each tries the next model once, else the user is asked."""
        fell_back = {int(k) for k in story.params.get("fell_back", [])}
        again: list[tuple[Job, Reservation | None]] = []
        for state in failed:
            attempt = _next_attempt(state.job, fell_back)
            if attempt is not None and attempt.step is not None:
                fell_back.add(attempt.step)
                # The price stays what the user agreed to: the failed attempt's hold (refunded
                # when it failed) is held again for the next one.
                again.append((attempt, self.credits.reservation(attempt)))
        if again:
            # Recorded with the new attempts, in one transaction: once per shot, whatever stops.
            params = {**story.params, "fell_back": sorted(fell_back)}
            try:
                added = await self.jobs.add_shots(story.id, again, params=params)
            except QuotaExceeded:
                added = False
            if added:
                for attempt, _ in again:
                    log.info(
                        "story %s: shot %s falls back to %s", story.id, attempt.step, attempt.model
                    )
                    title = get_model(attempt.model).title
                    number = (attempt.step or 0) + 1
                    body = text(story.language, "shot_fallback", number=number, new=title)
                    with contextlib.suppress(MessengerError):
                        await self.endings.messenger.send_text(story.chat_id, body)
                return 0
        offered_at = float(story.params.get("offered_at") or 0)
        # Names this offer (its failed attempts) on its buttons, short enough for callback data.
        attempts = ",".join(str(s.job.id if s.job else f"s{s.index}") for s in failed)
        token = hashlib.sha256(attempts.encode()).hexdigest()[:12]
        if story.params.get("offered") == token:
            if self.clock() - offered_at > OFFER_WAIT:
                await self.endings.fail(story, S.FAILED, "story_abandoned")
                return None
            return OFFER_RECHECK  # the user's answer wakes the story sooner
        params = {
            **story.params,
            "offered": token,
            "offered_at": self.clock(),
            "offered_steps": [s.index for s in failed],
        }
        await self.jobs.update(story.id, params=params)
        steps = [s.index for s in failed]
        body, keyboard = messages.shot_failed(story, steps, len(spec.kept), token)
        with contextlib.suppress(MessengerError):
            await self.endings.messenger.send_text(story.chat_id, body, keyboard)
        return OFFER_RECHECK

    # --- a shot ends -------------------------------------------------------------------------

    async def hand_over(self, shot: Job) -> float | None:
        """A made shot: keep its file with the story (its credits are settled with the story)
        and wake the story. Safe to repeat after a stop at any point."""
        assert shot.parent_id is not None
        story = await self.jobs.get(shot.parent_id)
        if story is None or not story.active:
            # The story ended while this shot was being made (its credits went with it).
            await self.endings.fail(shot, S.FAILED, "canceled")
            return None
        source = Path(shot.output_path or "")
        folder = self.endings.job_folder(story)
        kept = folder / f"shot-{shot.step}-{shot.id}.mp4"
        if source.is_file() and source != kept:
            folder.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(shutil.move, source, kept)
        elif not kept.is_file():
            # Neither here nor moved: fetch it again.
            await self.jobs.transition(shot.id, S.DELIVERING, S.DOWNLOADING)
            return 0
        moved = await self.jobs.transition(
            shot.id, S.DELIVERING, S.DELIVERED, output_path=str(kept), finished_at=self.clock()
        )
        if moved:
            log.info("story %s: shot %s made (job %s)", story.id, shot.step, shot.id)
        await self.endings.clean(shot)
        for waiting in await self.jobs.shots(story.id):
            if waiting.state == S.QUEUED and waiting.params.get("chain"):
                await self.jobs.wake(waiting.id)  # it may continue from this shot now
        await self.jobs.wake(story.id)
        return None

    # --- stitching ----------------------------------------------------------------------------

    async def _assemble(self, story: Job) -> float | None:
        spec = story_of(story)
        states = await self.shot_states(story, spec)
        clips: list[Path] = []
        for state in states:
            path = Path(state.shot.path or "") if state.job is None else None
            if state.job is not None:
                path = Path(state.job.output_path or "")
            if path is None or not path.is_file() or state.mark != DONE:
                log.warning("story %s: shot %s has no file to join", story.id, state.index)
                await self.endings.fail(story, S.FAILED, "failed_media")
                return None
            clips.append(path)
        folder = self.endings.job_folder(story)
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / "output.mp4"
        try:
            async with self.endings.status_when_slow(story):
                await self._join(spec, clips, folder, dest)
        except MediaError as exc:
            log.warning("story %s: cannot join the shots: %s", story.id, exc)
            await self.endings.fail(story, S.FAILED, "failed_media")
            return None
        except OSError as exc:
            log.error("story %s: cannot store the film: %s", story.id, exc.strerror or exc)
            await self.endings.fail(story, S.FAILED, "failed_storage")
            return None
        await self.jobs.transition(story.id, S.DOWNLOADING, S.DELIVERING, output_path=str(dest))
        return 0

    async def _join(self, spec: StorySpec, clips: list[Path], folder: Path, dest: Path) -> None:
        if len(clips) == 1:
            await asyncio.to_thread(shutil.copyfile, clips[0], dest)
            return
        music: Path | None = None
        if spec.music:
            music = folder / "music.m4a"
            await effects.generate_soundtrack(
                music, seconds=min(spec.seconds, 300.0), mood=spec.music, tools=self.tools
            )
        await stitch.stitch(
            clips,
            dest,
            transition=spec.transition,
            fade=FADE,
            size=FRAMES[spec.aspect] if spec.aspect else None,
            music=music,
            # Under people's own sound the bed stays low; over silent shots it is the sound.
            music_volume=0.18 if spec.has_own_sound else 1.0,
            tools=self.tools,
        )

    async def _reload(self, job: Job) -> Job:
        fresh = await self.jobs.get(job.id)
        assert fresh is not None
        return fresh


def _next_attempt(failed: Job | None, fell_back: set[int]) -> Job | None:
    """A failed shot made again on the next model of its kind, if it has not been yet."""
    # Not after a stall (the provider may still be rendering it) or an unknown submit.
    if failed is None or failed.state not in (S.FAILED, S.TIMED_OUT):
        return None
    if failed.step is None or failed.step in fell_back:
        return None
    following = fallback_after(get_model(failed.model), None)
    if following is None:
        return None
    params = dict(failed.params)
    if failed.duration not in following.durations:
        params["duration"] = min(following.durations, key=lambda d: abs(d - failed.duration))
    if following.aspects and failed.aspect not in following.aspects:
        params["aspect"] = following.aspects[0]
    return failed.anew(S.QUEUED, model=following.key, params=params, next_poll_at=0.0)
