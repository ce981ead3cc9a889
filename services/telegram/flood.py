"""A per-user limit on messages, so one user cannot flood the bot (or its ffmpeg).

Kept in memory on purpose: a burst lasts seconds, and forgetting it on a restart is harmless.
"""

from __future__ import annotations

from collections import deque

from services.storage.repositories import Clock


class FloodGuard:
    """At most ``limit`` messages per user in any ``window`` seconds."""

    def __init__(self, clock: Clock, *, limit: int = 20, window: float = 10.0) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._seen: dict[int, deque[float]] = {}
        self._told: dict[int, float] = {}

    def too_many(self, user_id: int, sent_at: float | None = None) -> bool:
        """Count this message; True if the user is over the limit.

        ``sent_at`` is when Telegram received it (the message's date). A person's messages are
        handled one after another and their answers paced at Telegram's one a second per chat,
        so counting by when each is handled would spread a burst out until it never trips.
        """
        now = sent_at if sent_at is not None else self.clock()
        stamps = self._seen.setdefault(user_id, deque())
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        stamps.append(now)
        if len(self._seen) > 10_000:  # forget idle users so memory stays bounded
            for uid in [u for u, s in self._seen.items() if not s or s[-1] <= now - self.window]:
                self._seen.pop(uid, None)
                self._told.pop(uid, None)
        return len(stamps) > self.limit

    def first_refusal(self, user_id: int) -> bool:
        """True the first time in a window that the user is refused (so they are told once)."""
        now = self.clock()
        if now - self._told.get(user_id, -self.window) < self.window:
            return False
        self._told[user_id] = now
        return True
