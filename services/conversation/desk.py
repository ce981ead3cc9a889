"""What every part of the conversation shares: who is talking, and the desk that answers them.

The photo side (``studio``) and the clip side (``clips``) both work through a ``Desk``: they send
texts and cards and read settings the same way, and neither needs the other for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.conversation import views
from services.conversation.intents import wants_fast
from services.conversation.preferences import Preferences
from services.conversation.safety import screen
from services.errors import MessengerError, QuotaExceeded
from services.model.jobs import ACTIVE_STATES, Job, JobKind, JobState
from services.production import messages
from services.production.credits import Credits
from services.production.stories import shot_jobs
from services.providers.base import ProviderSet
from services.providers.catalogue import Model, ModelKind, pick_model
from services.storage.repositories import Clock, JobRepository, Reservation, UserRepository
from services.telegram.messenger import Messenger
from services.texts import text

S = JobState


@dataclass(frozen=True)
class ChatUser:
    """Who is talking to the bot, and where."""

    id: int
    chat_id: int
    first_name: str
    username: str | None
    language: str


class Desk:
    """The repositories, the messenger and the providers, with the answers built on them."""

    def __init__(
        self,
        *,
        jobs: JobRepository,
        users: UserRepository,
        credits: Credits,
        messenger: Messenger,
        providers: ProviderSet,
        data_dir: Path,
        download_limit: int,
        clock: Clock,
        max_running: int = 2,
    ) -> None:
        self.jobs = jobs
        self.users = users
        self.credits = credits
        self.messenger = messenger
        self.providers = providers
        self.inbound_dir = data_dir / "inbound"
        self.download_limit = download_limit
        self.clock = clock
        self.max_running = max_running
        # What else someone who ran out hears, after when their credits come back (the
        # shop's packs, when buying is on).
        self.after_no_credits: Callable[[ChatUser], Awaitable[None]] | None = None

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

    async def seen(self, user: ChatUser) -> Preferences:
        """Remember the user (every update); return their settings."""
        await self.users.touch(user.id, user.chat_id, user.first_name, user.username, user.language)
        return await self.preferences(user.id)

    async def preferences(self, user_id: int) -> Preferences:
        """A user's settings."""
        record = await self.users.get(user_id)
        return Preferences.from_dict(record.settings if record else {})

    async def send_card(self, job: Job, reply_to: int | None = None) -> None:
        """Show the confirm card for a draft."""
        allowance = await self.credits.allowance(job.user_id)
        body, keyboard = views.card(job, allowance.available)
        mid = await self.messenger.send_text(job.chat_id, body, keyboard, reply_to=reply_to)
        await self.jobs.update(job.id, card_message_id=mid)

    async def refresh_card(self, job: Job, message_id: int) -> None:
        """Redraw a card after a change."""
        allowance = await self.credits.allowance(job.user_id)
        body, keyboard = views.card(job, allowance.available)
        await self.messenger.edit_text(job.chat_id, message_id, body, keyboard)

    async def reload(self, job: Job) -> Job:
        """The job as it is in the database now."""
        fresh = await self.jobs.get(job.id)
        assert fresh is not None
        return fresh

    async def _confirm(self, job: Job, user: ChatUser, message_id: int | None) -> str | None:
        """Reserve the credits and queue the job; ``message_id`` is the card to turn into status."""
        running = await self.jobs.for_user(user.id, ACTIVE_STATES)
        if len(running) >= self.max_running:
            await self.say(user, "busy", params={"count": len(running)})
            return text(job.language, "busy_short")
        try:
            # Checked before a status message is sent; held below, with the move to the queue.
            await self.credits.check(job.user_id, job.cost)
            if message_id is None:
                body, keyboard = messages.submitted(job)
                message_id = await self.messenger.send_text(job.chat_id, body, keyboard)
            moved = await self._queue(job, message_id)
        except QuotaExceeded as exc:
            # Also when another request of theirs took the credits after the check.
            await self.out_of_credits(user, exc)
            return None
        if not moved:
            return text(job.language, "already_started")
        body, keyboard = messages.submitted(await self.reload(job))
        with contextlib.suppress(MessengerError):
            await self.messenger.edit_text(job.chat_id, message_id, body, keyboard)
        return None

    async def _queue(self, job: Job, message_id: int) -> bool:
        """Move a draft to the queue with its credits held, in one transaction. A story holds
        each shot's credits on the shot's own job, written with the story's move."""
        fields: dict[str, Any] = {
            "status_message_id": message_id,
            "card_message_id": message_id,
            "next_poll_at": self.clock(),
            "submitted_at": None,
        }
        if job.kind == JobKind.STORY:
            shots: list[tuple[Job, Reservation | None]] = [
                (shot, self.credits.reservation(shot)) for shot in shot_jobs(job)
            ]
            return await self.jobs.add_shots(job.id, shots, src=S.DRAFT, dst=S.QUEUED, **fields)
        return await self.jobs.transition(
            job.id, S.DRAFT, S.QUEUED, reserve=self.credits.reservation(job), **fields
        )

    async def start_now(self, job: Job, user: ChatUser, reply_to: int | None = None) -> None:
        """Submit without the card ("just do it", or the skip-confirmation setting)."""
        answer = await self._confirm(job, user, None)
        if answer == text(job.language, "busy_short"):
            # Too many running: the card lets them start this one later with one press.
            await self.send_card(job, reply_to=reply_to)
        elif answer:
            await self.messenger.send_text(user.chat_id, answer, reply_to=reply_to)

    async def out_of_credits(self, user: ChatUser, exc: QuotaExceeded) -> None:
        """When the credits come back first, then (maybe) what else could be done."""
        await self.say(user, "no_credits", params=self.quota_params(exc, user.language))
        if self.after_no_credits is not None:
            await self.after_no_credits(user)

    def quota_params(self, exc: QuotaExceeded, lang: str) -> dict[str, object]:
        reset = views.reset_time(lang, exc.resets_at, self.clock(), self.credits.zone)
        return {**reset, "needed": exc.needed, "available": exc.available}

    async def take_words(
        self, user: ChatUser, message_id: int, words: str, no_model_key: str
    ) -> tuple[Model, Preferences] | None:
        """Words that ask for something filmed: the text-to-video model for them (the fast tier
        when they say "quick draft") and the user's settings; None when they were answered here
        already (a redelivered message, a refusal, ``no_model_key`` when no model films words)."""
        existing = await self.jobs.by_source(user.chat_id, message_id)
        if existing is not None and (existing.card_message_id or existing.state != S.DRAFT):
            return None  # the same message delivered twice: it already has its answer
        if existing is not None:
            # Delivered again after a crash between the draft and its card: show the card now.
            await self.send_card(existing, reply_to=message_id)
            return None
        refusal = screen(words)
        if refusal:
            await self.say(user, refusal, reply_to=message_id)
            return None
        prefs = await self.preferences(user.id)
        fast = wants_fast(words)
        try:
            model = pick_model(
                self.providers.main.name,
                ModelKind.TEXT_TO_VIDEO,
                None if fast else prefs.model,
                "fast" if fast else prefs.quality,
            )
        except LookupError:
            await self.say(user, no_model_key, reply_to=message_id)
            return None
        return model, prefs
