"""No secret reaches a log line, whatever logs it."""

from __future__ import annotations

import io
import logging

import httpx
import pytest

from bot.logs import RedactingFilter, setup_logging
from tests.conftest import TOKEN

KEY = "muapi-secret-key-123456"


@pytest.fixture
def captured() -> io.StringIO:
    setup_logging("DEBUG", [TOKEN, KEY])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter([TOKEN, KEY]))
    logging.getLogger().addHandler(handler)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_secrets_in_messages_arguments_and_tracebacks_are_redacted(captured: io.StringIO) -> None:
    log = logging.getLogger("anything")
    log.info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
    log.warning("key is " + KEY)
    try:
        raise RuntimeError(f"boom at /file/bot{TOKEN}/photos/1.jpg")
    except RuntimeError:
        log.exception("download failed")
    # A token of another bot is still a token.
    log.info("other 1234567890:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef1234")
    out = captured.getvalue()
    assert TOKEN not in out and KEY not in out
    assert "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef1234" not in out
    assert out.count("[redacted]") >= 4 and "download failed" in out and "RuntimeError" in out


async def test_httpx_request_lines_are_not_logged(captured: io.StringIO) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get(f"https://api.telegram.org/bot{TOKEN}/getMe")
    assert "getMe" not in captured.getvalue()
