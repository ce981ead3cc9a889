"""Clips: extend a video, add sound to it, or put the user's own audio under it."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any

from services.conversation import views
from services.conversation.desk import ChatUser, Desk
from services.conversation.intents import (
    clip_intent,
    parse_animation,
    wants_no_confirmation,
    without_commands,
)
from services.conversation.safety import screen
from services.errors import MediaError, MessengerError, UserInputError
from services.media import ffmpeg as media
from services.media.effects import extend_effect_for, mood_for
from services.model.jobs import Job, JobKind, JobState
from services.providers.catalogue import (
    ClipFacts,
    Model,
    ModelKind,
    chained_extend_for,
    get_model,
    model_for_clip,
    models_for,
)
from services.storage.repositories import MediaRepository
from services.telegram.inbound import InboundMedia, fetch_audio, fetch_clip
from services.texts import text

S = JobState


class Clips:
    """The clip side of the conversation: drafts and cards through the shared desk."""

    def __init__(self, desk: Desk, media: MediaRepository, data_dir: Path) -> None:
        self.desk = desk
        self.media = media
        self.outputs = data_dir / "outputs"

    def _model(
        self, intent: str, source: Job | None, clip: ClipFacts | None
    ) -> tuple[Model, dict[str, Any]]:
        """The model for a clip job; models that cannot work on this clip are passed over
        here, when the job is made (Veo extends only Veo-made clips, MMAudio reads 30 s)."""
        main = self.desk.providers.main.name
        if intent == "extend":
            if source is not None and source.provider == main and source.external_id:
                chained = chained_extend_for(get_model(source.model))
                if chained is not None:
                    # The provider continues its own result: nothing to upload, no quality loss.
                    return chained, {"source_request_id": source.external_id}
            kind = ModelKind.EXTEND_BY_CLIP
        else:
            kind = ModelKind.VIDEO_TO_AUDIO
        provider = main if models_for(main, kind) else "local"
        model = model_for_clip(provider, kind, clip)
        if model is None:
            # Only a length cap leaves no model (MMAudio): say so rather than cut the clip.
            first = models_for(provider, kind)[0]
            limit = first.accepts.max_seconds if first.accepts else None
            raise UserInputError(
                "clip_too_long_for_model",
                seconds=round(clip.seconds or 0) if clip else "?",
                model=first.title,
                limit=int(limit or 0),
            )
        return model, {}

    def _job(
        self,
        user: ChatUser,
        message_id: int | None,
        path: Path,
        file_id: str | None,
        prompt: str,
        intent: str,
        source: Job | None,
        clip: ClipFacts | None,
    ) -> Job:
        model, extra = self._model(intent, source, clip)
        wish = parse_animation(prompt)
        duration = wish.duration if wish.duration in model.durations else model.durations[0]
        params: dict[str, Any] = {"duration": duration, **extra}
        if clip is not None:
            # Kept for the submit: the fallback skips models that cannot take the clip, and
            # MMAudio is told the clip's length.
            params["clip"] = clip.as_params()
        if intent == "extend":
            params["effect"] = extend_effect_for(prompt)
        else:
            params["mood"] = mood_for(prompt)
        return Job(
            id=0,
            user_id=user.id,
            chat_id=user.chat_id,
            kind=JobKind.EXTEND if intent == "extend" else JobKind.MUSIC,
            state=S.DRAFT,
            provider=model.provider,
            model=model.key,
            prompt=prompt,
            params=params,
            cost=model.cost(duration),
            language=user.language,
            source_message_id=message_id,
            input_path=str(path),
            input_file_id=file_id,
        )

    async def receive_clip(
        self,
        user: ChatUser,
        message_id: int,
        clip: InboundMedia,
        words: str | None,
        replied_to: int | None,
    ) -> None:
        """A video (or a reply to one): extend it, add sound, or ask which."""
        desk = self.desk
        existing = await desk.jobs.by_source(user.chat_id, message_id)
        if existing is not None and existing.card_message_id is not None:
            return
        refusal = screen(words or "")
        if refusal:
            await desk.say(user, refusal, reply_to=message_id)
            return
        prompt = without_commands(words or "")
        if existing is None:
            try:
                path, info = await fetch_clip(
                    desk.messenger, clip, desk.inbound_dir, desk.download_limit
                )
            except UserInputError as exc:
                await desk.say(user, exc.key, reply_to=message_id, params=exc.params)
                return
            intent = clip_intent(prompt)
            source = await self._delivered_job(user, replied_to)
            facts = ClipFacts(info.width, info.height, info.duration)
            try:
                draft = self._job(
                    user, message_id, path, clip.file_id, prompt, intent or "extend", source, facts
                )
            except UserInputError as exc:
                path.unlink(missing_ok=True)
                await desk.say(user, exc.key, reply_to=message_id, params=exc.params)
                return
            if intent is None:
                draft.params["pick"] = True
                draft.params["source_job"] = source.id if source else None
            job, created = await desk.jobs.create(draft)
            if not created:
                path.unlink(missing_ok=True)
        else:
            job = existing
        if job.params.get("pick"):
            body, keyboard = views.ask_clip(job)
            mid = await desk.messenger.send_text(user.chat_id, body, keyboard, reply_to=message_id)
            await desk.jobs.update(job.id, card_message_id=mid)
            return
        prefs = await desk.preferences(user.id)
        if prefs.skip_confirm or wants_no_confirmation(words or ""):
            await desk.start_now(job, user, reply_to=message_id)
        else:
            await desk.send_card(job, reply_to=message_id)

    async def _delivered_job(self, user: ChatUser, message_id: int | None) -> Job | None:
        """The bot's own job behind a message the user replied to, if it was ours."""
        if message_id is None:
            return None
        record = await self.media.by_message(user.chat_id, message_id)
        if record is None or record.job_id is None:
            return None
        job = await self.desk.jobs.get(record.job_id)
        return job if job is not None and job.user_id == user.id else None

    async def choose(self, job: Job, user: ChatUser, intent: str, message_id: int) -> str | None:
        """The Extend / Add music buttons on a clip sent without words."""
        if intent not in ("extend", "music") or not job.input_path:
            return text(user.language, "button_expired")
        source_id = job.params.get("source_job")
        source = await self.desk.jobs.get(int(source_id)) if source_id else None
        facts = ClipFacts.from_params(job.params)
        try:
            fresh = self._job(
                user,
                None,
                Path(job.input_path),
                job.input_file_id,
                job.prompt,
                intent,
                source,
                facts,
            )
        except UserInputError as exc:
            await self.desk.say(user, exc.key, params=exc.params)
            return None
        await self.desk.jobs.update(
            job.id,
            kind=fresh.kind,
            provider=fresh.provider,
            model=fresh.model,
            params=fresh.params,
            cost=fresh.cost,
            card_message_id=message_id,
        )
        await self.desk.refresh_card(await self.desk.reload(job), message_id)
        return None

    async def from_result(self, job: Job, user: ChatUser, intent: str) -> str | None:
        """Extend / Add music under a delivered video: a new draft made from that result."""
        folder = self.desk.inbound_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}.mp4"
        kept = self.outputs / f"{job.id}.mp4"
        if kept.is_file():
            await asyncio.to_thread(shutil.copyfile, kept, path)
        else:
            record = await self.media.for_job(job.id)
            if record is None:
                return text(user.language, "button_expired")
            try:
                await self.desk.messenger.download(record.file_id, path, self.desk.download_limit)
            except MessengerError:
                return text(user.language, "output_gone")
        try:
            draft = self._job(user, None, path, None, "", intent, job, await _facts_of(path))
        except UserInputError as exc:
            path.unlink(missing_ok=True)
            await self.desk.say(user, exc.key, params=exc.params)
            return None
        created, _ = await self.desk.jobs.create(draft)
        await self.desk.send_card(created)
        return None

    async def receive_audio(
        self, user: ChatUser, message_id: int, sound: InboundMedia, video: InboundMedia | None
    ) -> None:
        """A voice note or audio sent as a reply to a video: mix it in, locally and free."""
        desk = self.desk
        if video is None:
            await desk.say(user, "audio_needs_video", reply_to=message_id)
            return
        if await desk.jobs.by_source(user.chat_id, message_id) is not None:
            return
        try:
            clip_path, _ = await fetch_clip(
                desk.messenger, video, desk.inbound_dir, desk.download_limit
            )
            audio_path = await fetch_audio(
                desk.messenger, sound, desk.inbound_dir, desk.download_limit
            )
        except UserInputError as exc:
            await desk.say(user, exc.key, reply_to=message_id, params=exc.params)
            return
        model = get_model("studio-mix")
        job, created = await desk.jobs.create(
            Job(
                id=0,
                user_id=user.id,
                chat_id=user.chat_id,
                kind=JobKind.MIX,
                state=S.DRAFT,
                provider=model.provider,
                model=model.key,
                params={"duration": 0, "audio_path": str(audio_path)},
                cost=0,
                language=user.language,
                source_message_id=message_id,
                input_path=str(clip_path),
                input_file_id=video.file_id,
            )
        )
        if created:
            await desk.start_now(job, user, reply_to=message_id)


async def _facts_of(path: Path) -> ClipFacts | None:
    """What ffprobe says about one of our own results (None if it cannot say)."""
    try:
        info = await media.probe(path)
    except MediaError:
        return None
    return ClipFacts(info.width, info.height, info.duration)
