"""The user's account: /status, /history, /credits, /models, /settings, and /stats for admins.

Also the buttons that act on a finished result (send it again, send it as a file).
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from pathlib import Path

from services.conversation import views
from services.conversation.desk import ChatUser
from services.conversation.preferences import FIELDS, Preferences
from services.conversation.shop import Shop
from services.errors import MessengerError
from services.model.jobs import ACTIVE_STATES, JobState
from services.production import messages
from services.production.credits import Credits
from services.providers.catalogue import Model, ModelKind, get_model, models_for, pick_model
from services.storage.repositories import (
    Clock,
    JobRepository,
    MediaRecord,
    MediaRepository,
    UserRepository,
)
from services.telegram.messenger import Keyboard, Messenger
from services.texts import text

log = logging.getLogger(__name__)
HISTORY_SIZE = 10


def output_path(data_dir: Path, job_id: int) -> Path:
    """Where a delivered result is kept for "As file" (housekeeping removes it after a day)."""
    return data_dir / "outputs" / f"{job_id}.mp4"


class Account:
    """Commands about the user's own jobs, credits and settings."""

    def __init__(
        self,
        *,
        jobs: JobRepository,
        media: MediaRepository,
        users: UserRepository,
        credits: Credits,
        messenger: Messenger,
        provider_name: str,
        data_dir: Path,
        admins: frozenset[int],
        clock: Clock,
        shop: Shop | None = None,
    ) -> None:
        self.shop = shop
        self.jobs = jobs
        self.media = media
        self.users = users
        self.credits = credits
        self.messenger = messenger
        self.provider_name = provider_name
        self.data_dir = data_dir
        self.admins = admins
        self.clock = clock

    async def _send(self, user: ChatUser, body: str, keyboard: Keyboard | None = None) -> None:
        await self.messenger.send_text(
            user.chat_id, messages.clip(body, messages.TEXT_LIMIT), keyboard
        )

    async def status(self, user: ChatUser) -> None:
        """Drafts and running jobs, with where each one is."""
        jobs = await self.jobs.for_user(user.id, [JobState.DRAFT, *ACTIVE_STATES])
        if not jobs:
            await self._send(user, text(user.language, "status_none"))
            return
        now = self.clock()
        lines = [views.job_line(job, now) for job in jobs[:20]]
        await self._send(user, text(user.language, "status_head") + "\n" + "\n".join(lines))

    async def history(self, user: ChatUser) -> None:
        """Recent results, each with a button that sends it again (by file_id, no upload)."""
        done = await self.jobs.for_user(user.id, [JobState.DELIVERED])
        if not done:
            await self._send(user, text(user.language, "history_none"))
            return
        lines, keyboard = [], []
        for job in done[:HISTORY_SIZE]:
            stamp = datetime.fromtimestamp(job.finished_at or job.updated_at, self.credits.zone)
            prompt = messages.user_text(
                job.prompt or messages.motion_name(job.language, "zoom_in"), 60
            )
            lines.append(f"#{job.id} {stamp:%d.%m %H:%M} · {messages.what(job)} · <i>{prompt}</i>")
            label = text(user.language, "btn_send_again", id=job.id)
            keyboard.append([(label, messages.button(job.id, "send", prefix="r"))])
        await self._send(
            user, text(user.language, "history_head") + "\n" + "\n".join(lines), keyboard
        )

    async def credits_left(self, user: ChatUser) -> None:
        """The allowance, what is left, and when it resets."""
        allowance = await self.credits.allowance(user.id)
        if allowance.unlimited:
            await self._send(user, text(user.language, "credits_unlimited"))
            return
        reset = views.reset_time(
            user.language, allowance.resets_at, self.clock(), self.credits.zone
        )
        body = text(
            user.language, "credits", available=allowance.today, daily=allowance.daily, **reset
        )
        if allowance.bought or (self.shop is not None and self.shop.open):
            body += "\n" + text(user.language, "credits_bought", bought=allowance.bought)
        await self._send(user, body)

    async def models(self, user: ChatUser) -> None:
        """The models of this provider (photo, then words), with costs and typical times."""
        prefs = await self._prefs(user.id)
        chosen = pick_model(
            self.provider_name, ModelKind.IMAGE_TO_VIDEO, prefs.model, prefs.quality
        )
        lines = [text(user.language, "models_head")]
        for model in models_for(self.provider_name, ModelKind.IMAGE_TO_VIDEO):
            lines.append(self._model_line(user.language, model, model.key == chosen.key))
        from_words = models_for(self.provider_name, ModelKind.TEXT_TO_VIDEO)
        if from_words:
            lines.append(text(user.language, "models_text_head"))
            picked = pick_model(
                self.provider_name, ModelKind.TEXT_TO_VIDEO, prefs.model, prefs.quality
            )
            lines += [self._model_line(user.language, m, m.key == picked.key) for m in from_words]
        await self._send(user, "\n".join(lines))

    @staticmethod
    def _model_line(lang: str, model: Model, chosen: bool) -> str:
        costs = " / ".join(f"{d} s: {model.costs[d]}" for d in model.durations)
        mark = " ✓" if chosen else ""
        return (
            f"<b>{html.escape(model.title)}</b>{mark} · {costs} "
            f"{text(lang, 'credits_word')} · ~{model.typical_text()}"
        )

    # --- settings ---------------------------------------------------------------------------

    async def _prefs(self, user_id: int) -> Preferences:
        record = await self.users.get(user_id)
        return Preferences.from_dict(record.settings if record else {})

    def _settings_view(self, lang: str, prefs: Preferences) -> tuple[str, Keyboard]:
        auto = text(lang, "setting_auto")
        on, off = text(lang, "setting_on"), text(lang, "setting_off")
        values = {
            "model": html.escape(get_model(prefs.model).title) if prefs.model else auto,
            "quality": text(lang, f"quality_{prefs.quality}"),
            "aspect": prefs.aspect or auto,
            "duration": f"{prefs.duration} s" if prefs.duration else auto,
            "as_file": on if prefs.as_file else off,
            "skip_confirm": on if prefs.skip_confirm else off,
            "language": {"en": "English", "ru": "Русский"}.get(prefs.language or "", auto),
        }
        keyboard: Keyboard = [
            [(f"{text(lang, f'setting_{name}')}: {values[name]}", f"s:{name}")] for name in FIELDS
        ]
        return text(lang, "settings_head"), keyboard

    async def settings(self, user: ChatUser) -> None:
        """The settings, each a button that moves to its next value."""
        body, keyboard = self._settings_view(user.language, await self._prefs(user.id))
        await self._send(user, body, keyboard)

    async def change_setting(self, user: ChatUser, message_id: int, name: str) -> str | None:
        """A /settings button: cycle one setting and redraw the message."""
        if name not in FIELDS:
            return text(user.language, "button_expired")
        prefs = (await self._prefs(user.id)).cycled(name, self.provider_name)
        await self.users.save_settings(user.id, prefs.to_dict())
        lang = prefs.language or user.language
        body, keyboard = self._settings_view(lang, prefs)
        await self.messenger.edit_text(user.chat_id, message_id, body, keyboard)
        return None

    # --- results ----------------------------------------------------------------------------

    async def result_button(self, user: ChatUser, data: str | None) -> str | None:
        """A result button: "send" (again, by file_id) or "file" (as a document)."""
        pressed = messages.parse_button(data, prefix="r")
        job = await self.jobs.get(pressed.job_id) if pressed else None
        if pressed is None or job is None or job.state != JobState.DELIVERED:
            return text(user.language, "button_expired")
        if job.user_id != user.id:
            return text(user.language, "button_not_yours")
        record = await self.media.for_job(job.id)
        if pressed.action == "send" and record is not None:
            await self.messenger.send_video_by_id(
                user.chat_id, record.file_id, messages.caption(job), messages.after_delivery(job)
            )
            return None
        # "As file", or "Send it again" after an upload Telegram never confirmed: from disk.
        as_document = pressed.action != "send"
        path = output_path(self.data_dir, job.id)
        if not path.is_file():
            return text(user.language, "output_gone")
        try:
            async with self.messenger.chat_action(
                user.chat_id, "upload_document" if as_document else "upload_video"
            ):
                sent = await self.messenger.send_video(
                    user.chat_id,
                    path,
                    caption=messages.caption(job),
                    width=None,
                    height=None,
                    duration=None,
                    keyboard=None if as_document else messages.after_delivery(job),
                    as_document=as_document,
                )
        except MessengerError as exc:
            log.warning("job %s: sending from disk failed: %s", job.id, exc.kind)
            if exc.kind == "unclear":  # it most likely arrived; the button stays for another go
                return text(user.language, "status_unconfirmed")
            return text(user.language, "failed_delivery_short")
        if record is None and not as_document:  # now there is a file_id for later re-sends
            fresh = MediaRecord(
                job_id=job.id,
                chat_id=user.chat_id,
                message_id=sent.message_id,
                kind=sent.kind,
                file_id=sent.file_id,
                width=None,
                height=None,
                duration=None,
                size=path.stat().st_size,
            )
            await self.media.add(fresh, sent.file_unique_id)
        return None

    # --- admins -----------------------------------------------------------------------------

    async def stats(self, user: ChatUser) -> bool:
        """Numbers for admins; False (and nothing sent) for anyone else."""
        if user.id not in self.admins:
            return False
        counts = await self.jobs.count_by_state()
        users = await self.users.count()
        spent = await self.credits.ledger.kept_since(self.credits.day_bounds()[0])
        by_state = ", ".join(f"{state} {n}" for state, n in sorted(counts.items())) or "—"
        await self._send(
            user,
            text(
                user.language,
                "stats",
                users=users,
                jobs=by_state,
                spent=spent,
                provider=self.provider_name,
            )
            + (await self.shop.sales_line(user.language) if self.shop else ""),
        )
        return True
