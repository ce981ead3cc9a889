"""Stories in the conversation: albums collected into one, the plan card, and its buttons.

Telegram sends an album as separate messages sharing a ``media_group_id`` and never says which
is the last. Each item is fetched and checked as it comes (one bad file is named and left out),
kept in the database, and the album is made into a story once no item has come for ``quiet``
seconds. A restart in between loses nothing: kept items are picked up again at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.conversation import story_plan, text_video
from services.conversation.desk import ChatUser, Desk
from services.conversation.intents import (
    MAX_STORY_SHOTS,
    StoryAsk,
    asked_seconds,
    aspect_for_size,
    join_wish,
    named_motion,
    parse_animation,
    wants_no_confirmation,
    without_commands,
)
from services.conversation.preferences import Preferences
from services.conversation.prompt_craft import PromptCrafter
from services.conversation.safety import screen
from services.errors import QuotaExceeded, UserInputError
from services.media.effects import mood_for
from services.model.jobs import Job, JobKind, JobState
from services.model.specs import MAX_SHOTS, Shot, StorySpec, story_of, story_params
from services.production.stories import STORY_MODEL, shot_jobs
from services.providers.catalogue import ModelKind, get_model, pick_model
from services.storage.repositories import AlbumItem, AlbumRepository, LeaseRepository
from services.telegram.inbound import InboundImage, InboundMedia, fetch_clip, fetch_image
from services.texts import text

log = logging.getLogger(__name__)
S = JobState

STORY_ACTIONS = frozenset({"tr", "snd", "more", "less", "retry", "skip"})  # its own buttons
QUIET = 1.5  # seconds without a new item before an album counts as complete
SETTLE_LEASE, SETTLE_LEASE_TIME = "albums", 120.0
FETCH_LIMIT = 300.0  # an item still being fetched after this is lost (its process stopped)
PHOTO_SECONDS = 5
# The camera moves a photo album's shots take in turn, so a story never repeats one move.
CAMERA_MOVES: tuple[str, ...] = ("zoom_in", "pan_right", "zoom_out", "pan_left", "pan_up")


class Storyboard:
    """Albums into stories, and the story card's own buttons."""

    def __init__(
        self,
        desk: Desk,
        albums: AlbumRepository,
        crafter: PromptCrafter,
        quiet: float = QUIET,
        leases: LeaseRepository | None = None,
        owner: str = "",
    ) -> None:
        self.desk = desk
        self.albums = albums
        self.crafter = crafter
        # Items of one album may reach different processes: one of them makes the stories.
        self.leases = leases
        self.owner = owner
        self.quiet = quiet
        self._timers: set[asyncio.Task[None]] = set()
        self._settling = asyncio.Lock()

    # --- albums ------------------------------------------------------------------------------

    async def receive_item(
        self,
        user: ChatUser,
        message_id: int,
        group: str,
        item: InboundImage | InboundMedia,
        caption: str | None,
    ) -> None:
        """One photo or clip of an album: note it, fetch and check it, wait for the rest.

        It is noted before it is fetched: the album's quiet counts from arrivals, and an album
        is not made while one of its items is still on its way.
        """
        arrived = AlbumItem(
            chat_id=user.chat_id,
            message_id=message_id,
            user_id=user.id,
            media_group_id=group,
            kind="photo" if isinstance(item, InboundImage) else "clip",
            file_id=item.file_id,
            file_unique_id=item.file_unique_id,
            caption=(caption or "").strip(),
            language=user.language,
        )
        if not await self.albums.arrive(arrived):
            return  # the same message delivered twice
        # Fetched in the background: the next item of the album (this person's next message)
        # is noted at once instead of after this download, and the downloads overlap.
        self._spawn(self._fetch(user, message_id, item), f"album-item-{message_id}")

    async def _fetch(
        self, user: ChatUser, message_id: int, item: InboundImage | InboundMedia
    ) -> None:
        desk = self.desk
        try:
            if isinstance(item, InboundImage):
                path, picture = await fetch_image(
                    desk.messenger, item, desk.inbound_dir, desk.download_limit
                )
                size: tuple[int | None, int | None] = (picture.width, picture.height)
                seconds = None
            else:
                path, info = await fetch_clip(
                    desk.messenger, item, desk.inbound_dir, desk.download_limit
                )
                size, seconds = (info.width, info.height), info.duration
        except UserInputError as exc:
            # That item is left out; the rest of the album still becomes a story.
            await self.albums.drop(user.chat_id, message_id)
            await desk.say(user, exc.key, reply_to=message_id, params=exc.params)
            self._settle_later()
            return
        await self.albums.fetched(user.chat_id, message_id, str(path), size, seconds)
        self._settle_later()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("albums: %s failed", name)

        task = asyncio.create_task(guarded(), name=name)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def _settle_later(self, delay: float | None = None) -> None:
        wait = self.quiet + 0.05 if delay is None else delay
        task = asyncio.create_task(self._settle_after(wait), name="album-settle")
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _settle_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self.settle()
        except Exception:
            log.exception("albums: could not make a story of a complete album")

    async def settle(self) -> int:
        """Make every complete album a story (at start, and when an album goes quiet)."""
        async with self._settling:  # one at a time: two timers must not make one album twice
            if self.leases is not None and not await self.leases.take(
                SETTLE_LEASE, self.owner, SETTLE_LEASE_TIME
            ):
                self._settle_later()  # another process is at it; look again after it
                return 0
            try:
                return await self._settle()
            finally:
                if self.leases is not None:
                    await self.leases.give_back(SETTLE_LEASE, self.owner)

    async def _settle(self) -> int:
        made = 0
        now = self.desk.clock()
        for items in await self.albums.settled(now - self.quiet, now - FETCH_LIMIT):
            try:
                await self._album_ready(items)
            except Exception:
                # One album that cannot be made must not hold up everybody else's.
                log.exception("albums: could not make a story of album %s", items[0].media_group_id)
                continue
            made += 1
        return made

    async def resume(self) -> None:
        """At start: make stories of albums kept before a restart, now or once they go quiet
        (an album may have been cut short by the restart a moment after its last item)."""
        # Items whose fetch the stop cut short are fetched again (Telegram keeps the files).
        for kept in await self.albums.unfetched():
            user = ChatUser(kept.user_id, kept.chat_id, "", None, kept.language)
            item: InboundImage | InboundMedia = (
                InboundImage(kept.file_id, kept.file_unique_id or "", None, None, None)
                if kept.kind == "photo"
                else InboundMedia(kept.file_id, kept.file_unique_id or "", None, "video/mp4")
            )
            self._spawn(self._fetch(user, kept.message_id, item), f"album-item-{kept.message_id}")
        await self.settle()
        self._settle_later()

    async def stop(self) -> None:
        """Forget pending timers (the items stay kept; ``settle`` at start takes them)."""
        for task in list(self._timers):
            task.cancel()
        for task in list(self._timers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _album_ready(self, items: list[AlbumItem]) -> None:
        desk = self.desk
        first = items[0]
        user = ChatUser(first.user_id, first.chat_id, "", None, first.language)
        caption = next((i.caption for i in items if i.caption), "")
        refusal = screen(caption)
        if refusal:
            for item in items:
                await self.albums.drop(item.chat_id, item.message_id)
                Path(item.path or "").unlink(missing_ok=True)
            await desk.say(user, refusal, reply_to=first.message_id)
            return
        # The items are taken only once the user has the card (or the story started): a stop
        # in between finds the story here again and sends what is missing.
        existing = await desk.jobs.by_source(user.chat_id, first.message_id)
        if existing is not None:
            if existing.state == S.DRAFT and existing.card_message_id is None:
                await desk.send_card(existing, reply_to=first.message_id)
            await self.albums.take(items, existing.id)
            return
        prefs = await desk.preferences(user.id)
        draft = self.plan(user, items, caption, prefs)
        job, created = await desk.jobs.create(draft)
        if created:
            log.info("album of %d items became story %s", len(items), job.id)
            if len(items) > MAX_SHOTS:
                await desk.say(user, "album_too_long", params={"count": MAX_SHOTS})
            if prefs.skip_confirm or wants_no_confirmation(caption):
                await desk.start_now(job, user, reply_to=first.message_id)
            else:
                await desk.send_card(job, reply_to=first.message_id)
        await self.albums.take(items, job.id)

    def plan(
        self, user: ChatUser, items: Sequence[AlbumItem], caption: str, prefs: Preferences
    ) -> Job:
        """The story of an album: each photo a shot with its own camera move, each clip as it
        is; crossfades, and music under photos unless the words say otherwise."""
        words = without_commands(caption)
        wish = join_wish(words)
        asked = named_motion(words)
        shots: list[Shot] = []
        for n, item in enumerate(items[:MAX_SHOTS]):
            if item.kind == "photo":
                shot = Shot(
                    source="photo",
                    seconds=PHOTO_SECONDS,
                    prompt=words,
                    motion=asked or CAMERA_MOVES[n % len(CAMERA_MOVES)],
                    path=item.path,
                    file_id=item.file_id,
                    file_unique_id=item.file_unique_id,
                    width=item.width,
                    height=item.height,
                )
            else:
                shot = Shot(
                    source="clip",
                    seconds=max(0.1, min(60.0, item.duration or 1.0)),
                    prompt="",
                    path=item.path,
                    file_id=item.file_id,
                    file_unique_id=item.file_unique_id,
                    width=item.width,
                    height=item.height,
                )
            shots.append(shot)
        photos = any(s.source == "photo" for s in shots)
        # Photos are silent: music unless refused. Clips bring their own sound: only if asked.
        music = wish.music if wish.music is not None else photos
        aspect = parse_animation(words).aspect or prefs.aspect
        spec = StorySpec(
            shots=tuple(shots),
            transition="cut" if wish.cuts else "fade",
            music=mood_for(words) if music else None,
            aspect=aspect if aspect in ("16:9", "9:16", "1:1") else None,  # type: ignore[arg-type]
        )
        shot_model = self._shot_model(prefs)
        first = shots[0]
        shape = spec.aspect or aspect_for_size(first.width or 16, first.height or 9)
        story = Job(
            id=0,
            user_id=user.id,
            chat_id=user.chat_id,
            kind=JobKind.STORY,
            state=S.DRAFT,
            provider="local",
            model=STORY_MODEL,
            prompt=words,
            params=story_params(
                spec,
                shot_model=shot_model,
                aspect=shape,
                duration=round(spec.seconds),
                as_file=prefs.as_file,
            ),
            language=user.language,
            source_message_id=items[0].message_id,
        )
        return _priced(story)

    def _shot_model(self, prefs: Preferences) -> str:
        main = self.desk.providers.main.name
        return pick_model(main, ModelKind.IMAGE_TO_VIDEO, prefs.model, prefs.quality).key

    # --- stories from words ----------------------------------------------------------------------

    async def request_story(
        self, user: ChatUser, message_id: int, words: str, ask: StoryAsk
    ) -> None:
        """Words that ask for a story: a plan card (each shot's prompt and length, the total
        length and cost), or go at once when the message itself says "just do it"."""
        desk = self.desk
        # With no key: the local studio cannot film words, but it makes stories of albums.
        taken = await desk.take_words(user, message_id, words, "story_needs_key")
        if taken is None:
            return
        model, prefs = taken
        provider = model.provider
        follow = None
        if ask.continuity:
            with contextlib.suppress(LookupError):
                follow = pick_model(provider, ModelKind.IMAGE_TO_VIDEO, None, prefs.quality)
        shape = text_video.shape_for(words, model, prefs)
        seconds = asked_seconds(words)
        count = story_plan.shot_count(ask.shots, seconds, max(model.durations))
        each = story_plan.shot_seconds(model.durations, count, seconds)
        async with desk.messenger.typing(user.chat_id):
            crafted = await self.crafter.craft(
                story_plan.subject_words(words), user.language, shape.aspect, each * count
            )
        wish = join_wish(words)
        params: dict[str, object] = {
            "shot_model": model.key,
            "follow_model": follow.key if follow else None,
            "aspect": shape.aspect,
            "as_file": prefs.as_file,
            "base": crafted.prompt,
            "seconds_each": each,
            "edits": {},
        }
        story = Job(
            id=0,
            user_id=user.id,
            chat_id=user.chat_id,
            kind=JobKind.STORY,
            state=S.DRAFT,
            provider=provider,
            model=STORY_MODEL,
            prompt=text_video.own_words(words),
            params=params,
            language=user.language,
            source_message_id=message_id,
        )
        spec = StorySpec(
            shots=tuple(_word_shots(story, count)),
            transition="cut" if wish.cuts else "fade",
            music=mood_for(words) if wish.music else None,
            aspect=shape.aspect if shape.aspect in ("16:9", "9:16", "1:1") else None,  # type: ignore[arg-type]
        )
        story = _priced(_with_spec(story, spec))
        job, created = await desk.jobs.create(story)
        if not created:
            return
        log.info("story %s planned from words: %d shots of %d s", job.id, count, each)
        # As for any request in words, only the message's own "just do it" skips the card.
        if wants_no_confirmation(words):
            await desk.start_now(job, user, reply_to=message_id)
        else:
            await desk.send_card(job, reply_to=message_id)

    async def edit_by_reply(self, user: ChatUser, words: str, reply_to: int) -> bool:
        """A reply to a story's card: "shot 2: make it night" changes that shot. False if the
        reply is not to a story card of this user's that is still a plan."""
        desk = self.desk
        job = await desk.jobs.by_card(user.chat_id, reply_to)
        if job is None or job.user_id != user.id or job.kind != JobKind.STORY:
            return False
        if job.state != S.DRAFT:
            await desk.say(user, "already_started")
            return True
        refusal = screen(words)
        if refusal:
            await desk.say(user, refusal)
            return True
        spec = story_of(job)
        change = story_plan.parse_shot_edit(words)
        if change is None or not 0 <= change[0] < len(spec.shots):
            await desk.say(user, "story_edit_hint", params={"count": len(spec.shots)})
            return True
        index, what = change
        if not _takes_words(job, spec.shots[index]):
            await desk.say(user, "story_edit_local")
            return True
        edits = {**_edits(job), str(index): what}
        shots = list(spec.shots)
        shots[index] = spec.shots[index].model_copy(
            update={"prompt": story_plan.edited(_base_prompt(job, spec, index), what)}
        )
        spec = spec.changed(shots=[shot.model_dump() for shot in shots])
        fresh = _priced(_with_spec(job, spec, edits=edits))
        await desk.jobs.update(job.id, params=fresh.params, cost=fresh.cost)
        await desk.refresh_card(await desk.reload(job), job.card_message_id or reply_to)
        return True

    def _replanned(self, job: Job, count: int) -> Job:
        """A story from words with ``count`` shots: beats laid out again, the user's edits kept
        on the shots that stay."""
        spec = story_of(job)
        shots = _word_shots(job, count)
        return _priced(_with_spec(job, spec.changed(shots=[s.model_dump() for s in shots])))

    # --- the story card -----------------------------------------------------------------------

    async def press(
        self, job: Job, user: ChatUser, action: str, message_id: int, arg: str | None = None
    ) -> str | None:
        """A story's own buttons: transitions, music and shots on its card; after a failed
        shot, go on without it or try it again (``arg`` names the offer)."""
        if action in ("retry", "skip"):
            return await self._after_failure(job, user, action, arg)
        if job.state != S.DRAFT:
            return text(job.language, "already_started" if job.active else "button_expired")
        spec = story_of(job)
        if action in ("more", "less"):
            if not job.params.get("base"):
                return text(job.language, "button_expired")  # an album's shots are its items
            count = len(spec.shots) + (1 if action == "more" else -1)
            if not story_plan.MIN_SHOTS <= count <= MAX_STORY_SHOTS:
                return text(job.language, "story_shot_limit")
            fresh = self._replanned(job, count)
            await self.desk.jobs.update(
                job.id, params=fresh.params, cost=fresh.cost, card_message_id=message_id
            )
            await self.desk.refresh_card(await self.desk.reload(job), message_id)
            return None
        if action == "tr":
            spec = spec.model_copy(
                update={"transition": "cut" if spec.transition == "fade" else "fade"}
            )
        elif action == "snd":
            spec = spec.model_copy(update={"music": None if spec.music else mood_for(job.prompt)})
        else:
            return text(job.language, "button_expired")
        params = {**job.params, **story_params(spec)}
        await self.desk.jobs.update(job.id, params=params, card_message_id=message_id)
        await self.desk.refresh_card(await self.desk.reload(job), message_id)
        return None

    async def _after_failure(
        self, job: Job, user: ChatUser, action: str, offer: str | None
    ) -> str | None:
        desk = self.desk
        if job.state != S.RUNNING or not offer or job.params.get("offered") != offer:
            return text(job.language, "button_expired")  # answered, or an older offer
        spec = story_of(job)
        failed = [int(i) for i in job.params.get("offered_steps") or []]
        changes: dict[str, object] = {"offered": None, "offered_steps": None}
        if action == "skip":
            kept = [i for i in spec.kept if i not in failed]
            if not kept:
                return text(job.language, "button_expired")
            spec = spec.changed(skipped=tuple(sorted({*spec.skipped, *failed})))
            params = {**job.params, **changes, **story_params(spec)}
            params["duration"] = round(spec.seconds)
            await desk.jobs.update(job.id, params=params)
        else:
            again = shot_jobs(job, failed)
            try:
                added = await desk.jobs.add_shots(
                    job.id,
                    [(shot, desk.credits.reservation(shot)) for shot in again],
                    params={**job.params, **changes},
                )
            except QuotaExceeded as exc:
                await desk.out_of_credits(user, exc)
                return None
            if not added:
                return text(job.language, "button_expired")
        # Shots waiting to continue a shot that failed go on now, from whatever comes first.
        for shot in await desk.jobs.shots(job.id):
            if shot.state == S.QUEUED:
                await desk.jobs.wake(shot.id)
        await desk.jobs.wake(job.id)
        return text(job.language, "story_going_on")


def _edits(job: Job) -> dict[str, str]:
    edits = job.params.get("edits")
    return {str(k): str(v) for k, v in edits.items()} if isinstance(edits, dict) else {}


def _word_shots(story: Job, count: int) -> list[Shot]:
    """The shots of a story from words: a beat each before the crafted prompt, the user's
    edits on top; with continuity, each shot after the first continues the one before."""
    base = str(story.params.get("base") or story.prompt)
    each = float(str(story.params.get("seconds_each") or 5))
    follow = story.params.get("follow_model")
    edits = _edits(story)
    shots = []
    for index, prompt in enumerate(story_plan.shot_prompts(base, count)):
        if str(index) in edits:
            prompt = story_plan.edited(prompt, edits[str(index)])
        chain = bool(follow) and index > 0
        shots.append(
            Shot(
                source="words",
                seconds=each,
                prompt=prompt,
                model=str(follow) if chain else None,
                chain=chain,
            )
        )
    return shots


def _base_prompt(job: Job, spec: StorySpec, index: int) -> str:
    """A shot's prompt before the user's edits (so a second edit replaces the first)."""
    if job.params.get("base"):
        return story_plan.shot_prompts(str(job.params["base"]), len(spec.shots))[index]
    return spec.shots[index].prompt


def _takes_words(job: Job, shot: Shot) -> bool:
    """Whether words can change the shot: a model films it (the studio's moves take none)."""
    if shot.source == "clip":
        return False
    model = get_model(shot.model or str(job.params.get("shot_model") or STORY_MODEL))
    return model.provider != "local"


def _with_spec(job: Job, spec: StorySpec, **extra: object) -> Job:
    params = {**job.params, **extra, **story_params(spec)}
    params["duration"] = round(spec.seconds)
    return replace(job, params=params)


def _priced(story: Job) -> Job:
    """The story with its price: the sum of its shots'."""
    return replace(story, cost=sum(shot.cost for shot in shot_jobs(story)))
