"""The conversation's domain verbs: a photo arrives, a button is pressed, the user cancels.

Handlers parse an update and call one of these; the verbs answer the user through the
messenger with texts from ``views``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from pathlib import Path

from services.conversation import text_video, views
from services.conversation.choices import first_offered, fit_params, next_option
from services.conversation.clips import Clips
from services.conversation.desk import ChatUser, Desk
from services.conversation.intents import (
    StoryAsk,
    asked_seconds,
    asks_for_story,
    asks_for_video,
    aspect_for_size,
    parse_animation,
    wants_fast,
    wants_no_confirmation,
    without_commands,
)
from services.conversation.preferences import Preferences
from services.conversation.prompt_craft import PromptCrafter
from services.conversation.safety import screen
from services.conversation.storyboard import STORY_ACTIONS, Storyboard
from services.errors import MessengerError, StudioError, UserInputError
from services.model.jobs import Job, JobKind, JobState
from services.model.specs import KINDS
from services.production import messages
from services.production.credits import Credits
from services.production.endings import stop_shots
from services.providers.base import ProviderSet, Submission
from services.providers.catalogue import (
    MOTION_PRESETS,
    ModelKind,
    get_model,
    models_for,
    pick_model,
)
from services.storage.repositories import (
    AlbumRepository,
    Clock,
    JobRepository,
    LeaseRepository,
    MediaRepository,
    UserRepository,
)
from services.telegram.inbound import InboundImage, InboundMedia, Kind, fetch_image, identify
from services.telegram.messenger import Messenger
from services.texts import text

log = logging.getLogger(__name__)
S = JobState


class Studio(Desk):
    """What the bot does for a chat user."""

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
        media: MediaRepository,
        crafter: PromptCrafter,
        albums: AlbumRepository,
        max_running: int = 2,
        leases: LeaseRepository | None = None,
        owner: str = "",
    ) -> None:
        super().__init__(
            jobs=jobs,
            users=users,
            credits=credits,
            messenger=messenger,
            providers=providers,
            data_dir=data_dir,
            download_limit=download_limit,
            clock=clock,
            max_running=max_running,
        )
        self.crafter = crafter
        self.clips = Clips(self, media, data_dir)
        self.storyboard = Storyboard(self, albums, crafter, leases=leases, owner=owner)

    # --- a photo arrives --------------------------------------------------------------------

    async def receive_photo(
        self, user: ChatUser, message_id: int, image: InboundImage, caption: str | None
    ) -> None:
        """Screen, fetch and check the photo, make a draft, then show the card or go."""
        existing = await self.jobs.by_source(user.chat_id, message_id)
        if existing is not None and existing.card_message_id is not None:
            return  # the same message delivered twice: it already has its card
        refusal = screen(caption or "")
        if refusal:
            await self.say(user, refusal, reply_to=message_id)
            return
        prefs = await self.preferences(user.id)
        if existing is None:
            try:
                path, info = await fetch_image(
                    self.messenger, image, self.inbound_dir, self.download_limit
                )
            except UserInputError as exc:
                await self.say(user, exc.key, reply_to=message_id, params=exc.params)
                return
            if info.animated:
                await self.say(user, "photo_first_frame", reply_to=message_id)
            draft = self._draft(user, message_id, image, caption or "", path, prefs)
            size = (info.width or 1, info.height or 1)
            if "aspect" not in draft.params:
                draft.params["aspect"] = aspect_for_size(*size)
            job, created = await self.jobs.create(draft)
            if not created:
                path.unlink(missing_ok=True)
        else:
            job = existing
        if job.prompt and (prefs.skip_confirm or wants_no_confirmation(caption or "")):
            await self.start_now(job, user, reply_to=message_id)
        elif job.prompt:
            await self.send_card(job, reply_to=message_id)
        else:
            body, keyboard = views.ask_motion(job)
            mid = await self.messenger.send_text(user.chat_id, body, keyboard, reply_to=message_id)
            await self.jobs.update(job.id, card_message_id=mid)

    async def receive_file(
        self,
        user: ChatUser,
        message_id: int,
        item: InboundMedia,
        caption: str | None,
        replied_clip: InboundMedia | None,
        replied_to: int | None,
    ) -> None:
        """A file: fetched and decoded to learn what it holds, then handled as that."""
        try:
            kind, path = await identify(self.messenger, item, self.inbound_dir, self.download_limit)
        except UserInputError as exc:
            await self.say(user, exc.key, reply_to=message_id, params=exc.params)
            return
        fetched = replace(item, local_path=path)
        try:
            if kind is Kind.IMAGE:
                image = InboundImage(
                    item.file_id, item.file_unique_id, item.size, None, None, item.mime_type, path
                )
                await self.receive_photo(user, message_id, image, caption)
            elif kind is Kind.CLIP:
                await self.clips.receive_clip(user, message_id, fetched, caption, replied_to)
            else:
                await self.clips.receive_audio(user, message_id, fetched, replied_clip)
        finally:
            path.unlink(missing_ok=True)  # still here only if nothing took it (a repeat, a refusal)

    def _draft(
        self,
        user: ChatUser,
        message_id: int,
        image: InboundImage,
        caption: str,
        path: Path,
        prefs: Preferences,
    ) -> Job:
        # "A quick draft" asks for the fast mode this once, over the model chosen in /settings.
        fast = wants_fast(caption)
        model = pick_model(
            self.providers.main.name,
            ModelKind.IMAGE_TO_VIDEO,
            None if fast else prefs.model,
            "fast" if fast else prefs.quality,
        )
        prompt = without_commands(caption)
        wish = parse_animation(prompt)
        params: dict[str, object] = {"motion": wish.motion, "as_file": prefs.as_file}
        params["duration"] = first_offered(
            model.durations, [wish.duration, prefs.duration], model.durations[0]
        )
        # Without a wish or a setting, the shape follows the photo (filled in by the caller).
        aspect = first_offered(
            model.aspects or ("16:9", "9:16", "1:1"), [wish.aspect, prefs.aspect]
        )
        if aspect is not None:
            params["aspect"] = aspect
        return Job(
            id=0,
            user_id=user.id,
            chat_id=user.chat_id,
            kind=JobKind.ANIMATE,
            state=S.DRAFT,
            provider=model.provider,
            model=model.key,
            prompt=prompt,
            params=params,
            cost=model.cost(int(str(params["duration"]))),
            language=user.language,
            source_message_id=message_id,
            input_path=str(path),
            input_file_id=image.file_id,
            input_file_unique_id=image.file_unique_id,
        )

    # --- words arrive ----------------------------------------------------------------------

    async def receive_text(
        self, user: ChatUser, message_id: int, words: str, reply_to: int | None
    ) -> None:
        """Plain text: the prompt for a waiting photo, a request for a video, or a hint."""
        # A reply to a photo's card describes that photo; otherwise a request for a video wins
        # over a photo still waiting for words (it may be from last week).
        if reply_to is not None and await self.describe(user, words, reply_to, replied_only=True):
            return
        if reply_to is not None and await self.storyboard.edit_by_reply(user, words, reply_to):
            return
        story = asks_for_story(words)
        if story is not None:
            await self.storyboard.request_story(user, message_id, words, story)
            return
        if asks_for_video(words):
            await self.request_video(user, message_id, words)
            return
        if await self.describe(user, words, reply_to):
            return
        await self.say(user, "text_hint")

    async def request_video(self, user: ChatUser, message_id: int, words: str) -> None:
        """Words that ask for a video: a card with the prompt crafted from them, or go."""
        taken = await self.take_words(user, message_id, words, "text_video_needs_key")
        if taken is None:
            return
        model, prefs = taken
        asked = asked_seconds(words)
        if asked is not None and asked > max(model.durations):
            # Longer than one model's longest run: shots joined into one film.
            await self.storyboard.request_story(user, message_id, words, StoryAsk(None, False))
            return
        shape = text_video.shape_for(words, model, prefs)
        # A configured LLM may take a few seconds: "typing…" says the words were heard.
        async with self.messenger.typing(user.chat_id):
            crafted = await self.crafter.craft(words, user.language, shape.aspect, shape.duration)
        draft = text_video.draft(
            user_id=user.id,
            chat_id=user.chat_id,
            language=user.language,
            message_id=message_id,
            words=words,
            model=model,
            shape=shape,
            crafted=crafted.prompt,
            as_file=prefs.as_file,
        )
        job, created = await self.jobs.create(draft)
        if not created:
            return
        # Only the message's own "just do it" skips this card: words are read by tables, and a
        # misread line of chat must never start a paid run unseen.
        if wants_no_confirmation(words):
            await self.start_now(job, user, reply_to=message_id)
        else:
            await self.send_card(job, reply_to=message_id)

    async def describe(
        self, user: ChatUser, words: str, reply_to: int | None, *, replied_only: bool = False
    ) -> bool:
        """Text from the user: the prompt for a photo waiting for one (with ``replied_only``,
        only the photo whose card it replies to). False if none waits."""
        job = await self._waiting_for_prompt(user, reply_to, replied_only)
        if job is None:
            return False
        refusal = screen(words)
        if refusal:
            await self.say(user, refusal)
            return True
        prompt = without_commands(words)
        wish = parse_animation(prompt)
        model = get_model(job.model)
        params = dict(job.params, motion=wish.motion)
        if wish.aspect in model.aspects:
            params["aspect"] = wish.aspect
        if wish.duration in model.durations:
            params["duration"] = wish.duration
        await self.jobs.update(
            job.id, prompt=prompt, params=params, cost=model.cost(int(params["duration"]))
        )
        fresh = await self.reload(job)
        prefs = await self.preferences(user.id)
        if prefs.skip_confirm or wants_no_confirmation(words):
            await self.start_now(fresh, user)
        else:
            await self.send_card(fresh, reply_to=None)
        return True

    async def _waiting_for_prompt(
        self, user: ChatUser, reply_to: int | None, replied_only: bool = False
    ) -> Job | None:
        # Only a photo's draft takes words as its motion; other cards have their own words.
        if reply_to is not None:
            job = await self.jobs.by_card(user.chat_id, reply_to)
            if (
                job is not None
                and job.user_id == user.id
                and job.state == S.DRAFT
                and job.kind == JobKind.ANIMATE
            ):
                return job
        if replied_only:
            return None
        drafts = await self.jobs.for_user(user.id, [S.DRAFT])
        waiting = [j for j in drafts if not j.prompt and j.chat_id == user.chat_id]
        return waiting[0] if waiting else None

    # --- buttons ----------------------------------------------------------------------------

    async def press(self, user: ChatUser, message_id: int, data: str | None) -> str | None:
        """A job button; returns the short answer shown on the button, if any."""
        pressed = messages.parse_button(data)
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
        if pressed.action in ("ext", "mus") and job.state == S.DELIVERED:
            intent = "extend" if pressed.action == "ext" else "music"
            return await self.clips.from_result(job, user, intent)
        if job.kind == JobKind.STORY and pressed.action in STORY_ACTIONS:
            return await self.storyboard.press(job, user, pressed.action, message_id, pressed.arg)
        if job.state != S.DRAFT:
            return text(lang, "already_started" if job.active else "button_expired")
        if pressed.action == "go" and not job.params.get("pick"):
            return await self._confirm(job, user, message_id)
        if pressed.action == "k" and job.params.get("pick"):
            return await self.clips.choose(job, user, pressed.arg or "", message_id)
        model = get_model(job.model)
        params = dict(job.params)
        if pressed.action == "m" and pressed.arg in MOTION_PRESETS:
            params["motion"] = pressed.arg
        elif pressed.action == "dur":
            params["duration"] = next_option(model.durations, job.duration)
        elif pressed.action == "asp":
            params["aspect"] = next_option(model.aspects, job.aspect)
        elif pressed.action == "own" and job.kind == JobKind.TEXT:
            await self.jobs.update(
                job.id, prompt=text_video.swapped_prompt(job), card_message_id=message_id
            )
            await self.refresh_card(await self.reload(job), message_id)
            return None
        elif pressed.action == "mdl":
            model = next_option(tuple(models_for(model.provider, model.kind)), model)
            params = fit_params(params, model)
        else:
            return text(lang, "button_expired")
        await self.jobs.update(
            job.id,
            model=model.key,
            params=params,
            cost=model.cost(int(params["duration"])),
            card_message_id=message_id,
        )
        await self.refresh_card(await self.reload(job), message_id)
        return None

    async def _again(self, job: Job) -> str | None:
        kind = KINDS[job.kind]
        if not kind.again:
            return text(job.language, "button_expired")
        if kind.inputs and (not job.input_path or not Path(job.input_path).is_file()):
            return text(job.language, "button_expired")
        clone = job.anew(S.DRAFT)
        created, _ = await self.jobs.create(clone)
        await self.send_card(created)
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
        moved = await self.jobs.transition(
            job.id,
            job.state,
            S.CANCELED,
            settle="refund",
            finished_at=self.clock(),
            error="canceled",
        )
        if not moved:
            return text(job.language, "already_started")
        if job.external_id:
            with contextlib.suppress(StudioError):
                await self.providers.get(job.provider).cancel(
                    Submission(job.external_id, job.provider_data)
                )
        await stop_shots(self.jobs, self.providers, job, self.clock())
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
