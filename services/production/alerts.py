"""Telling the operator (the admins) when the provider account needs attention."""

from __future__ import annotations

import contextlib
import logging

from services.errors import MessengerError
from services.storage.repositories import AlertRepository
from services.telegram.messenger import Messenger

log = logging.getLogger(__name__)

COOLDOWN = 6 * 3600  # one alert per problem per six hours, however many users hit it
REASONS = {
    "out_of_credit": (
        "the provider account is out of credit (HTTP 402, or fal's 403 'User is locked'). "
        "Top it up."
    ),
    "auth": "the provider rejected the API key (HTTP 401/403). Check the key.",
}


class Alerts:
    """Sends each kind of operator alert to the admins at most once per cooldown."""

    def __init__(self, repo: AlertRepository, messenger: Messenger, admins: frozenset[int]) -> None:
        self.repo = repo
        self.messenger = messenger
        self.admins = admins

    async def provider_problem(self, provider: str, reason: str) -> bool:
        """Alert about a provider problem; False if it was already sent recently."""
        if reason not in REASONS:
            return False
        log.error("provider %s: %s", provider, REASONS[reason])
        if not await self.repo.claim(f"{provider}:{reason}", COOLDOWN):
            return False
        body = (
            f"⚠️ <b>{provider}</b>: {REASONS[reason]} "
            "Users are told the service is temporarily unavailable and are refunded."
        )
        for admin in sorted(self.admins):
            with contextlib.suppress(MessengerError):
                await self.messenger.send_text(admin, body)
        return True

    async def storage_problem(self, detail: str) -> bool:
        """Alert that the work folder cannot take files (disk full, permissions)."""
        if not await self.repo.claim("storage", COOLDOWN):
            return False
        body = (
            f"⚠️ The bot cannot write to its data folder ({detail}). "
            "Free some space or fix its permissions; users are refunded meanwhile."
        )
        for admin in sorted(self.admins):
            with contextlib.suppress(MessengerError):
                await self.messenger.send_text(admin, body)
        return True
