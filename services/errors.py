"""The one exception tree of the domain.

Handlers and the poller map these to words for the user in one place
(``services.texts``); anything outside this tree is a bug and goes to the global
error handler.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base of every error the bot knows how to explain."""


class UserInputError(StudioError):
    """The user sent something we cannot work with; ``key`` names the text that explains it."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


class QuotaExceeded(StudioError):
    """The user has no credits left for this request."""

    def __init__(self, needed: int, available: int, resets_at: float) -> None:
        super().__init__(f"needs {needed}, has {available}")
        self.needed = needed
        self.available = available
        self.resets_at = resets_at


class JobConflict(StudioError):
    """A button or command refers to a job that is not in a state that allows it."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class MediaError(StudioError):
    """ffmpeg/ffprobe could not read or write a media file."""


class ProviderError(StudioError):
    """A video provider call failed."""


class ProviderTransient(ProviderError):
    """Worth retrying: 429, 5xx, timeouts, connection errors.

    ``reached`` says whether the request may have reached the provider: a submit that may have
    been accepted must never be sent again (it could be billed twice).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, reached: bool) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reached = reached


class ProviderPermanent(ProviderError):
    """Retrying will not help. ``reason`` selects the user's text; ``billed`` whether we paid."""

    def __init__(self, message: str, *, reason: str = "rejected", billed: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.billed = billed


class MessengerError(StudioError):
    """Telegram refused or failed a call; ``kind`` is ``too_large``, ``retry_after``,
    ``timeout``, ``network``, ``not_found``, ``bad_request``, ``skipped`` (an optional edit
    the send budget had no room for) or ``unclear`` (the request went
    out whole and no answer came back: Telegram may have acted on it, so it is not resent)."""

    def __init__(self, message: str, *, kind: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class TransferError(StudioError):
    """A streamed download failed; ``kind`` is ``too_large``, ``http``, ``timeout`` or
    ``network``; ``status`` is the HTTP status for ``http``."""

    def __init__(self, message: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
