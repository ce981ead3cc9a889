"""The conversation's domain verbs: a photo arrives, a button is pressed, the user cancels.

Handlers parse an update and call one of these; the verbs answer the user through the
messenger with texts from ``views``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from services import views
from services.catalogue import ModelKind, default_model, get_model
from services.credits import Credits
from services.errors import MessengerError, QuotaExceeded, StudioError, UserInputError
from services.inbound import InboundImage, fetch_image
from services.intents import MOTION_PRESETS, aspect_for_size, parse_animation
from services.jobs import Job, JobKind, JobState
from services.providers.base import Provider, Submission
from services.storage.repositories import Clock, JobRepository, UserRepository
from services.telegram_edge import Messenger
from services.texts import text

log = logging.getLogger(__name__)
T = TypeVar("T")
S = JobState


@dataclass(frozen=True)
class ChatUser:
    """Who is talking to the bot, and where."""

    id: int
    chat_id: int
    first_name: str
    username: str | None
    language: str


class Studio:
    """What the bot does for a chat user."""

    def __init__(
        self,
        *,
        jobs: JobRepository,
        users: UserRepository,
        credits: Credits,
        messenger: Messenger,
        provider: Provider,
        data_dir: Path,
        download_limit: int,
        clock: Clock,
    ) -> None:
        self.jobs = jobs
        self.users = users
        self.credits = credits
        self.messenger = messenger
        self.provider = provider
        self.inbound_dir = data_dir / "inbound"
        self.download_limit = download_limit
        self.clock = clock

    async def say(
        self,
        user: ChatUser,
        key: str,
        *,
        reply_to: int | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        """Send one text from the table."""
        body = text(user.language, key, **(params or {}))
        await self.messenger.send_text(user.chat_id, body, reply_to=reply_to)

    async def seen(self, user: ChatUser) -> None:
        """Remember the user (every update)."""
        await self.users.touch(user.id, user.chat_id, user.first_name, user.username, user.language)

    # --- a photo arrives --------------------------------------------------------------------

    async def receive_photo(
        self, user: ChatUser, message_id: int, image: InboundImage, caption: str | None
    ) -> None:
        """Check and fetch the photo, make a draft, and show the card (or motion presets)."""
        existing = await self.jobs.by_source(user.chat_id, message_id)
        if existing is not None and existing.card_message_id is not None:
            return  # the same message delivered twice: it already has its card
        if existing is None:
            try:
                path, info = await fetch_image(
                    self.messenger, image, self.inbound_dir, self.download_limit
                )
            except UserInputError as exc:
                await self.say(user, exc.key, reply_to=message_id, params=exc.params)
                return
            job, created = await self.jobs.create(
                self._draft(
                    user, message_id, image, caption or "", path, info.width or 1, info.height or 1
                )
            )
            if not created:
                path.unlink(missing_ok=True)
        else:
            job = existing
        if job.prompt:
            await self._send_card(job, reply_to=message_id)
        else:
            body, keyboard = views.ask_motion(job)
            mid = await self.messenger.send_text(user.chat_id, body, keyboard, reply_to=message_id)
            await self.jobs.update(job.id, card_message_id=mid)

    def _draft(
        self,
        user: ChatUser,
        message_id: int,
        image: InboundImage,
        caption: str,
        path: Path,
        width: int,
        height: int,
    ) -> Job:
        model = default_model(self.provider.name, ModelKind.IMAGE_TO_VIDEO)
        wish = parse_animation(caption)
        duration = wish.duration if wish.duration in model.durations else model.durations[0]
        aspect = wish.aspect if wish.aspect in model.aspects else aspect_for_size(width, height)
        return Job(
            id=0,
            user_id=user.id,
            chat_id=user.chat_id,
            kind=JobKind.ANIMATE,
            state=S.DRAFT,
            provider=self.provider.name,
            model=model.key,
            prompt=caption.strip(),
            params={"motion": wish.motion, "duration": duration, "aspect": aspect},
            cost=model.cost(duration),
            language=user.language,
            source_message_id=message_id,
            input_path=str(path),
            input_file_id=image.file_id,
            input_file_unique_id=image.file_unique_id,
        )

    async def _send_card(self, job: Job, reply_to: int | None = None) -> None:
        allowance = await self.credits.allowance(job.user_id)
        body, keyboard = views.card(job, allowance.available)
        mid = await self.messenger.send_text(job.chat_id, body, keyboard, reply_to=reply_to)
        await self.jobs.update(job.id, card_message_id=mid)

    async def _refresh_card(self, job: Job, message_id: int) -> None:
        allowance = await self.credits.allowance(job.user_id)
        body, keyboard = views.card(job, allowance.available)
        await self.messenger.edit_text(job.chat_id, message_id, body, keyboard)

    async def describe(self, user: ChatUser, words: str, reply_to: int | None) -> bool:
        """Text from the user: the prompt for a photo waiting for one. False if none waits."""
        job = await self._waiting_for_prompt(user, reply_to)
        if job is None:
            return False
        wish = parse_animation(words)
        model = get_model(job.model)
        params = dict(job.params, motion=wish.motion)
        if wish.aspect in model.aspects:
            params["aspect"] = wish.aspect
        if wish.duration in model.durations:
            params["duration"] = wish.duration
        await self.jobs.update(
            job.id, prompt=words.strip(), params=params, cost=model.cost(int(params["duration"]))
        )
        fresh = await self.jobs.get(job.id)
        assert fresh is not None
        await self._send_card(fresh, reply_to=None)
        return True

    async def _waiting_for_prompt(self, user: ChatUser, reply_to: int | None) -> Job | None:
        if reply_to is not None:
            job = await self.jobs.by_card(user.chat_id, reply_to)
            if job is not None and job.user_id == user.id and job.state == S.DRAFT:
                return job
        drafts = await self.jobs.for_user(user.id, [S.DRAFT])
        waiting = [j for j in drafts if not j.prompt and j.chat_id == user.chat_id]
        return waiting[0] if waiting else None

    # --- buttons ----------------------------------------------------------------------------

    async def press(self, user: ChatUser, message_id: int, data: str | None) -> str | None:
        """A button press; returns the short answer shown on the button, if any."""
        pressed = views.parse_button(data)
        job = await self.jobs.get(pressed.job_id) if pressed else None
        if pressed is None or job is None:
            return text(user.language, "button_expired")
        if job.user_id != user.id:
            return text(user.language, "button_not_yours")
        lang = job.language
        if pressed.action == "again":
            return await self._again(job)
        if pressed.action == "x":
            return await self._cancel(job, user)
        if job.state != S.DRAFT:
            return text(lang, "already_started" if job.active else "button_expired")
        if pressed.action == "go":
            return await self._confirm(job, user, message_id)
        model = get_model(job.model)
        params = dict(job.params)
        if pressed.action == "m" and pressed.arg in MOTION_PRESETS:
            params["motion"] = pressed.arg
        elif pressed.action == "dur":
            params["duration"] = _next(model.durations, job.duration)
        elif pressed.action == "asp":
            params["aspect"] = _next(model.aspects, job.aspect)
        else:
            return text(lang, "button_expired")
        await self.jobs.update(
            job.id,
            params=params,
            cost=model.cost(int(params["duration"])),
            card_message_id=message_id,
        )
        fresh = await self.jobs.get(job.id)
        assert fresh is not None
        await self._refresh_card(fresh, message_id)
        return None

    async def _confirm(self, job: Job, user: ChatUser, message_id: int) -> str | None:
        try:
            await self.credits.reserve(job)
        except QuotaExceeded as exc:
            await self.say(user, "no_credits", params=self._quota_params(exc, user.language))
            return None
        moved = await self.jobs.transition(
            job.id,
            S.DRAFT,
            S.QUEUED,
            status_message_id=message_id,
            card_message_id=message_id,
            next_poll_at=self.clock(),
            submitted_at=None,
        )
        if not moved:
            return text(job.language, "already_started")
        fresh = await self.jobs.get(job.id)
        assert fresh is not None
        body, keyboard = views.submitted(fresh)
        with contextlib.suppress(MessengerError):
            await self.messenger.edit_text(job.chat_id, message_id, body, keyboard)
        return None

    def _quota_params(self, exc: QuotaExceeded, lang: str) -> dict[str, object]:
        zone = self.credits.zone
        reset = datetime.fromtimestamp(exc.resets_at, zone)
        left = max(0, int(exc.resets_at - self.clock()))
        return {
            "reset_clock": reset.strftime("%H:%M"),
            "zone": str(zone),
            "reset_in": f"{left // 3600} h {left % 3600 // 60} min",
            "needed": exc.needed,
            "available": exc.available,
        }

    async def _again(self, job: Job) -> str | None:
        if not job.input_path or not Path(job.input_path).is_file():
            return text(job.language, "button_expired")
        clone = replace(
            job,
            id=0,
            state=S.DRAFT,
            source_message_id=None,
            card_message_id=None,
            status_message_id=None,
            status_text=None,
            status_edited_at=None,
            external_id=None,
            provider_data={},
            provider_status=None,
            progress=None,
            queue_position=None,
            same_status_polls=0,
            poll_errors=0,
            output_url=None,
            output_path=None,
            error=None,
            attempts=0,
            submitted_at=None,
            finished_at=None,
            next_poll_at=None,
            lease_owner=None,
            lease_until=None,
        )
        created, _ = await self.jobs.create(clone)
        await self._send_card(created)
        return None

    # --- cancel -----------------------------------------------------------------------------

    async def cancel_latest(self, user: ChatUser) -> None:
        """/cancel: stop the user's newest draft or running job."""
        candidates = await self.jobs.for_user(user.id, [S.DRAFT, S.QUEUED, S.SUBMITTING, S.RUNNING])
        if not candidates:
            await self.say(user, "cancel_nothing")
            return
        answer = await self._cancel(candidates[0], user)
        if answer:
            await self.messenger.send_text(user.chat_id, answer)

    async def _cancel(self, job: Job, user: ChatUser) -> str | None:
        if job.state not in (S.DRAFT, S.QUEUED, S.SUBMITTING, S.RUNNING):
            return text(job.language, "already_started" if job.active else "button_expired")
        if not await self.jobs.transition(
            job.id, job.state, S.CANCELED, finished_at=self.clock(), error="canceled"
        ):
            return text(job.language, "already_started")
        if job.external_id:
            with contextlib.suppress(StudioError):
                await self.provider.cancel(Submission(job.external_id, job.provider_data))
        await self.credits.refund(job, reason="canceled")
        log.info("job %s canceled by the user", job.id)
        message_id = job.status_message_id or job.card_message_id
        if message_id is not None:
            with contextlib.suppress(MessengerError):
                await self.messenger.edit_text(
                    job.chat_id, message_id, text(job.language, "canceled")
                )
        else:
            await self.say(user, "canceled")
        return None


def _next(options: tuple[T, ...], current: T) -> T:
    """The option after ``current``, wrapping around (a button that cycles values)."""
    if current not in options:
        return options[0]
    return options[(options.index(current) + 1) % len(options)]
