"""Updates from different people run at the same time; one person's updates run in order.

python-telegram-bot hands every update to an update processor. Its default either runs them
one after another (so one person's photo download makes everybody else wait) or all at once
(so one person's "Generate" could overtake the photo it belongs to). This processor keeps a
chain per person: an update starts when that person's previous update has finished, and
people never wait for each other beyond the bound on updates running at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


def order_key(update: object) -> object:
    """Whose turn an update waits for: the person, else the chat, else nobody's."""
    if isinstance(update, Update):
        if update.pre_checkout_query is not None:
            # Telegram allows 10 seconds for the answer: never behind the person's downloads.
            return ("update", update.update_id)
        if update.effective_user is not None:
            return ("user", update.effective_user.id)
        if update.effective_chat is not None:
            return ("chat", update.effective_chat.id)
        return ("update", update.update_id)
    return ("other", id(update))


class PerPersonOrder(BaseUpdateProcessor):
    """Concurrent across people, sequential for each person.

    ``process_update`` (final in PTB) holds one of PTB's slots while ``do_process_update``
    waits, and a person's later updates wait there for their turn. So PTB's own count is set
    far above ``limit``, one busy person can never starve the others of slots, and the real
    bound is ``_running``, taken only while an update's handlers actually run. Waiting inside
    ``do_process_update`` (rather than returning at once) keeps PTB's ``stop()`` waiting for
    every update it has taken, before the bot's connections close.
    """

    _WAITING_ROOM = 4096

    def __init__(self, limit: int) -> None:
        super().__init__(max(limit, self._WAITING_ROOM))
        self.limit = limit
        self._running = asyncio.Semaphore(limit)
        # The last update of each person still running or waiting; dropped when it finishes.
        self._tails: dict[object, asyncio.Future[None]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run ``coroutine`` after the same person's previous update has finished."""
        key = order_key(update)
        previous = self._tails.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = mine
        try:
            if previous is not None:
                await previous
            async with self._running:
                await coroutine
        finally:
            mine.set_result(None)
            if self._tails.get(key) is mine:
                del self._tails[key]

    @property
    def waiting(self) -> int:
        """People with an update running or waiting."""
        return len(self._tails)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free: PTB's ``stop()`` has already waited for every update taken."""
