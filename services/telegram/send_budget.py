"""Telegram's send limits, shared by everything the process sends, with room kept for people.

Telegram allows a bot about 30 messages a second in all and about one a second in each chat
(short bursts tolerated), and answers 429 beyond either. Every send and edit, PTB's and our own
streamed uploads alike, passes through one SendBudget, which keeps both:

- overall, at most ``per_second`` sends in any ``window`` (a sliding window);
- in each chat, a bucket of ``chat_burst`` sends refilled one per ``chat_interval``.

A send counts as happening *now* from the moment it starts until Telegram answers, and at its
answer after that. Telegram saw it somewhere in between, so the count is never lower than
Telegram's, however long an upload takes or however the requests are delayed on the way.

Optional sends (progress edits, "uploading video…") never queue in front of anybody: they go
only while the overall window is less than half full, their chat has a slot free and nobody is
waiting to send, overall or in that chat; otherwise they are skipped (the next poll tries again).
So a round over thousands of jobs never delays the answer to a person's message, and never earns
a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from services import metrics
from services.errors import StudioError
from services.storage.repositories import Bucket, SendTokenRepository

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
ChatKey = int | str
COUNTED = ("send", "edit", "copy", "forward")  # the methods Telegram's flood limits count
OPTIONAL_SHARE = 0.5  # of the overall window, for optional sends
RETRIES = 2


class Skipped(StudioError):
    """An optional send was not made because the budget is needed for something else."""


def _retry_seconds(exc: RetryAfter) -> float:
    value: Any = exc.retry_after
    seconds = getattr(value, "total_seconds", None)
    return float(seconds()) if callable(seconds) else float(value)


@dataclass(slots=True)
class _Usage:
    """The sends of one scope (all chats, or one chat): answered ones and those still out.

    Small on purpose (a poll round touches thousands of chats): the lock and the event are made
    only when somebody has to wait.
    """

    answered: list[float] = field(default_factory=list)  # answer times, oldest first
    out: int = 0  # started, not answered yet: they count as happening now
    paused_until: float = 0.0
    waiting: int = 0  # senders who must send, queued for this scope
    _turn: asyncio.Lock | None = None  # first come, first served among them
    _changed: asyncio.Event | None = None

    @property
    def turn(self) -> asyncio.Lock:
        if self._turn is None:
            self._turn = asyncio.Lock()
        return self._turn

    @property
    def busy(self) -> bool:
        """Whether somebody who must send is queued here."""
        return self.waiting > 0 or (self._turn is not None and self._turn.locked())

    async def changed(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if a send of this scope is answered meanwhile."""
        if self._changed is None:
            self._changed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(seconds, 0.001)):
                await self._changed.wait()

    def notify(self) -> None:
        """Wake everyone waiting for this scope to change."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    @property
    def idle(self) -> bool:
        return not self.answered and not self.out and not self.busy


class SendBudget(BaseRateLimiter[JSONDict]):
    """Telegram's overall and per-chat limits as one limiter.

    Pass ``rate_limit_args={"optional": True}`` for a send that may be skipped, and add
    ``"wait": seconds`` to let it wait that long for room (still giving way to anyone else).
    """

    def __init__(
        self,
        per_second: int = 30,
        *,
        window: float = 1.05,
        chat_burst: int = 4,
        chat_interval: float = 1.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The window and the chat interval are a little over a second: a margin on Telegram's
        # "30 a second" and "one a second per chat" that costs 5 % of the throughput.
        self.limit = max(1, per_second)
        self.window = window
        self.chat_burst = max(1, chat_burst)
        self.chat_interval = chat_interval
        self.clock = clock
        self._all = _Usage()
        self._chats: dict[ChatKey, _Usage] = {}
        self._next_sweep = 0.0
        # With several processes on one database, their sends also share its token buckets.
        self.shared: SendTokenRepository | None = None
        # Shared buckets found short, by key: the time until which they cannot hold a token.
        # Only time refills them (other processes only take), so until then an optional send
        # is skipped without asking the database: in a big round most of them would be.
        self._short: dict[str, float] = {}
        self._asking = False

    def share(self, tokens: SendTokenRepository) -> None:
        """Count this process's sends against the budget every process on ``tokens`` shares."""
        self.shared = tokens

    def _buckets(self, chat_id: ChatKey | None, optional: bool = False) -> list[Bucket]:
        # Telegram counts the bot's sends in any second: an even pace keeps every second within
        # the limit, with a margin for sends reaching it a little late, and so does a burst of
        # two where it fits (2 + 30 / 1.155 < 30; not with a limit of a few a second).
        # With a few sends a second one send reaching Telegram late is a large part of the
        # second, so at least one send is kept in hand (4 a second are paced at 3 a second,
        # which a send reaching it up to 0.4 s late still keeps within 4).
        rate = min(self.limit / 1.1, max(self.limit - 1.0, self.limit / 2)) / self.window
        burst = 2.0 if self.limit - rate >= 2 else 1.0
        # With two, an optional send leaves the last token to a send that must go: an edit that
        # took it just before would make a person's answer wait for the next one.
        need = burst if optional else 1.0
        buckets = [Bucket("all", rate, burst, need=need)]
        if optional:
            # Progress edits and chat actions, from every process together, get at most half
            # of the pace: the other half is always there for people's answers.
            buckets.append(Bucket("optional", rate / 2, 1.0))
        if chat_id is not None:
            buckets.append(
                Bucket(f"chat:{chat_id}", 1 / self.chat_interval, float(self.chat_burst))
            )
        return buckets

    async def _take_shared(self, chat_id: ChatKey | None, optional: bool) -> bool:
        """Tokens from the shared budget: waits for them, or, ``optional``, gives up at once."""
        if self.shared is None:
            return True
        if optional:
            # One optional send asks at a time; the others are skipped meanwhile.
            self._asking = True
            try:
                short = await self.shared.take(self._buckets(chat_id, optional))
            finally:
                self._asking = False
            now = self.clock()
            for key, wait in short.items():
                self._short[key] = now + wait
            return not short
        while True:
            short = await self.shared.take(self._buckets(chat_id))
            if not short:
                return True
            await asyncio.sleep(max(short.values()))  # only time refills a bucket

    def _shared_short(self, chat_id: ChatKey | None, now: float) -> bool:
        """Whether a shared bucket an optional send needs is known to be short now, or another
        optional send is asking for them."""
        if self._asking:
            return True
        if not self._short:
            return False
        keys = ("all", "optional", f"chat:{chat_id}" if chat_id is not None else "")
        return any(self._short.get(key, 0.0) > now for key in keys)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    # --- the two rules ----------------------------------------------------------------------

    def _overall_wait(self, now: float, share: float = 1.0) -> float | None:
        """Seconds until the overall window has room within ``share`` of it; None if now."""
        usage = self._all
        fresh = next((i for i, at in enumerate(usage.answered) if now - at < self.window), None)
        del usage.answered[: len(usage.answered) if fresh is None else fresh]
        if now < usage.paused_until:
            return usage.paused_until - now
        if len(usage.answered) + usage.out < self.limit * share:
            return None
        # Only time frees a slot (an answer moves a send from "out" into the window); with every
        # slot out, the waiter is woken by the first answer.
        return usage.answered[0] + self.window - now if usage.answered else self.window

    def _chat_tokens(self, usage: _Usage, now: float) -> float:
        """Whole sends the chat's bucket holds now, counting the ones still out as just made.

        The bucket is replayed over the remembered sends: with the newest last, this is the
        least of ``burst + (now - t_i) / interval - (sends since t_i)`` over every remembered
        send ``i`` (and ``burst - out``), which is exactly a token bucket that started full.
        """
        burst, interval = self.chat_burst, self.chat_interval
        answered = usage.answered
        # A send followed by a gap of a whole interval can never again be the tightest term,
        # and once the bucket is full again nothing before now matters.
        while len(answered) >= 2 and answered[1] - answered[0] >= interval:
            del answered[0]
        tokens = float(burst - usage.out)
        count = len(answered)
        for i, at in enumerate(answered):
            tokens = min(tokens, burst + (now - at) / interval - (count - i) - usage.out)
        if tokens >= burst - usage.out:
            answered.clear()
        return tokens

    def _chat_wait(self, usage: _Usage, now: float) -> float | None:
        """Seconds until the chat's bucket holds a whole send; None if it does now."""
        if now < usage.paused_until:
            return usage.paused_until - now
        missing = 1 - self._chat_tokens(usage, now)
        if missing <= 1e-9:
            return None
        # With too many sends still out, only an answer makes room; the waiter is woken by it.
        return missing * self.chat_interval

    def _chat(self, chat_id: ChatKey | None) -> _Usage | None:
        if chat_id is None:
            return None
        usage = self._chats.get(chat_id)
        if usage is None:
            usage = self._chats[chat_id] = _Usage()
        return usage

    def _sweep(self, now: float) -> None:
        """Forget chats whose bucket is full again (at most once a minute)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60.0
        self._short = {key: until for key, until in self._short.items() if until > now}
        for chat_id, usage in list(self._chats.items()):
            if now >= usage.paused_until:
                self._chat_tokens(usage, now)
                if usage.idle:
                    del self._chats[chat_id]

    # --- taking and giving back slots -------------------------------------------------------

    def has_room(self, chat_id: ChatKey | None = None, share: float = OPTIONAL_SHARE) -> bool:
        """Whether an optional send would get a slot now (it still has to take one)."""
        now = self.clock()
        if self._all.busy or self._overall_wait(now, share) is not None:
            return False
        if self._shared_short(chat_id, now):
            return False
        usage = self._chat(chat_id)
        if usage is None:
            return True
        return not usage.busy and self._chat_wait(usage, now) is None

    def try_take(self, chat_id: ChatKey | None = None, share: float = OPTIONAL_SHARE) -> bool:
        """Take a slot now for an optional send, if there is room nobody waits for; else False."""
        if not self.has_room(chat_id, share):
            return False
        self._start(chat_id)
        return True

    async def take_optional(
        self, chat_id: ChatKey | None, patience: float, share: float = OPTIONAL_SHARE
    ) -> bool:
        """An optional send that may wait ``patience`` seconds for room; False if it gave way
        to somebody who must send, or the room did not come in time."""
        deadline = self.clock() + patience
        usage = self._chat(chat_id)
        while True:
            now = self.clock()
            if usage is not None and usage.busy:
                return False
            overall = self._overall_wait(now, share)
            if overall is None and self._all.busy:
                overall = 0.05  # somebody who must send is queued overall: let them go first
            in_chat = None if usage is None else self._chat_wait(usage, now)
            if overall is None and in_chat is None:
                self._start(chat_id)
                return True
            pause = max(p for p in (overall, in_chat) if p is not None)
            if now + pause > deadline:
                return False
            await (usage if usage is not None and in_chat else self._all).changed(pause)

    async def take(self, chat_id: ChatKey | None = None) -> None:
        """Wait for a slot in the chat's bucket, then in the overall window, in turn."""
        began = time.monotonic()
        try:
            await self._take(chat_id)
            try:
                await self._take_shared(chat_id, optional=False)
            except BaseException:
                self._give_back(chat_id)
                raise
        finally:
            metrics.SEND_WAIT.observe(time.monotonic() - began)

    def _give_back(self, chat_id: ChatKey | None) -> None:
        """Undo a slot taken for a send that will not be made."""
        for usage in (self._all, self._chats.get(chat_id) if chat_id is not None else None):
            if usage is not None:
                usage.out = max(0, usage.out - 1)
                usage.notify()

    async def _take(self, chat_id: ChatKey | None) -> None:
        usage = self._chat(chat_id)
        if usage is not None:
            usage.waiting += 1
            try:
                async with usage.turn:
                    while (pause := self._chat_wait(usage, self.clock())) is not None:
                        await usage.changed(pause)
                    usage.out += 1
            finally:
                usage.waiting -= 1
        try:
            async with self._all.turn:
                while (pause := self._overall_wait(self.clock())) is not None:
                    await self._all.changed(pause)
                self._all.out += 1
        except BaseException:
            if usage is not None:
                usage.out -= 1
                usage.notify()
            raise

    def done(self, chat_id: ChatKey | None = None) -> None:
        """A send taken with ``take``/``try_take`` was answered (or failed): it counts from now."""
        now = self.clock()
        for usage in (self._all, self._chats.get(chat_id) if chat_id is not None else None):
            if usage is None:
                continue
            usage.out = max(0, usage.out - 1)
            usage.answered.append(now)
            usage.notify()
        self._sweep(now)

    @contextlib.asynccontextmanager
    async def slot(self, chat_id: ChatKey | None = None) -> AsyncIterator[None]:
        """Hold a slot for a send made outside PTB (a streamed upload) while it runs."""
        await self.take(chat_id)
        try:
            yield
        finally:
            self.done(chat_id)

    def _start(self, chat_id: ChatKey | None) -> None:
        self._all.out += 1
        usage = self._chat(chat_id)
        if usage is not None:
            usage.out += 1

    def pause(self, seconds: float, chat_id: ChatKey | None = None) -> None:
        """Telegram said to wait: nobody sends (to that chat, if given) until then."""
        usage = self._chat(chat_id) or self._all
        usage.paused_until = max(usage.paused_until, self.clock() + seconds)

    def told_to_wait(self, seconds: float, chat_id: ChatKey | None = None) -> None:
        """A 429: pause everyone, or only the chat when its own limit is the likely cause.

        Telegram does not say which limit was hit. Only when the chat has had other sends
        lately and the overall window is half empty is it the chat's; otherwise a pause for one
        chat would let every other chat run into the same overall limit.
        """
        now = self.clock()
        usage = self._chats.get(chat_id) if chat_id is not None else None
        # The refused send itself is counted (still out, or just answered): a chat with nothing
        # else in its bucket holds exactly one send less than a full bucket.
        chat_busy = usage is not None and self._chat_tokens(usage, now) < self.chat_burst - 1.5
        if not chat_busy or self._overall_wait(now, OPTIONAL_SHARE) is not None:
            self.pause(seconds)
        if usage is not None:
            self.pause(seconds, chat_id)

    # --- PTB's hook -------------------------------------------------------------------------

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: JSONDict | None,
    ) -> bool | JSONDict | list[JSONDict]:
        """Run one Bot API call inside the budget (PTB calls this for every request)."""
        if not endpoint.lower().startswith(COUNTED):
            return await callback(*args, **kwargs)
        limits = rate_limit_args or {}
        optional = bool(limits.get("optional"))
        patience = float(limits.get("wait") or 0.0)
        chat = data.get("chat_id")
        chat_id: ChatKey | None = chat if isinstance(chat, int | str) else None
        for attempt in range(RETRIES + 1):
            if not optional:
                await self.take(chat_id)
            elif not (
                await self.take_optional(chat_id, patience)
                if patience > 0
                else self.try_take(chat_id)
            ):
                raise Skipped(endpoint)
            elif not await self._take_shared(chat_id, optional=True):
                self._give_back(chat_id)
                raise Skipped(endpoint)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.told_to_wait(_retry_seconds(exc), chat_id)
                if optional or attempt == RETRIES:
                    raise
                log.warning("Telegram asked to wait %.0f s", _retry_seconds(exc))
            finally:
                self.done(chat_id)
        raise AssertionError("unreachable")
