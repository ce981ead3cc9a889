"""The Telegram edge: the only module of ``services`` that speaks python-telegram-bot.

Text messages go through PTB's bot (rate limiter included). Videos are uploaded with our own
streaming multipart request, because PTB reads an upload whole into memory and a result can be
50 MB; downloads stream to disk for the same reason. Neither URL is ever logged: both carry the
bot token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ExtBot

from services.downloads import stream_to_file
from services.errors import MessengerError, TransferError
from services.telegram.send_budget import SendBudget, Skipped

log = logging.getLogger(__name__)

Keyboard = list[list[tuple[str, str]]]  # rows of (label, callback_data)

# Telegram's answers to a button press or an edit that came too late or twice: the thing is
# already done or gone, so they are expected, not failures.
STALE_ANSWERS = (
    "query is too old",
    "query id is invalid",
    "message is not modified",
    "message to edit not found",
    "message can't be edited",
    "message to delete not found",
)
# A step (fetching the video, sending it) is announced only once it has lasted this long: a
# line replaced a moment later cannot be read, and each edit or chat action spends one of the
# few sends a chat has in a second, which the video and "Done" then wait for.
SLOW_STEP = 1.0
FIRST_ACTION_PATIENCE = 2.0  # seconds "uploading video…" may wait for a slot before an upload
ACTION_EVERY = 4.0  # Telegram shows a chat action for 5 s


def stale_answer(exc: BaseException | None) -> bool:
    """Whether Telegram refused a call only because the press or the message is stale."""
    if not isinstance(exc, BadRequest):
        return False
    message = exc.message.lower()
    return any(phrase in message for phrase in STALE_ANSWERS)


@dataclass(frozen=True)
class SentMedia:
    """What Telegram returned for an uploaded video or document."""

    message_id: int
    file_id: str
    file_unique_id: str | None
    kind: str


def markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | None:
    """PTB markup for a neutral keyboard."""
    if not keyboard:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in keyboard
        ]
    )


def _retry_after_seconds(value: Any) -> float:
    seconds = getattr(value, "total_seconds", None)
    return float(seconds()) if callable(seconds) else float(value)


def _map_ptb_error(exc: Exception) -> MessengerError:
    if isinstance(exc, RetryAfter):
        return MessengerError(
            "rate limited", kind="retry_after", retry_after=_retry_after_seconds(exc.retry_after)
        )
    if isinstance(exc, TimedOut):
        return MessengerError("timed out", kind="timeout")
    if isinstance(exc, BadRequest):
        text = exc.message.lower()
        kind = "not_found" if "not found" in text else "bad_request"
        return MessengerError(exc.message, kind=kind)
    if isinstance(exc, Forbidden):
        return MessengerError(exc.message, kind="forbidden")
    if isinstance(exc, NetworkError) and "too large" in exc.message.lower():
        return MessengerError(exc.message, kind="too_large")
    return MessengerError(type(exc).__name__, kind="network")


class Messenger:
    """Sends, edits, uploads and downloads on behalf of the services."""

    def __init__(
        self,
        bot: ExtBot[Any],
        http: httpx.AsyncClient,
        *,
        api_root: str,
        token: str,
        local_mode: bool,
        upload_timeout: float = 600.0,
        budget: SendBudget | None = None,
    ) -> None:
        self.bot = bot
        self.budget = budget  # the same one PTB's requests go through
        self.http = http
        self._method_root = f"{api_root}/bot{token}"
        self.local_mode = local_mode
        self.upload_timeout = upload_timeout

    async def send_text(
        self, chat_id: int, text: str, keyboard: Keyboard | None = None, reply_to: int | None = None
    ) -> int:
        """Send an HTML message; return its id."""
        try:
            message = await self.bot.send_message(
                chat_id,
                text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(keyboard),
                reply_to_message_id=reply_to,
                allow_sending_without_reply=True,
                disable_web_page_preview=True,
            )
        except Exception as exc:  # mapped to the domain tree for the callers
            raise _map_ptb_error(exc) from exc
        return message.message_id

    async def edit_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        keyboard: Keyboard | None = None,
        *,
        optional: bool = False,
    ) -> bool:
        """Edit a message; False if it is gone. An unchanged text is not an error.

        An ``optional`` edit (progress) is skipped, raising ``skipped``, when the send budget
        is needed for people's messages.
        """
        if optional and self.budget is not None and not self.budget.has_room(chat_id):
            # Decided before PTB builds the request: in a big round most progress edits wait.
            raise MessengerError("no budget for an optional edit", kind="skipped")
        try:
            await self.bot.edit_message_text(
                text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(keyboard),
                disable_web_page_preview=True,
                rate_limit_args={"optional": True} if optional else None,
            )
        except Skipped as exc:
            raise MessengerError("no budget for an optional edit", kind="skipped") from exc
        except BadRequest as exc:
            message = exc.message.lower()
            if "not modified" in message:
                return True
            if "not found" in message or "can't be edited" in message:
                return False
            raise _map_ptb_error(exc) from exc
        except Exception as exc:
            raise _map_ptb_error(exc) from exc
        return True

    @contextlib.asynccontextmanager
    async def chat_action(
        self,
        chat_id: int,
        action: str = ChatAction.UPLOAD_VIDEO,
        *,
        patience: float = FIRST_ACTION_PATIENCE,
        after: float = 0.0,
    ) -> AsyncIterator[None]:
        """Keep "uploading video…" showing while the block runs (Telegram clears it after 5 s).

        The first one goes before the block starts and may wait up to ``patience`` for a slot
        in the chat, which the block's upload would otherwise take; or, with ``after``, only
        once the block has run that long (a quick one never shows it). The repeats are skipped
        whenever the chat's budget is short. All give way to anyone who must send.
        """

        async def show(patience: float) -> None:
            with contextlib.suppress(Exception):  # cosmetic: skipped when the budget is short
                limits: dict[str, Any] = {"optional": True, "wait": patience}
                await self.bot.send_chat_action(chat_id, action, rate_limit_args=limits)

        async def keep_alive() -> None:
            if after > 0:
                await asyncio.sleep(after)
                await show(0.0)
            while True:
                await asyncio.sleep(ACTION_EVERY)
                await show(0.0)

        if after <= 0:
            await show(patience)
        task = asyncio.create_task(keep_alive())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def typing(self, chat_id: int) -> contextlib.AbstractAsyncContextManager[None]:
        """ "typing…" while a slow answer is being worked out; never waits for a slot."""
        return self.chat_action(chat_id, ChatAction.TYPING, patience=0.0)

    async def send_video(
        self,
        chat_id: int,
        path: Path,
        *,
        caption: str,
        width: int | None,
        height: int | None,
        duration: float | None,
        keyboard: Keyboard | None = None,
        as_document: bool = False,
        on_sent_whole: Callable[[], Awaitable[None]] | None = None,
    ) -> SentMedia:
        """Upload a video (or the file as a document), streaming it from disk.
        ``on_sent_whole`` runs once the last byte has been handed to the connection: from
        then on Telegram may post the video whatever becomes of this process."""
        method, field = ("sendDocument", "document") if as_document else ("sendVideo", "video")
        data: dict[str, str] = {
            "chat_id": str(chat_id),
            "caption": caption,
            "parse_mode": "HTML",
        }
        if not as_document:
            data["supports_streaming"] = "true"
            if width and height:
                data["width"], data["height"] = str(width), str(height)
            if duration:
                data["duration"] = str(max(1, round(duration)))
        kb = markup(keyboard)
        if kb is not None:
            data["reply_markup"] = json.dumps(kb.to_dict())
        if self.local_mode:
            data[field] = path.resolve().as_uri()
            result = await self._call(method, chat_id, data=data)
        else:
            with path.open("rb") as raw:
                handle = _WatchedFile(raw, on_sent_whole)
                files = {field: (f"video-{path.stem}.mp4", handle, "video/mp4")}
                try:
                    result = await self._call(
                        method, chat_id, data=data, files=files, sent_whole=handle.whole
                    )
                finally:
                    await handle.settled()
        media = result.get("video") or result.get("document") or result.get("animation") or {}
        if not media.get("file_id"):
            raise MessengerError("Telegram returned no file", kind="bad_request")
        return SentMedia(
            message_id=int(result["message_id"]),
            file_id=str(media["file_id"]),
            file_unique_id=media.get("file_unique_id"),
            kind="document" if "document" in result else "video",
        )

    async def send_invoice(
        self, chat_id: int, *, title: str, description: str, payload: str, stars: int
    ) -> int:
        """An invoice in Telegram Stars (``XTR``: no payment provider, one price, whole
        Stars); return its message id."""
        try:
            message = await self.bot.send_invoice(
                chat_id,
                title=title,
                description=description,
                payload=payload,
                currency="XTR",
                prices=[LabeledPrice(title, stars)],
                provider_token="",
            )
        except Exception as exc:
            raise _map_ptb_error(exc) from exc
        return message.message_id

    async def answer_pre_checkout(self, query_id: str, error: str | None = None) -> None:
        """Let a payment go ahead (``error`` None) or stop it with that reason."""
        try:
            await self.bot.answer_pre_checkout_query(query_id, error is None, error_message=error)
        except Exception as exc:
            raise _map_ptb_error(exc) from exc

    async def refund_stars(self, user_id: int, charge_id: str) -> bool:
        """Give a Stars payment back; False if Telegram says it was refunded already."""
        try:
            await self.bot.refund_star_payment(user_id, charge_id)
        except BadRequest as exc:
            if "CHARGE_ALREADY_REFUNDED" in exc.message.upper():
                return False
            raise _map_ptb_error(exc) from exc
        except Exception as exc:
            raise _map_ptb_error(exc) from exc
        return True

    async def send_video_by_id(
        self, chat_id: int, file_id: str, caption: str, keyboard: Keyboard | None = None
    ) -> int:
        """Re-send a delivered video by its file_id (no upload, no size limit)."""
        try:
            message = await self.bot.send_video(
                chat_id,
                file_id,
                caption=caption,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(keyboard),
            )
        except Exception as exc:
            raise _map_ptb_error(exc) from exc
        return message.message_id

    async def _call(
        self,
        method: str,
        chat_id: int,
        *,
        data: dict[str, str],
        files: dict[str, Any] | None = None,
        sent_whole: Callable[[], bool] = lambda: False,
    ) -> dict[str, Any]:
        """POST a method; a failure is ``unclear`` when Telegram may have acted on it anyway."""
        # The upload holds its slot in the chat's and the overall budget until it is answered.
        slot = self.budget.slot(chat_id) if self.budget is not None else contextlib.nullcontext()
        try:
            async with slot:
                response = await self.http.post(
                    f"{self._method_root}/{method}",
                    data=data,
                    files=files,
                    timeout=httpx.Timeout(self.upload_timeout, connect=10.0),
                )
        except httpx.ReadTimeout as exc:
            # The request went out whole; only the answer is missing. Telegram may have posted it.
            raise MessengerError("no answer in time", kind="unclear") from exc
        except httpx.TimeoutException as exc:  # connect, write or pool: surely not accepted
            raise MessengerError("upload timed out", kind="timeout") from exc
        except httpx.TransportError as exc:
            # str(exc) can carry the request URL, hence the token: report the type only.
            # httpx reads the file while it writes it, so a handle at its end means the whole
            # upload may have reached Telegram: resending could post the video twice.
            kind = "unclear" if sent_whole() else "network"
            raise MessengerError(f"connection failed ({type(exc).__name__})", kind=kind) from exc
        if response.status_code == 413:
            raise MessengerError("Request Entity Too Large", kind="too_large")
        try:
            payload = response.json()
        except ValueError as exc:
            raise MessengerError(f"HTTP {response.status_code}", kind="network") from exc
        if payload.get("ok"):
            result = payload["result"]
            assert isinstance(result, dict)
            return result
        description = str(payload.get("description", f"HTTP {response.status_code}"))
        retry_after = (payload.get("parameters") or {}).get("retry_after")
        if retry_after is not None:
            if self.budget is not None:
                self.budget.told_to_wait(float(retry_after), chat_id)
            raise MessengerError(description, kind="retry_after", retry_after=float(retry_after))
        if response.status_code >= 500:
            raise MessengerError(description, kind="network")
        if "too large" in description.lower() or "too big" in description.lower():
            raise MessengerError(description, kind="too_large")
        raise MessengerError(description, kind="bad_request")

    async def download(self, file_id: str, dest: Path, max_bytes: int) -> int:
        """Fetch a user's file through getFile into ``dest``; return its size."""
        try:
            tg_file = await self.bot.get_file(file_id)
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise MessengerError(exc.message, kind="too_large") from exc
            raise _map_ptb_error(exc) from exc
        except Exception as exc:
            raise _map_ptb_error(exc) from exc
        if tg_file.file_size and tg_file.file_size > max_bytes:
            raise MessengerError("file is too big", kind="too_large")
        file_path = tg_file.file_path or ""
        partial = dest.with_name(dest.name + ".part")
        try:
            if self.local_mode and Path(file_path).is_absolute():
                # A local Bot API server hands out a path on this machine instead of a URL.
                await asyncio.to_thread(shutil.copyfile, file_path, partial)
            else:
                await stream_to_file(self.http, file_path, partial, max_bytes)
            partial.replace(dest)
        except TransferError as exc:
            kind = "too_large" if exc.kind == "too_large" else "network"
            raise MessengerError(str(exc), kind=kind) from exc
        finally:
            partial.unlink(missing_ok=True)
        return dest.stat().st_size


class _WatchedFile:
    """A file being uploaded that tells when its last byte has been read out of it.

    httpx reads an upload as it writes it to the connection, so a file read to its end is an
    upload handed over whole: the kernel delivers what is buffered even if this process dies
    the next moment. The (async) news is started from httpx's synchronous read and awaited
    after the request."""

    def __init__(self, raw: Any, on_whole: Callable[[], Awaitable[None]] | None) -> None:
        self._raw = raw
        self._size = os.fstat(raw.fileno()).st_size
        self._on_whole = on_whole
        self._told: asyncio.Future[None] | None = None

    def whole(self) -> bool:
        return bool(self._raw.tell() >= self._size)

    def read(self, size: int = -1) -> bytes:
        chunk: bytes = self._raw.read(size)
        if self._told is None and self._on_whole is not None and self.whole():
            self._told = asyncio.ensure_future(self._on_whole())
        return chunk

    async def settled(self) -> None:
        if self._told is not None:
            await self._told

    def __getattr__(self, name: str) -> Any:
        # seek, tell, fileno, name: what httpx asks a file for its length and its name.
        return getattr(self._raw, name)
