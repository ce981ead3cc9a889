"""A fake Telegram Bot API server (aiohttp) for running the real bot against in tests.

Point python-telegram-bot at it with ``base_url=fake.api_url`` and
``base_file_url=fake.file_url``; simulate users with :meth:`FakeTelegram.user_message`
and :meth:`FakeTelegram.press_button`; inspect what the bot did via ``calls`` and
:meth:`FakeTelegram.messages`.

Off by default, and on where a test is about them: Telegram's latency on ``getFile`` and file
downloads (``file_latency``), its flood limits (``flood_limit_per_second`` over all chats and
``chat_limit_per_second`` with ``chat_burst`` in each chat, answered with 429 and
``retry_after`` in Telegram's own shape), and the expiry of unanswered button presses
(``callback_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import math
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import BodyPartReader, hdrs, web

from tests.fakes.server import LocalServer
from tests.fakes.telegram_stars import FakeStars
from tests.fakes.telegram_store import (
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    ApiError,
    Call,
    CallbackAnswer,
    FileInfo,
    JsonDict,
    MessageRevision,
    SentMessage,
    StoredFile,
    TelegramState,
    bad_request,
    command_entities,
    fake_thumbnail,
    guess_mime,
    image_size,
    render,
    validate_commands,
    validate_reply_markup,
)

__all__ = [
    "ApiError",
    "Call",
    "CallbackAnswer",
    "FakeTelegram",
    "FileInfo",
    "MessageRevision",
    "SentMessage",
]

Handler = Callable[[JsonDict, dict[str, FileInfo]], Awaitable[Any]]

_CHUNK = 256 * 1024
_JSON_FIELDS = frozenset(
    [
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "media",
        "prices",
    ]
)
_INT_FIELDS = frozenset(
    [
        "chat_id",
        "message_id",
        "reply_to_message_id",
        "message_thread_id",
        "offset",
        "limit",
        "width",
        "height",
        "duration",
        "cache_time",
        "user_id",
    ]
)
_BOOL_FIELDS = frozenset(
    [
        "disable_notification",
        "protect_content",
        "show_alert",
        "supports_streaming",
        "has_spoiler",
        "drop_pending_updates",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "disable_content_type_detection",
        "show_caption_above_media",
        "ok",
    ]
)
_CHAT_ACTIONS = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)
# The methods Telegram's flood limits count (chat actions included, to be safe).
_FLOOD_COUNTED = ("send", "edit", "copy", "forward")
_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_HTTPS_ONLY = "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


# Without allowed_updates Telegram sends every kind of update but chat_member, message_reaction
# and message_reaction_count (core.telegram.org/bots/api#getupdates).
_DEFAULT_UPDATES = frozenset(
    [
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    ]
)


class _TooLarge(Exception):
    pass


def _coerce(key: str, value: str) -> Any:
    """Turn a form/multipart string field into the value a JSON body would carry."""
    try:
        if key in _JSON_FIELDS:
            return json.loads(value)
        if key in _INT_FIELDS:
            return int(value)
        if key == "timeout":
            return float(value)
    except ValueError:
        return value
    if key in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


def _now() -> int:
    return int(time.time())


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FakeTelegram(LocalServer):
    """An in-process HTTP server that mimics the Telegram Bot API."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        bot_id: int = 123456,
        bot_username: str = "studio_test_bot",
        max_download_bytes: int = 20_000_000,
        max_upload_bytes: int = 50_000_000,
        flood_limit_per_second: float | None = None,
        chat_limit_per_second: float | None = None,
        chat_burst: int = 4,
        file_latency: float = 0.0,
        callback_timeout: float | None = None,
        max_stored_file_bytes: int = 64 * 1024 * 1024,
        strict_chats: bool = True,
    ) -> None:
        super().__init__()
        self.token = token
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.max_download_bytes = max_download_bytes
        self.max_upload_bytes = max_upload_bytes
        self.flood_limit_per_second = flood_limit_per_second
        # Per chat: a bucket of ``chat_burst`` sends refilled at ``chat_limit_per_second``.
        self.chat_limit_per_second = chat_limit_per_second
        self.chat_burst = chat_burst
        self.file_latency = file_latency  # seconds added to each getFile and each download
        self.callback_timeout = callback_timeout  # a press older than this cannot be answered
        self.max_stored_file_bytes = max_stored_file_bytes
        self.strict_chats = strict_chats
        self.bot_user: JsonDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Studio Test Bot",
            "username": bot_username,
        }
        self.state = TelegramState()
        self.calls: list[Call] = []
        self.downloads: list[str] = []
        self.flood_429_count = 0  # 429s for either flood limit
        self.flood_429_by_chat: Counter[int] = Counter()
        self.too_large_count = 0
        self.errors: list[Exception] = []
        self._faults: dict[str, deque[ApiError]] = {}
        self._drops: dict[str, deque[str]] = {}
        self._delays: dict[str, float] = {}
        self.stall_before: dict[str, float] = {}
        self._flood_window: deque[float] = deque()
        self._chat_tokens: dict[int, tuple[float, float]] = {}  # chat → (tokens, as of when)
        self._media_by_file_id: dict[str, tuple[str, Any]] = {}
        self._update_event = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        # setWebhook as Telegram records it, and where its updates really go: the test's
        # stand-in for the operator's TLS proxy in front of the bot (Telegram calls https only).
        self.webhook: JsonDict | None = None
        # The update kinds the bot asked for (getUpdates or setWebhook; kept until changed).
        self.allowed_updates: list[str] | None = None
        self.webhook_target: str | None = None
        self.webhook_posts: list[tuple[int, int]] = []  # (update_id, HTTP status)
        self._webhook_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self.stars = FakeStars(self)  # invoices, pre-checkout queries, payments, refunds
        self._handlers: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "deleteWebhook": self._delete_webhook,
                "setWebhook": self._set_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageCaption": self._edit_message_caption,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "sendChatAction": self._send_chat_action,
                "sendVideo": self._send_video,
                "sendDocument": self._send_document,
                "sendPhoto": self._send_photo,
                "sendAnimation": self._send_animation,
                "getFile": self._get_file,
                "close": self._ok,
                "logOut": self._ok,
                **self.stars.handlers(),
            }.items()
        }

    # ------------------------------------------------------------------ lifecycle

    def application(self) -> web.Application:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        return app

    async def start(self) -> None:
        """Start listening on a random 127.0.0.1 port."""
        await super().start()
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._closing = False

    async def stop(self) -> None:
        """Release pending long polls and shut the server down."""
        self._closing = True
        self._wake()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
        await super().stop()

    @property
    def api_url(self) -> str:
        """Value for PTB's ``base_url``."""
        return f"{self.root}/bot"

    @property
    def file_url(self) -> str:
        """Value for PTB's ``base_file_url``."""
        return f"{self.root}/file/bot"

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        *,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with the given error."""
        queue = self._faults.setdefault(method.lower(), deque())
        queue.extend(
            ApiError(error_code, description, retry_after=retry_after) for _ in range(times)
        )

    def delay(self, method: str, seconds: float) -> None:
        """Delay every response of ``method`` (after processing it); 0 removes the delay."""
        if seconds > 0:
            self._delays[method.lower()] = seconds
        else:
            self._delays.pop(method.lower(), None)

    def drop_connection_next(
        self, method: str, *, after_processing: bool = False, times: int = 1
    ) -> None:
        """Close the connection without answering the next ``times`` calls of ``method``."""
        when = "after" if after_processing else "before"
        self._drops.setdefault(method.lower(), deque()).extend([when] * times)

    def expire_callbacks(self) -> None:
        """Make every press issued so far too old to answer (a late or redelivered press)."""
        for record in self.state.callbacks.values():
            record.expired = True

    def block_bot(self, user_id: int) -> None:
        """Make sends to ``user_id`` fail with 403 "bot was blocked by the user"."""
        self.state.blocked.add(user_id)

    # ------------------------------------------------------------------ simulated users

    def add_chat(
        self, chat_id: int, *, first_name: str = "Ann", title: str = "Test Group"
    ) -> JsonDict:
        """Make a chat known without sending an update; returns the Chat object."""
        chat = self._make_chat(chat_id, {"first_name": first_name}, title)
        self.state.chats[chat_id] = chat
        return chat

    def bot_message(self, chat_id: int, text: str) -> int:
        """A text message the bot sent earlier (state for a database seeded elsewhere)."""
        chat = self.state.chats.get(chat_id) or self.add_chat(chat_id)
        msg = self._new_message(chat, "text", {}, text=text, text_plain=text)
        return msg.message_id

    def user_message(
        self,
        user_id: int,
        *,
        text: str | None = None,
        caption: str | None = None,
        photo: bytes | None = None,
        photo_size: tuple[int, int] | None = None,
        document: bytes | None = None,
        document_name: str | None = None,
        mime_type: str | None = None,
        video: bytes | None = None,
        video_meta: tuple[int, int, int] = (1280, 720, 5),
        reply_to_message_id: int | None = None,
        chat_id: int | None = None,
        first_name: str = "Ann",
        language_code: str = "en",
        message_id: int | None = None,
        username: str | None = None,
        media_group_id: str | None = None,
    ) -> JsonDict:
        """Enqueue a message from a user and return the Message dict."""
        if text is None and photo is None and document is None and video is None:
            raise ValueError("user_message needs text, photo, document or video")
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        user["language_code"] = language_code
        self.state.users[user_id] = user
        chat_id = user_id if chat_id is None else chat_id
        chat = self._make_chat(chat_id, user, self.state.chats.get(chat_id, {}).get("title"))
        self.state.chats[chat_id] = chat
        msg: JsonDict = {
            "message_id": self.state.next_message_id(chat_id, message_id),
            "from": user,
            "chat": chat,
            "date": _now(),
        }
        if reply_to_message_id is not None:
            target = self.state.find_any(chat_id, reply_to_message_id)
            if target is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat_id} to reply to")
            msg["reply_to_message"] = target
        if text is not None:
            msg["text"] = text
            if entities := command_entities(text):
                msg["entities"] = entities
        if photo is not None:
            size = photo_size or image_size(photo) or (1280, 960)
            msg["photo"] = self._photo_sizes(FileInfo.of(photo, None, "image/jpeg"), size)
        if video is not None:
            mime = mime_type or "video/mp4"
            stored = self.state.register_file(FileInfo.of(video, document_name, mime), "video")
            width, height, duration = video_meta
            msg["video"] = self._file_object(stored, width=width, height=height, duration=duration)
            msg["video"]["mime_type"] = mime
            self._media_by_file_id[stored.file_id] = ("video", msg["video"])
        if document is not None:
            mime = mime_type or guess_mime(document_name, "application/octet-stream")
            stored = self.state.register_file(
                FileInfo.of(document, document_name, mime), "document"
            )
            msg["document"] = self._file_object(stored, file_name=document_name, mime_type=mime)
            self._media_by_file_id[stored.file_id] = ("document", msg["document"])
        if caption is not None:
            msg["caption"] = caption
            if entities := command_entities(caption):
                msg["caption_entities"] = entities
        if media_group_id is not None:
            msg["media_group_id"] = media_group_id
        self.push_update({"message": msg})
        return msg

    def user_album(
        self,
        user_id: int,
        items: list[tuple[str, bytes]],
        *,
        caption: str | None = None,
        group: str | None = None,
        video_meta: tuple[int, int, int] = (320, 240, 2),
    ) -> list[JsonDict]:
        """Enqueue an album as Telegram sends one: a message per item ("photo" or "video"),
        one ``media_group_id``, the caption on the first; returns the Message dicts."""
        if not 2 <= len(items) <= 10:
            raise ValueError("an album holds 2 to 10 items")
        group = group or f"13{len(self.state.history) + 1:06d}{user_id}"
        sent = []
        for n, (kind, data) in enumerate(items):
            extra: dict[str, Any] = {"photo": data} if kind == "photo" else {"video": data}
            if kind != "photo":
                extra["video_meta"] = video_meta
            sent.append(
                self.user_message(
                    user_id,
                    caption=caption if n == 0 else None,
                    media_group_id=group,
                    **extra,
                )
            )
        return sent

    def press_button(
        self,
        user_id: int,
        message_id: int,
        data: str,
        *,
        chat_id: int | None = None,
        strict: bool = True,
    ) -> str:
        """Enqueue a callback_query for a button of a bot message; returns the query id."""
        chat_id = user_id if chat_id is None else chat_id
        msg = self.state.find_sent(chat_id, message_id)
        live = msg is not None and not msg.deleted
        if strict and not live:
            raise ValueError(f"no live bot message {message_id} in chat {chat_id}")
        if strict and msg is not None and data not in [b.get("callback_data") for b in msg.buttons]:
            raise ValueError(f"message {message_id} has no button {data!r}; buttons: {msg.buttons}")
        user = self.state.users.get(user_id) or {
            "id": user_id,
            "is_bot": False,
            "first_name": "Ann",
            "language_code": "en",
        }
        query_id = self.state.new_callback_id()
        self.state.callbacks[query_id] = CallbackAnswer(
            query_id, user_id, chat_id, message_id, data
        )
        chat = self.state.chats.get(chat_id) or self._make_chat(chat_id, user, "Test Group")
        message = (
            msg.to_api()
            if msg is not None and live
            else {"chat": chat, "message_id": message_id, "date": 0}
        )
        self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": message,
                    "chat_instance": str(-(5_000_000_000_000_000_000 + abs(chat_id))),
                    "data": data,
                }
            }
        )
        return query_id

    def push_update(self, update: JsonDict) -> int:
        """Enqueue a raw update (without update_id); returns the assigned update_id."""
        update_id = self.state.enqueue({k: v for k, v in update.items() if k != "update_id"})
        self._wake()
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Deliver an identical copy of an already issued update once more (same update_id)."""
        if update_id not in self.state.history:
            raise ValueError(f"unknown update_id {update_id}")
        self.state.requeue(update_id)
        self._wake()

    def add_file(self, content: bytes, *, file_unique_id: str | None = None) -> tuple[str, str]:
        """Register downloadable bytes; returns (file_id, file_unique_id)."""
        stored = self.state.register_file(
            FileInfo.of(content), "document", file_unique_id=file_unique_id
        )
        return stored.file_id, stored.file_unique_id

    # ------------------------------------------------------------------ inspection

    @property
    def commands(self) -> list[JsonDict]:
        """The list passed to the most recent setMyCommands call."""
        return self.state.last_commands

    @property
    def callback_answers(self) -> dict[str, CallbackAnswer]:
        """Answered callback queries by id (unanswered ones are in ``state.callbacks``)."""
        return {qid: rec for qid, rec in self.state.callbacks.items() if rec.answered}

    @property
    def pending_updates(self) -> int:
        """Number of updates not yet confirmed by the bot."""
        return len(self.state.pending)

    def calls_to(self, method: str) -> list[Call]:
        """All recorded calls of ``method`` (case-insensitive)."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def messages(self, chat_id: int) -> list[SentMessage]:
        """The bot's messages in a chat, oldest first, deleted ones flagged."""
        return list(self.state.sent.get(chat_id, []))

    def message(self, chat_id: int, message_id: int) -> SentMessage | None:
        """One bot message by id, or None."""
        return self.state.find_sent(chat_id, message_id)

    def last_message(self, chat_id: int) -> SentMessage | None:
        """The newest non-deleted bot message in a chat, or None."""
        live = [m for m in self.state.sent.get(chat_id, []) if not m.deleted]
        return live[-1] if live else None

    def videos(self, chat_id: int) -> list[SentMessage]:
        """The bot's video messages in a chat."""
        return [m for m in self.messages(chat_id) if m.kind == "video"]

    def file_content(self, file_id: str) -> bytes:
        """The stored bytes of a file (uploaded by the bot or registered by a test)."""
        stored = self.state.files[file_id]
        return stored.info.content if stored.info else b""

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll ``predicate`` every 20 ms until it returns something truthy and return that."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout}s\n{self.dump()}")
            await asyncio.sleep(0.02)

    def dump(self, last: int = 25) -> str:
        """A readable summary of recent calls and messages, for failure output."""
        lines = [f"last {min(last, len(self.calls))} of {len(self.calls)} calls:"]
        start = self.calls[-last:][0].at if self.calls else 0.0
        for call in self.calls[-last:]:
            params = ", ".join(f"{k}={_short(v, 60)}" for k, v in call.params.items())
            files = "".join(f", {k}=<{v.size} bytes>" for k, v in call.files.items())
            lines.append(f"  +{call.at - start:6.3f}s {call.method}({params}{files})")
        for chat_id, msgs in self.state.sent.items():
            lines.append(f"chat {chat_id}:")
            for m in msgs[-10:]:
                body = m.text if m.kind == "text" else f"[{m.kind}] {m.caption or ''}"
                flag = " (deleted)" if m.deleted else ""
                lines.append(f"  #{m.message_id}{flag}: {_short(body, 100)}")
        lines.append(f"pending updates: {len(self.state.pending)}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP plumbing

    def _wake(self) -> None:
        if self._loop is not None and threading.get_ident() != self._thread_id:
            self._loop.call_soon_threadsafe(self._wake)
            return
        event, self._update_event = self._update_event, asyncio.Event()
        event.set()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        drop: str | None = None
        try:
            if request.match_info["token"] != self.token:
                await self._drain(request)
                raise ApiError(401, "Unauthorized")
            if name.lower() not in self._handlers:
                await self._drain(request)
                raise ApiError(404, "Not Found")
            method, handler = self._handlers[name.lower()]
            # A stall before the body is read is an upload in progress that never completes
            # (the sender's socket buffer fills): what a crash mid-upload looks like.
            await self._pause(self.stall_before.get(name.lower(), 0.0))
            params, files = await self._read_params(request)
            self.calls.append(Call(method, params, files))
            drops = self._drops.get(name.lower())
            drop = drops.popleft() if drops else None
            if drop == "before":
                return self._drop(request)
            faults = self._faults.get(name.lower())
            if faults:
                raise faults.popleft()
            self._check_flood(method, params)
            body: JsonDict = {"ok": True, "result": await handler(params, files)}
        except ApiError as exc:
            body = exc.payload()
        except Exception as exc:
            self.errors.append(exc)
            body = ApiError(500, f"Internal Server Error: {exc!r}").payload()
        if drop == "after":
            return self._drop(request)
        latency = self.file_latency if name.lower() == "getfile" else 0.0
        await self._pause(self._delays.get(name.lower(), 0.0) + latency)
        return web.json_response(body, status=int(body.get("error_code", 200)))

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        path = request.match_info["file_path"]
        stored = self.state.paths.get(path)
        if stored is None or stored.info is None:
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        if stored.info.truncated:
            error = ApiError(500, "Internal Server Error: content was not kept (too large)")
            return web.json_response(error.payload(), status=500)
        self.downloads.append(path)
        drops = self._drops.get("download")
        if drops and drops.popleft():
            return self._drop(request)
        await self._pause(self._delays.get("download", 0.0) + self.file_latency)
        response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "application/octet-stream"})
        response.content_length = stored.info.size
        await response.prepare(request)
        view = memoryview(stored.info.content)
        for start in range(0, len(view), _CHUNK):
            await response.write(view[start : start + _CHUNK])
        await response.write_eof()
        return response

    async def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._closing and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, deadline - time.monotonic()))

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        request.protocol.force_close()
        if request.transport is not None:
            request.transport.close()
        return web.Response()

    @staticmethod
    async def _drain(request: web.Request) -> None:
        with contextlib.suppress(Exception):
            while await request.content.readany():
                pass

    async def _read_params(self, request: web.Request) -> tuple[JsonDict, dict[str, FileInfo]]:
        params: JsonDict = dict(request.query)
        files: dict[str, FileInfo] = {}
        try:
            length = request.content_length
            if length is not None and length > self.max_upload_bytes:
                raise _TooLarge
            if request.content_type.startswith("multipart/"):
                await self._read_multipart(request, params, files)
            elif request.can_read_body:
                params.update(await self._read_simple_body(request))
        except _TooLarge:
            self.too_large_count += 1
            await self._drain(request)
            raise ApiError(413, "Request Entity Too Large") from None
        return {k: _coerce(k, v) if isinstance(v, str) else v for k, v in params.items()}, files

    async def _read_simple_body(self, request: web.Request) -> JsonDict:
        raw = bytearray()
        while chunk := await request.content.readany():
            raw += chunk
            if len(raw) > self.max_upload_bytes:
                raise _TooLarge
        if not raw.strip():
            return {}
        if request.content_type == "application/json":
            try:
                data = json.loads(raw)
            except ValueError:
                raise bad_request("can't parse JSON object") from None
            if not isinstance(data, dict):
                raise bad_request("parameters must be a JSON object")
            return data
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))

    async def _read_multipart(
        self, request: web.Request, params: JsonDict, files: dict[str, FileInfo]
    ) -> None:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is None:
                params[part.name] = await part.text()
            else:
                files[part.name] = await self._read_file_part(request, part)
            if request.content.total_bytes > self.max_upload_bytes:
                raise _TooLarge

    async def _read_file_part(self, request: web.Request, part: BodyPartReader) -> FileInfo:
        digest = hashlib.sha256()
        size = 0
        kept = bytearray()
        while chunk := await part.read_chunk(_CHUNK):
            size += len(chunk)
            digest.update(chunk)
            room = self.max_stored_file_bytes - len(kept)
            if room > 0:
                kept += chunk[:room]
            if request.content.total_bytes > self.max_upload_bytes:
                raise _TooLarge
        mime = part.headers.get(hdrs.CONTENT_TYPE)
        return FileInfo(size, digest.hexdigest(), part.filename, mime, bytes(kept))

    def _check_flood(self, method: str, params: JsonDict) -> None:
        """Answer 429 to a send beyond the overall or the chat's limit; a refused send is free."""
        if not method.startswith(_FLOOD_COUNTED):
            return
        now = time.monotonic()
        chat = params.get("chat_id")
        chat_id = chat if isinstance(chat, int) else None
        waits = [self._overall_wait(now), self._chat_wait(chat_id, now)]
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            self.flood_429_count += 1
            if chat_id is not None:
                self.flood_429_by_chat[chat_id] += 1
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        if self.flood_limit_per_second is not None:
            self._flood_window.append(now)
        if chat_id is not None and self.chat_limit_per_second is not None:
            tokens, _ = self._chat_tokens[chat_id]
            self._chat_tokens[chat_id] = (tokens - 1.0, now)

    def _overall_wait(self, now: float) -> float | None:
        """Seconds until a send fits the overall one-second window; None if it fits now."""
        limit = self.flood_limit_per_second
        if limit is None:
            return None
        window = self._flood_window
        while window and now - window[0] >= 1.0:
            window.popleft()
        return 1.0 - (now - window[0]) if len(window) >= limit else None

    def _chat_wait(self, chat_id: int | None, now: float) -> float | None:
        """Seconds until the chat's bucket holds a whole send; None if it does now."""
        rate = self.chat_limit_per_second
        if rate is None or chat_id is None:
            return None
        tokens, since = self._chat_tokens.get(chat_id, (float(self.chat_burst), now))
        tokens = min(float(self.chat_burst), tokens + (now - since) * rate)
        self._chat_tokens[chat_id] = (tokens, now)
        return (1.0 - tokens) / rate if tokens < 1.0 - 1e-9 else None

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _make_chat(chat_id: int, user: JsonDict, title: str | None) -> JsonDict:
        if chat_id > 0:
            chat = {"id": chat_id, "first_name": user.get("first_name", "Ann"), "type": "private"}
            if user.get("username"):
                chat["username"] = user["username"]
            return chat
        kind = "supergroup" if chat_id < -1_000_000_000_000 else "group"
        return {"id": chat_id, "title": title or "Test Group", "type": kind}

    def _chat(self, params: JsonDict) -> JsonDict:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if not isinstance(chat_id, int):
            raise bad_request("chat not found")
        if chat_id in self.state.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        chat = self.state.chats.get(chat_id)
        if chat is None:
            if self.strict_chats:
                raise bad_request("chat not found")
            chat = self.add_chat(chat_id)
        return chat

    def _reply_target(self, chat_id: int, params: JsonDict) -> JsonDict | None:
        reply = params.get("reply_parameters")
        reply = reply if isinstance(reply, dict) else {}
        message_id = reply.get("message_id", params.get("reply_to_message_id"))
        if message_id is None:
            return None
        target = self.state.find_any(chat_id, int(message_id))
        allow = reply.get("allow_sending_without_reply") or params.get(
            "allow_sending_without_reply"
        )
        if target is None and not allow:
            raise bad_request("message to be replied not found")
        return target

    @staticmethod
    def _render_text(params: JsonDict) -> tuple[str, str, list[JsonDict]]:
        text = params.get("text")
        if text is None or text == "":
            raise bad_request("message text is empty")
        text = str(text)
        plain, entities = render(text, params.get("parse_mode"))
        if isinstance(params.get("entities"), list) and not params.get("parse_mode"):
            entities = params["entities"]
        if not plain.strip():
            raise bad_request("message text is empty")
        if len(plain) > 4096:
            raise bad_request("message is too long")
        return text, plain, entities

    @staticmethod
    def _render_caption(params: JsonDict) -> tuple[str | None, str | None, list[JsonDict]]:
        caption = params.get("caption")
        if caption is None or caption == "":
            return None, None, []
        caption = str(caption)
        plain, entities = render(caption, params.get("parse_mode"))
        if isinstance(params.get("caption_entities"), list) and not params.get("parse_mode"):
            entities = params["caption_entities"]
        if len(plain) > 1024:
            raise bad_request("message caption is too long")
        return caption, plain, entities

    def _new_message(
        self, chat: JsonDict, kind: str, params: JsonDict, **fields: Any
    ) -> SentMessage:
        markup = params.get("reply_markup")
        validate_reply_markup(markup)
        reply_to = self._reply_target(int(chat["id"]), params)
        msg = SentMessage(
            chat=chat,
            message_id=self.state.next_message_id(int(chat["id"])),
            kind=kind,
            date=_now(),
            sender=self.bot_user,
            parse_mode=params.get("parse_mode"),
            reply_markup=markup if isinstance(markup, dict) else None,
            params=dict(params),
            reply_to=reply_to,
            **fields,
        )
        self.state.sent.setdefault(msg.chat_id, []).append(msg)
        return msg

    @staticmethod
    def _file_object(stored: StoredFile, **extra: Any) -> JsonDict:
        obj: JsonDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        obj.update({k: v for k, v in extra.items() if v is not None})
        if stored.size is not None:
            obj["file_size"] = stored.size
        return obj

    def _photo_sizes(self, info: FileInfo, size: tuple[int, int]) -> list[JsonDict]:
        width, height = size
        sizes: list[JsonDict] = []
        for limit, nbytes in ((90, 1_500), (320, 18_000)):
            if max(width, height) > limit:
                scale = limit / max(width, height)
                thumb = FileInfo.of(fake_thumbnail(f"{info.sha256}{limit}".encode(), nbytes))
                stored = self.state.register_file(thumb, "photo")
                w, h = max(1, round(width * scale)), max(1, round(height * scale))
                sizes.append(self._file_object(stored, width=w, height=h))
        largest = self.state.register_file(info, "photo")
        sizes.append(self._file_object(largest, width=width, height=height))
        self._media_by_file_id[largest.file_id] = ("photo", sizes)
        return sizes

    def _resolve_input(
        self, kind: str, params: JsonDict, files: dict[str, FileInfo]
    ) -> tuple[StoredFile | FileInfo, str]:
        value = params.get(kind)
        upload: FileInfo | None = None
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
        elif value is None:
            upload = files.get(kind)
        if upload is not None:
            if upload.size == 0:
                raise bad_request("file must be non-empty")
            return upload, "upload"
        if not value:
            raise bad_request(f"there is no {kind} in the request")
        value = str(value)
        if value.startswith(("http://", "https://")):
            return self.state.register_file(None, kind, url=value), "url"
        stored = self.state.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored, "file_id"

    async def _send_media(
        self, kind: str, params: JsonDict, files: dict[str, FileInfo]
    ) -> JsonDict:
        chat = self._chat(params)
        caption, caption_plain, caption_entities = self._render_caption(params)
        validate_reply_markup(params.get("reply_markup"))
        self._reply_target(int(chat["id"]), params)
        source, how = self._resolve_input(kind, params, files)
        media: Any
        url = source.url if isinstance(source, StoredFile) else None
        known = (
            self._media_by_file_id.get(source.file_id) if isinstance(source, StoredFile) else None
        )
        if isinstance(source, StoredFile) and known is not None and known[0] == kind:
            stored, media = source, known[1]
        elif kind == "photo":
            info = source if isinstance(source, FileInfo) else source.info
            info = info or FileInfo.of(b"")
            media = self._photo_sizes(info, image_size(info.content) or (1280, 960))
            stored = self.state.files[media[-1]["file_id"]]
        else:
            stored = (
                source if isinstance(source, StoredFile) else self.state.register_file(source, kind)
            )
            media = self._media_object(kind, stored, params)
            self._media_by_file_id[stored.file_id] = (kind, media)
        msg = self._new_message(
            chat,
            kind,
            params,
            caption=caption,
            caption_plain=caption_plain,
            caption_entities=caption_entities,
            file=stored.info,
            media=media,
            source=how,
            url=url,
            width=params.get("width"),
            height=params.get("height"),
            duration=params.get("duration"),
            supports_streaming=params.get("supports_streaming"),
        )
        return msg.to_api()

    @staticmethod
    def _media_object(kind: str, stored: StoredFile, params: JsonDict) -> JsonDict:
        info = stored.info
        name = info.filename if info else None
        if kind == "document":
            mime = (info.mime_type if info else None) or guess_mime(
                name, "application/octet-stream"
            )
            return FakeTelegram._file_object(stored, file_name=name, mime_type=mime)
        return FakeTelegram._file_object(
            stored,
            width=int(params.get("width") or 0),
            height=int(params.get("height") or 0),
            duration=int(params.get("duration") or 0),
            file_name=name,
            mime_type="video/mp4",
        )

    def _editable(self, params: JsonDict) -> SentMessage:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat_id = int(self._chat(params)["id"])
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise bad_request("message identifier is not specified")
        msg = self.state.find_sent(chat_id, message_id)
        if msg is None or msg.deleted:
            if self.state.find_any(chat_id, message_id) is not None:
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return msg

    @staticmethod
    def _inline(markup: Any) -> JsonDict | None:
        return markup if isinstance(markup, dict) and "inline_keyboard" in markup else None

    @staticmethod
    def _apply_edit(msg: SentMessage, params: JsonDict, **changes: Any) -> JsonDict:
        msg.history.append(
            MessageRevision(msg.text, msg.caption, msg.parse_mode, msg.reply_markup, _now())
        )
        for key, value in changes.items():
            setattr(msg, key, value)
        msg.edit_date = _now()
        msg.params = {**msg.params, **params}
        return msg.to_api()

    # ------------------------------------------------------------------ API methods

    async def _ok(self, params: JsonDict, files: dict[str, FileInfo]) -> bool:
        return True

    async def _get_me(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: JsonDict, files: dict[str, FileInfo]) -> list[JsonDict]:
        if self.webhook is not None:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        offset = params.get("offset")
        if isinstance(params.get("allowed_updates"), list):
            self.allowed_updates = params["allowed_updates"]  # kept for the calls after
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()
        self.state.confirm(offset if isinstance(offset, int) else None)
        deadline = time.monotonic() + timeout
        while not self.state.pending and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_event.wait(), remaining)
            if generation != self._poll_generation:
                raise ApiError(409, _CONFLICT)
        return self._take(limit)

    def _take(self, limit: int) -> list[JsonDict]:
        """The next updates of the kinds the bot asked for; Telegram drops the others."""
        wanted = set(self.allowed_updates or _DEFAULT_UPDATES)
        self.state.pending = [
            (u, f) for u, f in self.state.pending if wanted & (set(u) - {"update_id"})
        ]
        return self.state.take(limit)

    async def _delete_webhook(self, params: JsonDict, files: dict[str, FileInfo]) -> bool:
        if params.get("drop_pending_updates"):
            self.state.pending.clear()
        self.webhook = None
        return True

    async def _set_webhook(self, params: JsonDict, files: dict[str, FileInfo]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params, files)
        if not url.startswith("https://"):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.match(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        connections = int(params.get("max_connections") or 40)
        if not 1 <= connections <= 100:
            raise ApiError(400, "Bad Request: bad webhook: invalid max_connections")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        if isinstance(allowed, list):
            self.allowed_updates = allowed
        if params.get("drop_pending_updates"):
            self.state.pending.clear()
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": connections,
            "allowed_updates": allowed,
        }
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._deliver_webhook())
        return True

    async def _get_webhook_info(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        pending = len(self.state.pending)
        url = self.webhook["url"] if self.webhook else ""
        return {"url": url, "has_custom_certificate": False, "pending_update_count": pending}

    async def _deliver_webhook(self) -> None:
        """POST pending updates to the webhook, as Telegram does: one at a time per chat, up to
        ``max_connections`` at once, again later until the bot answers 2xx."""
        async with aiohttp.ClientSession() as session:
            while not self._closing and self.webhook is not None:
                if self.webhook_target is None or not self.state.pending:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._update_event.wait(), 0.2)
                    continue
                batch = self._take(int(self.webhook["max_connections"]))
                results = await asyncio.gather(
                    *(self._post_update(session, update) for update in batch)
                )
                delivered = {u["update_id"] for u, ok in zip(batch, results, strict=True) if ok}
                for update in batch:
                    if update["update_id"] not in delivered:
                        self.state.pending.append((update, True))  # Telegram tries again
                self.state.pending = [
                    (u, f) for u, f in self.state.pending if u["update_id"] not in delivered
                ]
                if len(delivered) < len(batch):
                    await asyncio.sleep(0.3)

    async def _post_update(self, session: aiohttp.ClientSession, update: JsonDict) -> bool:
        assert self.webhook is not None and self.webhook_target is not None
        headers = {"Content-Type": "application/json"}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(self.webhook["secret_token"])
        try:
            async with session.post(self.webhook_target, json=update, headers=headers) as reply:
                self.webhook_posts.append((int(update["update_id"]), reply.status))
                return 200 <= reply.status < 300
        except aiohttp.ClientError:
            self.webhook_posts.append((int(update["update_id"]), 0))
            return False

    @staticmethod
    def _scope_key(params: JsonDict) -> str:
        scope = params.get("scope") or {"type": "default"}
        return f"{json.dumps(scope, sort_keys=True)}|{params.get('language_code') or ''}"

    async def _set_my_commands(self, params: JsonDict, files: dict[str, FileInfo]) -> bool:
        commands = validate_commands(params.get("commands"))
        self.state.commands[self._scope_key(params)] = commands
        self.state.last_commands = commands
        return True

    async def _get_my_commands(
        self, params: JsonDict, files: dict[str, FileInfo]
    ) -> list[JsonDict]:
        return self.state.commands.get(self._scope_key(params), [])

    async def _delete_my_commands(self, params: JsonDict, files: dict[str, FileInfo]) -> bool:
        self.state.commands.pop(self._scope_key(params), None)
        return True

    async def _send_message(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        chat = self._chat(params)
        text, plain, entities = self._render_text(params)
        msg = self._new_message(
            chat, "text", params, text=text, text_plain=plain, entities=entities
        )
        return msg.to_api()

    async def _edit_message_text(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        msg = self._editable(params)
        if msg.kind != "text":
            raise bad_request("there is no text in the message to edit")
        text, plain, entities = self._render_text(params)
        markup = params.get("reply_markup")
        validate_reply_markup(markup)
        if (plain, entities, self._inline(markup)) == (
            msg.text_plain,
            msg.entities,
            self._inline(msg.reply_markup),
        ):
            raise ApiError(400, NOT_MODIFIED)
        return self._apply_edit(
            msg,
            params,
            text=text,
            text_plain=plain,
            entities=entities,
            parse_mode=params.get("parse_mode"),
            reply_markup=self._inline(markup),
        )

    async def _edit_message_caption(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        msg = self._editable(params)
        if msg.kind == "text":
            raise bad_request("there is no caption in the message to edit")
        caption, plain, entities = self._render_caption(params)
        markup = params.get("reply_markup")
        validate_reply_markup(markup)
        if (plain, entities, self._inline(markup)) == (
            msg.caption_plain,
            msg.caption_entities,
            self._inline(msg.reply_markup),
        ):
            raise ApiError(400, NOT_MODIFIED)
        return self._apply_edit(
            msg,
            params,
            caption=caption,
            caption_plain=plain,
            caption_entities=entities,
            parse_mode=params.get("parse_mode"),
            reply_markup=self._inline(markup),
        )

    async def _edit_message_reply_markup(
        self, params: JsonDict, files: dict[str, FileInfo]
    ) -> JsonDict:
        msg = self._editable(params)
        markup = params.get("reply_markup")
        validate_reply_markup(markup)
        if self._inline(markup) == self._inline(msg.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        return self._apply_edit(msg, params, reply_markup=self._inline(markup))

    async def _delete_message(self, params: JsonDict, files: dict[str, FileInfo]) -> bool:
        chat_id = int(self._chat(params)["id"])
        message_id = params.get("message_id")
        msg = self.state.find_sent(chat_id, message_id) if isinstance(message_id, int) else None
        if msg is not None and not msg.deleted:
            msg.deleted = True
            return True
        key = (chat_id, message_id)
        if key in self.state.incoming and key not in self.state.deleted_incoming:
            self.state.deleted_incoming.add(key)
            return True
        raise bad_request("message to delete not found")

    async def _answer_callback_query(self, params: JsonDict, files: dict[str, FileInfo]) -> bool:
        record = self.state.callbacks.get(str(params.get("callback_query_id") or ""))
        if record is None or record.answered or self._too_old(record):
            raise ApiError(400, QUERY_TOO_OLD)
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        record.answered = True
        record.text = None if text is None else str(text)
        record.show_alert = bool(params.get("show_alert"))
        record.url = params.get("url")
        record.cache_time = params.get("cache_time")
        return True

    def _too_old(self, record: CallbackAnswer) -> bool:
        timeout = self.callback_timeout
        late = timeout is not None and time.monotonic() - record.issued_at > timeout
        return record.expired or late

    async def _send_chat_action(self, params: JsonDict, files: dict[str, FileInfo]) -> bool:
        self._chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    async def _send_video(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        return await self._send_media("video", params, files)

    async def _send_document(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        return await self._send_media("document", params, files)

    async def _send_photo(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        return await self._send_media("photo", params, files)

    async def _send_animation(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        return await self._send_media("animation", params, files)

    async def _get_file(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        file_id = params.get("file_id")
        stored = self.state.files.get(str(file_id)) if file_id else None
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.size is not None and stored.size > self.max_download_bytes:
            raise bad_request("file is too big")
        result = self._file_object(stored)
        result["file_path"] = stored.file_path
        return result
