"""A fake OpenAI-compatible chat completions server (aiohttp) on 127.0.0.1.

Point a client's base URL at :attr:`FakeLLM.base_url` (``{root}/v1``); it serves
``POST /v1/chat/completions``. Requests are checked the way OpenAI checks them and refused in
OpenAI's error shape, so a client that sends a wrong body fails here as it would for real.

Shapes follow the OpenAI API reference: "Chat › Create chat completion"
(https://platform.openai.com/docs/api-reference/chat/create) for the request and "The chat
completion object" (https://platform.openai.com/docs/api-reference/chat/object) for the answer;
error bodies follow https://platform.openai.com/docs/guides/error-codes (``{"error": {"message",
"type", "param", "code"}}``, e.g. 401 ``invalid_api_key`` "Incorrect API key provided: sk-ab***…").
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer

__all__ = ["FakeLLM", "LLMRequest"]

_ROLES = ("system", "user", "assistant")
_FORMATS = ("text", "json_object", "json_schema")
# Parameters OpenAI accepts on /chat/completions; anything else is "Unrecognized".
_KNOWN = frozenset(
    {
        "model", "messages", "temperature", "top_p", "n", "stream", "stream_options", "stop",
        "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
        "logit_bias", "logprobs", "top_logprobs", "response_format", "seed", "user", "tools",
        "tool_choice", "parallel_tool_calls", "service_tier", "store", "metadata",
        "reasoning_effort", "modalities", "audio", "prediction",
    }
)  # fmt: skip
_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


@dataclass(frozen=True)
class LLMRequest:
    """One request as the fake received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any] | None
    at: float = field(default_factory=time.monotonic)

    def user_message(self) -> str:
        """The content of the last user message, or "" when there is none."""
        messages = (self.body or {}).get("messages")
        if not isinstance(messages, list):
            return ""
        users = [
            m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"
        ]
        return users[-1] if users and isinstance(users[-1], str) else ""


class _Refusal(Exception):
    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def _error(
    status: int, message: str, *, kind: str, param: str | None, code: str | None
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _masked(key: str) -> str:
    # OpenAI echoes a wrong key masked: a few leading characters, stars, the last four.
    return key[:3] + "*" * max(len(key) - 7, 1) + key[-4:] if len(key) > 8 else "*" * len(key)


def _check_request(body: dict[str, Any]) -> None:
    """Raise :class:`_Refusal` where OpenAI would refuse this body."""
    for name in body:
        if name not in _KNOWN:
            raise _Refusal(400, f"Unrecognized request argument supplied: {name}")
    if "model" not in body:
        raise _Refusal(400, "you must provide a model parameter")
    if not isinstance(body["model"], str):
        raise _Refusal(
            400,
            f"Invalid type for 'model': expected a string, but got "
            f"{_type_name(body['model'])} instead.",
            "model",
            "invalid_type",
        )
    if "messages" not in body:
        raise _Refusal(
            400, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _Refusal(
            400,
            f"Invalid type for 'messages': expected an array, but got "
            f"{_type_name(messages)} instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise _Refusal(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _Refusal(
                400,
                f"Invalid type for 'messages[{i}]': expected an object, but got "
                f"{_type_name(message)} instead.",
                f"messages[{i}]",
                "invalid_type",
            )
        if "role" not in message:
            raise _Refusal(
                400,
                f"Missing required parameter: 'messages[{i}].role'.",
                f"messages[{i}].role",
                "missing_required_parameter",
            )
        if message["role"] not in _ROLES:
            raise _Refusal(
                400,
                f"Invalid value: {message['role']!r}. Supported values are: 'system', "
                "'assistant', and 'user'.",
                f"messages[{i}].role",
                "invalid_value",
            )
        if not isinstance(message.get("content"), str):
            raise _Refusal(
                400,
                f"Invalid type for 'messages[{i}].content': expected a string, but got "
                f"{_type_name(message.get('content'))} instead.",
                f"messages[{i}].content",
                "invalid_type",
            )
    if "temperature" in body:
        temperature = body["temperature"]
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise _Refusal(
                400,
                f"Invalid type for 'temperature': expected a decimal, but got "
                f"{_type_name(temperature)} instead.",
                "temperature",
                "invalid_type",
            )
        if temperature > 2:
            raise _Refusal(
                400,
                f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                f"but got {temperature} instead.",
                "temperature",
                "decimal_above_max_value",
            )
        if temperature < 0:
            raise _Refusal(
                400,
                f"Invalid 'temperature': decimal below minimum value. Expected a value >= 0, "
                f"but got {temperature} instead.",
                "temperature",
                "decimal_below_min_value",
            )
    if "response_format" in body:
        fmt = body["response_format"]
        if not isinstance(fmt, dict):
            raise _Refusal(
                400,
                f"Invalid type for 'response_format': expected an object, but got "
                f"{_type_name(fmt)} instead.",
                "response_format",
                "invalid_type",
            )
        if fmt.get("type") not in _FORMATS:
            raise _Refusal(
                400,
                f"Invalid value: {fmt.get('type')!r}. Supported values are: 'text', "
                "'json_object', and 'json_schema'.",
                "response_format.type",
                "invalid_value",
            )
        if fmt["type"] == "json_schema" and not isinstance(fmt.get("json_schema"), dict):
            raise _Refusal(
                400,
                "Missing required parameter: 'response_format.json_schema'.",
                "response_format.json_schema",
                "missing_required_parameter",
            )
        if fmt["type"] == "json_object" and not any(
            "json" in m["content"].lower() for m in messages
        ):
            raise _Refusal(
                400,
                "'messages' must contain the word 'json' in some form, to use "
                "'response_format' of type 'json_object'.",
                "messages",
            )
    if body.get("stream"):
        raise _Refusal(400, "This fake does not stream.", "stream")


def _subject_line(user_message: str) -> str:
    first = user_message.splitlines()[0] if user_message else ""
    return first.removeprefix("Subject:").strip() or "a quiet scene"


class FakeLLM(LocalServer):
    """An OpenAI-compatible chat completions endpoint with configurable behaviour.

    ``reply``: the assistant's content (default: a JSON prompt made from the user message);
    ``delay``: seconds before answering; ``status``: answer this status in OpenAI's error shape
    instead; ``malformed``: answer content that is not JSON. With ``api_key`` set, requests
    without ``Authorization: Bearer <api_key>`` get 401.
    """

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.reply: str | None = None
        self.delay = 0.0
        self.status: int | None = None
        self.malformed = False
        self.requests: list[LLMRequest] = []
        self.refusals: list[tuple[int, str]] = []  # (status, message) of every error answered

    def application(self) -> web.Application:
        """OpenAI's chat completions route."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        return app

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ``{root}/v1``."""
        return f"{self.root}/v1"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else None
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = LLMRequest(request.method, request.path, headers, raw, body)
        self.requests.append(recorded)
        if self.delay > 0:
            await self.pause(self.delay)
        try:
            self._check_key(headers.get("authorization"))
            if body is None:
                raise _Refusal(
                    400,
                    "We could not parse the JSON body of your request. (HINT: This likely "
                    "means you aren't using your HTTP library correctly.)",
                )
            if self.status is not None and self.status >= 400:
                return self._refuse_with_status(self.status)
            _check_request(body)
        except _Refusal as refusal:
            self.refusals.append((refusal.status, refusal.message))
            return _error(
                refusal.status,
                refusal.message,
                kind="invalid_request_error",
                param=refusal.param,
                code=refusal.code,
            )
        return web.json_response(self._completion(body, recorded.user_message()))

    def _check_key(self, authorization: str | None) -> None:
        if self.api_key is None:
            return
        if not authorization:
            raise _Refusal(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        scheme, _, given = authorization.partition(" ")
        if scheme != "Bearer" or given != self.api_key:
            raise _Refusal(
                401,
                f"Incorrect API key provided: {_masked(given or scheme)}. You can find your "
                "API key at https://platform.openai.com/account/api-keys.",
                None,
                "invalid_api_key",
            )

    def _refuse_with_status(self, status: int) -> web.Response:
        if status == 429:
            message, kind, code = (
                "Rate limit reached for requests",
                "requests",
                "rate_limit_exceeded",
            )
        elif status >= 500:
            message = "The server had an error while processing your request. Sorry about that!"
            kind, code = "server_error", None
        else:
            message, kind, code = "The request was refused.", "invalid_request_error", None
        self.refusals.append((status, message))
        return _error(status, message, kind=kind, param=None, code=code)

    def _completion(self, body: dict[str, Any], user_message: str) -> dict[str, Any]:
        if self.malformed:
            content = "Sure! Here is a cinematic prompt: a fox in the snow, slow dolly-in."
        elif self.reply is not None:
            content = self.reply
        else:
            subject = _subject_line(user_message)
            prompt = f"{subject}, slow crane shot rising, 35 mm lens, soft rim light (fake LLM)"
            content = json.dumps({"prompt": prompt})
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        completion_tokens = len(content.split())
        return {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_fake",
        }
