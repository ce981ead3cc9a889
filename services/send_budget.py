"""Telegram's send limit, shared by everything the process sends, with room kept for people.

Telegram allows a bot about 30 messages a second in all and answers 429 beyond that. Every
send and edit, PTB's and our own uploads alike, takes a slot in one sliding one-second window.
Progress edits are optional: they take a slot only while the window is less than half full and
nobody is waiting, and are skipped otherwise (the next poll tries again). So a round over
thousands of jobs never delays the answer to a user's message, and never earns a 429.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from services.errors import StudioError

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
COUNTED = ("send", "edit", "copy", "forward")  # the methods Telegram's flood limit counts
OPTIONAL_SHARE = 0.5
RETRIES = 2


class Skipped(StudioError):
    """An optional send was not made because the budget is needed for something else."""


def _retry_seconds(exc: RetryAfter) -> float:
    value: Any = exc.retry_after
    seconds = getattr(value, "total_seconds", None)
    return float(seconds()) if callable(seconds) else float(value)


class SendBudget(BaseRateLimiter[JSONDict]):
    """A sliding-window limiter; pass ``rate_limit_args={"optional": True}`` for skippable sends."""

    def __init__(
        self,
        per_second: int = 30,
        *,
        window: float = 1.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # ``per_second`` sends in any ``window``; the window is a little over a second because
        # requests reach Telegram with jitter, and two sent 1.0 s apart may arrive closer.
        self.limit = max(1, per_second)
        self.window = window
        self.clock = clock
        self._sent: deque[float] = deque()
        self._turn = asyncio.Lock()  # first come, first served among those who must send
        self._paused_until = 0.0

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    def _purge(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()

    def has_room(self, share: float = OPTIONAL_SHARE) -> bool:
        """Whether an optional send would get a slot now (it still has to take one)."""
        now = self.clock()
        self._purge(now)
        busy = self._turn.locked() or now < self._paused_until
        return not busy and len(self._sent) < self.limit * share

    def try_take(self, share: float = OPTIONAL_SHARE) -> bool:
        """Take a slot now if the window is under ``share`` full and nobody waits."""
        if not self.has_room(share):
            return False
        self._sent.append(self.clock())
        return True

    async def take(self) -> None:
        """Wait for a slot in the window, in turn."""
        async with self._turn:
            while True:
                now = self.clock()
                self._purge(now)
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] + self.window - now)

    def pause(self, seconds: float) -> None:
        """Telegram said to wait: nobody sends until then."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

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
        optional = bool((rate_limit_args or {}).get("optional"))
        for attempt in range(RETRIES + 1):
            if optional:
                if not self.try_take():
                    raise Skipped(endpoint)
            else:
                await self.take()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self.pause(_retry_seconds(exc))
                if optional or attempt == RETRIES:
                    raise
                log.warning("Telegram asked to wait %.0f s", _retry_seconds(exc))
        raise AssertionError("unreachable")
