"""How an upload failure is classed: resent only when Telegram surely did not get it all.

A resend after Telegram got the whole file could post the video twice, so the class decides
between "retry" and "ask the user". The transport below reads the multipart body as a real
connection does, chunk by chunk from the open file (httpx's MockTransport reads it all first).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from telegram.ext import ExtBot

from services.errors import MessengerError
from services.telegram.messenger import Messenger
from tests.conftest import TOKEN

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class StreamingTransport(httpx.AsyncBaseTransport):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.handler(request)


async def upload_with(handler: Handler, path: Path) -> MessengerError:
    async with httpx.AsyncClient(transport=StreamingTransport(handler)) as http:
        messenger = Messenger(
            ExtBot(TOKEN), http, api_root="http://telegram.test", token=TOKEN, local_mode=False
        )
        with pytest.raises(MessengerError) as caught:
            await messenger.send_video(1, path, caption="", width=None, height=None, duration=None)
    return caught.value


async def read_body(request: httpx.Request, limit: int | None = None) -> int:
    seen = 0
    assert isinstance(request.stream, httpx.AsyncByteStream)
    async for chunk in request.stream:
        seen += len(chunk)
        if limit is not None and seen >= limit:
            break
    return seen


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    path = tmp_path / "out.mp4"
    path.write_bytes(os.urandom(1_000_000))
    return path


async def test_a_connection_lost_mid_upload_is_a_plain_network_error(video_file: Path) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await read_body(request, limit=100_000)
        raise httpx.WriteError("connection reset")

    error = await upload_with(handler, video_file)
    assert error.kind == "network"  # retried by delivery: Telegram cannot have the video


async def test_a_connection_lost_after_the_whole_upload_is_unclear(video_file: Path) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        assert await read_body(request) > 1_000_000
        raise httpx.RemoteProtocolError("server disconnected without sending a response")

    error = await upload_with(handler, video_file)
    assert error.kind == "unclear"


async def test_no_answer_in_time_is_unclear_and_a_slow_connect_is_not(video_file: Path) -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await read_body(request)
        raise httpx.ReadTimeout("no answer")

    async def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("no route")

    assert (await upload_with(silent, video_file)).kind == "unclear"
    assert (await upload_with(unreachable, video_file)).kind == "timeout"


async def test_an_error_telegram_answers_is_never_unclear(video_file: Path) -> None:
    async def busy(request: httpx.Request) -> httpx.Response:
        await read_body(request)
        return httpx.Response(502, json={"ok": False, "description": "Bad Gateway"})

    error = await upload_with(busy, video_file)
    assert error.kind == "network" and TOKEN not in str(error)
