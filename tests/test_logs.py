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


async def test_json_lines_carry_the_job_and_update_ids_and_no_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio
    import json

    from services import log_context

    setup_logging("INFO", [TOKEN, KEY], "json")
    log = logging.getLogger("services.production.poller")

    async def one_job(job: int) -> None:
        log_context.job_id.set(job)
        await asyncio.sleep(0)
        log.info("job %s submitted with key %s", job, KEY)

    log_context.update_id.set(77)
    try:
        await asyncio.gather(one_job(1), one_job(2))
        try:
            raise RuntimeError(f"boom {TOKEN}")
        except RuntimeError:
            log.exception("failed")
    finally:
        log_context.update_id.set(None)
        setup_logging("DEBUG", [TOKEN, KEY])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    submitted = [line for line in lines if "submitted" in line["message"]]
    # Each job's task names its own job; the update of the surrounding work is kept.
    assert sorted((d["job_id"], d["update_id"]) for d in submitted) == [(1, 77), (2, 77)]
    assert all(d["level"] == "INFO" and d["logger"].endswith("poller") for d in submitted)
    failed = next(line for line in lines if line["message"].startswith("failed"))
    assert "RuntimeError" in failed["message"] and "job_id" not in failed
    raw = json.dumps(lines)
    assert TOKEN not in raw and KEY not in raw
