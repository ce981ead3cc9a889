"""State, records and Bot API validation rules behind the fake Telegram server."""

from __future__ import annotations

import hashlib
import html
import itertools
import mimetypes
import re
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """A failed Bot API call, answered as ``{"ok": false, ...}``."""

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None):
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> JsonDict:
        """Return the JSON body Telegram would answer with."""
        body: JsonDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(description: str) -> ApiError:
    """Build a 400 error with Telegram's ``Bad Request:`` prefix."""
    return ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FileInfo:
    """An uploaded file: exact size and hash, plus (possibly capped) content."""

    size: int
    sha256: str
    filename: str | None = None
    mime_type: str | None = None
    content: bytes = field(default=b"", repr=False)

    @property
    def truncated(self) -> bool:
        """Whether only a prefix of the content was kept."""
        return len(self.content) < self.size

    @classmethod
    def of(cls, content: bytes, filename: str | None = None, mime: str | None = None) -> FileInfo:
        """Describe in-memory bytes."""
        digest = hashlib.sha256(content).hexdigest()
        return cls(len(content), digest, filename, mime, content)


@dataclass
class StoredFile:
    """A file known to the server, addressable by file_id and file_path."""

    file_id: str
    file_unique_id: str
    file_path: str
    info: FileInfo | None
    url: str | None = None

    @property
    def size(self) -> int | None:
        """The file size in bytes, if known."""
        return self.info.size if self.info else None


@dataclass
class Call:
    """One Bot API request as received by the server."""

    method: str
    params: JsonDict
    files: dict[str, FileInfo] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class MessageRevision:
    """A previous state of an edited message."""

    text: str | None
    caption: str | None
    parse_mode: str | None
    reply_markup: JsonDict | None
    replaced_at: int


@dataclass
class CallbackAnswer:
    """A callback query issued by a simulated user and the bot's answer to it."""

    query_id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    answered: bool = False
    text: str | None = None
    show_alert: bool = False
    url: str | None = None
    cache_time: int | None = None
    issued_at: float = field(default_factory=time.monotonic)
    expired: bool = False


@dataclass
class SentMessage:
    """A message sent by the bot, in its current (possibly edited) state."""

    chat: JsonDict
    message_id: int
    kind: str
    date: int
    sender: JsonDict
    text: str | None = None
    text_plain: str | None = None
    entities: list[JsonDict] = field(default_factory=list)
    caption: str | None = None
    caption_plain: str | None = None
    caption_entities: list[JsonDict] = field(default_factory=list)
    parse_mode: str | None = None
    reply_markup: JsonDict | None = None
    file: FileInfo | None = None
    media: Any = None
    source: str | None = None
    url: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    supports_streaming: bool | None = None
    params: JsonDict = field(default_factory=dict)
    reply_to: JsonDict | None = None
    deleted: bool = False
    edit_date: int | None = None
    history: list[MessageRevision] = field(default_factory=list)

    @property
    def chat_id(self) -> int:
        """The chat the message lives in."""
        return int(self.chat["id"])

    @property
    def file_id(self) -> str | None:
        """The file_id of the attached media (largest size for photos)."""
        media = self.media[-1] if isinstance(self.media, list) else self.media
        return media["file_id"] if media else None

    @property
    def buttons(self) -> list[JsonDict]:
        """All inline keyboard buttons, flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    def to_api(self, *, with_reply: bool = True) -> JsonDict:
        """Render as a Bot API Message object."""
        msg: JsonDict = {
            "message_id": self.message_id,
            "from": self.sender,
            "chat": self.chat,
            "date": self.date,
        }
        if self.edit_date is not None:
            msg["edit_date"] = self.edit_date
        if with_reply and self.reply_to is not None:
            msg["reply_to_message"] = self.reply_to
        if self.kind == "text":
            msg["text"] = self.text_plain
            if self.entities:
                msg["entities"] = self.entities
        else:
            msg[self.kind] = self.media
            if self.kind == "animation":
                msg["document"] = self.media
            if self.caption_plain is not None:
                msg["caption"] = self.caption_plain
                if self.caption_entities:
                    msg["caption_entities"] = self.caption_entities
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            msg["reply_markup"] = self.reply_markup
        return msg


# --------------------------------------------------------------------------- state

_FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "animation": "CgACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
}
_FILE_DIR = {"photo": "photos", "video": "videos", "animation": "animations"}


class TelegramState:
    """Everything the fake server remembers: files, chats, messages and the update queue."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.paths: dict[str, StoredFile] = {}
        self.users: dict[int, JsonDict] = {}
        self.chats: dict[int, JsonDict] = {}
        self.blocked: set[int] = set()
        self.sent: dict[int, list[SentMessage]] = {}
        self.incoming: dict[tuple[int, int], JsonDict] = {}
        self.deleted_incoming: set[tuple[int, int]] = set()
        self.callbacks: dict[str, CallbackAnswer] = {}
        self.commands: dict[str, list[JsonDict]] = {}
        self.last_commands: list[JsonDict] = []
        self.history: dict[int, JsonDict] = {}
        self.pending: list[tuple[JsonDict, bool]] = []
        self._last_message_id: dict[int, int] = {}
        self._file_seq = itertools.count(1)
        self._update_seq = itertools.count(810_000_001)
        self._callback_seq = itertools.count(1)

    # files
    def register_file(
        self,
        info: FileInfo | None,
        kind: str,
        *,
        url: str | None = None,
        file_unique_id: str | None = None,
    ) -> StoredFile:
        """Store a file under a fresh file_id and file_path."""
        n = next(self._file_seq)
        prefix = _FILE_ID_PREFIX.get(kind, _FILE_ID_PREFIX["document"])
        ext = ".jpg" if kind == "photo" else ".mp4" if kind in ("video", "animation") else ""
        if not ext and info and info.filename and "." in info.filename:
            ext = "." + info.filename.rsplit(".", 1)[1][:8]
        stored = StoredFile(
            file_id=f"{prefix}{n:04d}{secrets.token_urlsafe(24)}",
            file_unique_id=file_unique_id or f"AQAD{n:04d}{secrets.token_urlsafe(8)}",
            file_path=f"{_FILE_DIR.get(kind, 'documents')}/file_{n}{ext}",
            info=info,
            url=url,
        )
        self.files[stored.file_id] = stored
        self.paths[stored.file_path] = stored
        return stored

    # chats, users, messages
    def next_message_id(self, chat_id: int, wanted: int | None = None) -> int:
        """Allocate the next message_id in a chat (or reserve ``wanted``)."""
        current = self._last_message_id.get(chat_id, 0)
        message_id = wanted if wanted is not None else current + 1
        self._last_message_id[chat_id] = max(current, message_id)
        return message_id

    def find_sent(self, chat_id: int, message_id: int) -> SentMessage | None:
        """Look up a bot message by chat and id (deleted ones included)."""
        for msg in self.sent.get(chat_id, []):
            if msg.message_id == message_id:
                return msg
        return None

    def find_any(self, chat_id: int, message_id: int) -> JsonDict | None:
        """Return the API dict of a live message from the user or the bot."""
        sent = self.find_sent(chat_id, message_id)
        if sent is not None:
            return None if sent.deleted else sent.to_api(with_reply=False)
        incoming = self.incoming.get((chat_id, message_id))
        if incoming is None or (chat_id, message_id) in self.deleted_incoming:
            return None
        return {k: v for k, v in incoming.items() if k != "reply_to_message"}

    def remember_update(self, update: JsonDict) -> None:
        """Learn the chats, users and messages an incoming update mentions."""
        for key in ("message", "edited_message", "callback_query", "my_chat_member"):
            obj = update.get(key)
            if not isinstance(obj, dict):
                continue
            user = obj.get("from")
            if isinstance(user, dict) and "id" in user:
                self.users.setdefault(int(user["id"]), user)
            msg = obj.get("message") if key == "callback_query" else obj
            chat = (msg or {}).get("chat") if isinstance(msg, dict) else obj.get("chat")
            if isinstance(chat, dict) and "id" in chat:
                self.chats.setdefault(int(chat["id"]), chat)
            if key == "message" and isinstance(chat, dict) and "message_id" in obj:
                self.next_message_id(int(chat["id"]), int(obj["message_id"]))
                self.incoming[(int(chat["id"]), int(obj["message_id"]))] = obj

    def new_callback_id(self) -> str:
        """Return a fresh numeric-looking callback query id."""
        return str(4_300_000_000_000_000_000 + next(self._callback_seq))

    # updates
    def enqueue(self, update: JsonDict) -> int:
        """Assign an update_id and queue the update for getUpdates."""
        update = {"update_id": next(self._update_seq), **update}
        self.history[update["update_id"]] = update
        self.pending.append((update, False))
        self.remember_update(update)
        return int(update["update_id"])

    def requeue(self, update_id: int) -> None:
        """Queue an identical copy of a previously issued update (delivered once, any offset)."""
        self.pending.append((dict(self.history[update_id]), True))

    def confirm(self, offset: int | None) -> None:
        """Drop updates confirmed by ``offset`` (negative: keep only the last -offset)."""
        if offset is None:
            return
        normal = [u for u, forced in self.pending if not forced]
        if offset < 0:
            keep = {id(u) for u in normal[offset:]}
        else:
            keep = {id(u) for u in normal if u["update_id"] >= offset}
        self.pending = [(u, f) for u, f in self.pending if f or id(u) in keep]

    def take(self, limit: int) -> list[JsonDict]:
        """Return deliverable updates (forced redeliveries first)."""
        forced = [u for u, f in self.pending if f]
        normal = sorted((u for u, f in self.pending if not f), key=lambda u: u["update_id"])
        batch = (forced + normal)[:limit]
        delivered = {id(u) for u in batch}
        self.pending = [(u, f) for u, f in self.pending if not (f and id(u) in delivered)]
        return batch


# --------------------------------------------------------------------------- text parsing

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")
_ATTR_RE = re.compile(r"""([a-zA-Z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_COMMAND_RE = re.compile(r"(?<![\w/])/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{3,32})?(?![\w/])")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, as Telegram counts offsets."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


class _EntityBuilder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[JsonDict] = []

    def emit(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.pos += utf16_len(chunk)

    def close(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append(
                {"type": kind, "offset": start, "length": self.pos - start, **extra}
            )

    def result(self) -> tuple[str, list[JsonDict]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


def parse_html(text: str) -> tuple[str, list[JsonDict]]:
    """Parse Telegram-style HTML into plain text and entities, rejecting bad markup."""
    out = _EntityBuilder()
    stack: list[tuple[str, int, dict[str, str]]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG_RE.match(text, i)
            where = f"at byte offset {_byte_offset(text, i)}"
            if m is None:
                raise bad_request(f"can't parse entities: Unexpected end of name token {where}")
            closing, name = m.group(1) == "/", m.group(2).lower()
            attrs = {a: b or c or d for a, b, c, d in _ATTR_RE.findall(m.group(3))}
            if name not in _HTML_TAGS or (
                name == "span" and not closing and attrs.get("class") != "tg-spoiler"
            ):
                kind = "end" if closing else "start"
                raise bad_request(f'can\'t parse entities: Unsupported {kind} tag "{name}" {where}')
            if not closing:
                stack.append((name, out.pos, {k.lower(): v for k, v in attrs.items()}))
            elif not stack:
                raise bad_request(f"can't parse entities: Unexpected end tag {where}")
            else:
                open_name, start, open_attrs = stack.pop()
                if open_name != name:
                    raise bad_request(
                        f"can't parse entities: Unmatched end tag {where}, "
                        f'expected "</{open_name}>", found "</{name}>"'
                    )
                _close_html(out, name, start, open_attrs, stack)
            i = m.end()
        elif ch == "&" and (m := _ENTITY_RE.match(text, i)):
            out.emit(html.unescape(m.group(0)))
            i = m.end()
        else:
            out.emit(ch)
            i += 1
    if stack:
        raise bad_request(
            "can't parse entities: Can't find end tag corresponding to start tag "
            f'"{stack[-1][0]}"'
        )
    return out.result()


def _close_html(
    out: _EntityBuilder,
    name: str,
    start: int,
    attrs: dict[str, str],
    stack: list[tuple[str, int, dict[str, str]]],
) -> None:
    kind = _HTML_TAGS[name]
    if kind == "text_link":
        href = attrs.get("href")
        if href:
            out.close(kind, start, url=href)
    elif kind == "code" and stack and stack[-1][0] == "pre":
        language = attrs.get("class", "").removeprefix("language-")
        if language:
            stack[-1][2]["language"] = language
    elif kind == "pre":
        extra = {"language": attrs["language"]} if attrs.get("language") else {}
        out.close(kind, start, **extra)
    elif kind == "blockquote" and "expandable" in attrs:
        out.close("expandable_blockquote", start)
    elif kind == "custom_emoji":
        out.close(kind, start, custom_emoji_id=attrs.get("emoji-id", ""))
    else:
        out.close(kind, start)


_MD2_MARKERS = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}


def parse_markdown_v2(text: str) -> tuple[str, list[JsonDict]]:
    """Parse MarkdownV2 into plain text and entities, rejecting unescaped reserved characters."""
    out = _EntityBuilder()
    stack: list[tuple[str, int, int]] = []
    links: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.emit(text[i + 1])
            i += 2
        elif ch == "`":
            i = _md2_code(text, i, out)
        elif ch in "*_~|":
            marker = text[i : i + 2] if text.startswith(("__", "||"), i) else ch
            if marker == "|":
                raise _md2_reserved(ch)
            open_idx = next((k for k, s in enumerate(stack) if s[0] == marker), None)
            if open_idx is None:
                stack.append((marker, out.pos, i))
            else:
                _, start, _ = stack.pop(open_idx)
                out.close(_MD2_MARKERS[marker], start)
            i += len(marker)
        elif ch == "[":
            links.append(out.pos)
            i += 1
        elif ch == "]" and links and text.startswith("(", i + 1):
            end = i + 2
            while end < len(text) and text[end] != ")":
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise bad_request("can't parse entities: Can't find end of a URL")
            url = re.sub(r"\\(.)", r"\1", text[i + 2 : end])
            out.close("text_link", links.pop(), url=url)
            i = end + 1
        elif ch == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
        elif ch in _MD2_RESERVED:
            raise _md2_reserved(ch)
        else:
            out.emit(ch)
            i += 1
    if stack or links:
        marker, _, at = stack[-1] if stack else ("[", 0, 0)
        name = _MD2_MARKERS.get(marker, "text_link").replace("_", " ").title().replace(" ", "")
        raise bad_request(
            f"can't parse entities: Can't find end of {name} entity at byte offset "
            f"{_byte_offset(text, at)}"
        )
    return out.result()


def _md2_reserved(ch: str) -> ApiError:
    return bad_request(
        f"can't parse entities: Character '{ch}' is reserved and must be escaped with the "
        "preceding '\\'"
    )


def _md2_code(text: str, i: int, out: _EntityBuilder) -> int:
    fence = "```" if text.startswith("```", i) else "`"
    j = i + len(fence)
    body: list[str] = []
    while j < len(text) and not text.startswith(fence, j):
        if text[j] == "\\" and j + 1 < len(text):
            body.append(text[j + 1])
            j += 2
        else:
            body.append(text[j])
            j += 1
    if j >= len(text):
        kind = "Pre" if fence == "```" else "Code"
        raise bad_request(
            f"can't parse entities: Can't find end of {kind} entity at byte offset "
            f"{_byte_offset(text, i)}"
        )
    content, extra = "".join(body), {}
    if fence == "```" and "\n" in content:
        first, rest = content.split("\n", 1)
        if first and " " not in first:
            content, extra = rest, {"language": first}
    start = out.pos
    out.emit(content)
    out.close("pre" if fence == "```" else "code", start, **extra)
    return j + len(fence)


def render(text: str, parse_mode: str | None) -> tuple[str, list[JsonDict]]:
    """Turn outgoing text into (plain text, entities) according to ``parse_mode``."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode and mode != "markdown":
        raise bad_request(f"unsupported parse_mode {parse_mode}")
    return text, []


def command_entities(text: str) -> list[JsonDict]:
    """The bot_command entities Telegram attaches to a user's message text."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group(0)),
        }
        for m in _COMMAND_RE.finditer(text)
    ]


# --------------------------------------------------------------------------- misc rules

_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def validate_reply_markup(markup: Any) -> None:
    """Reject reply markup Telegram would refuse (bad callback_data, bad URLs, text-only)."""
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad_request(
            'can\'t parse inline keyboard button: field "inline_keyboard" must be of type Array'
        )
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not button.get("text"):
            raise bad_request("can't parse inline keyboard button: Text is empty")
        if not any(key in button for key in _BUTTON_ACTIONS):
            raise bad_request(
                "can't parse inline keyboard button: "
                "Text buttons are unallowed in the inline keyboard"
            )
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
        if "url" in button and not re.match(r"^(https?|tg)://\S+$", str(button["url"])):
            raise bad_request("BUTTON_URL_INVALID")


_COMMAND_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")


def validate_commands(commands: Any) -> list[JsonDict]:
    """Check a setMyCommands list the way Telegram does."""
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("too many commands")
    for command in commands:
        if not isinstance(command, dict) or not _COMMAND_NAME_RE.match(str(command.get("command"))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request(
                "command description is empty"
                if not command.get("description")
                else "BOT_COMMAND_DESCRIPTION_INVALID"
            )
    return commands


def guess_mime(filename: str | None, default: str) -> str:
    """Guess a MIME type from a file name."""
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    return guessed or default


def image_size(content: bytes) -> tuple[int, int] | None:
    """Read width and height from PNG or JPEG bytes, if recognisable."""
    if content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) >= 24:
        w, h = struct.unpack(">II", content[16:24])
        return int(w), int(h)
    if not content.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 < len(content):
        if content[i] != 0xFF:
            i += 1
            continue
        marker = content[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", content[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", content[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


def fake_thumbnail(seed: bytes, size: int) -> bytes:
    """Deterministic JPEG-looking filler bytes for thumbnail sizes."""
    block = hashlib.sha256(seed).digest()
    body = (block * (size // len(block) + 1))[: max(size - 4, 0)]
    return b"\xff\xd8\xff\xe0" + body
