"""Telegram by webhook: the fake Bot API calls the bot's uvicorn server the way Telegram calls an
https URL behind the operator's TLS proxy, with the secret header; forged calls change nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.application import build_application
from bot.container import App
from bot.serve import ALLOWED_UPDATES, start_webhook, stop_webhook
from bot.settings import Settings
from services.model.jobs import JobState
from tests.conftest import (
    USER,
    data_for,
    delivered_jobs,
    make_settings,
    reply_to,
    running_bot,
    services_of,
)
from tests.fakes.telegram import FakeTelegram

SECRET = "webhook-secret-0123456789abcdef"
PATH = "/tg/hook-7f3a"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_settings(tg: FakeTelegram, tmp_path: Path, **extra: Any) -> Settings:
    port = free_port()
    settings = make_settings(
        tg,
        tmp_path,
        telegram_webhook_url=f"https://bot.example.test{PATH}",
        telegram_webhook_secret=SECRET,
        webhook_listen=f"127.0.0.1:{port}",
        **extra,
    )
    # Telegram calls https://bot.example.test; the operator's proxy passes it to the bot.
    tg.webhook_target = f"http://127.0.0.1:{port}{PATH}"
    return settings


def local(settings: Settings, path: str) -> str:
    return f"http://{settings.webhook_listen}{path}"


@asynccontextmanager
async def webhook_bot(settings: Settings) -> AsyncIterator[App]:
    app = build_application(settings)
    web = await start_webhook(app, settings)
    try:
        yield app
    finally:
        await stop_webhook(app, web)


async def test_a_photo_by_webhook_becomes_a_video_and_telegram_is_told_the_right_things(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    settings = webhook_settings(tg, tmp_path)
    # Sent while the bot was down: Telegram keeps it, the bot takes it once it is up.
    early = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
    async with webhook_bot(settings) as app:
        card_id = await reply_to(tg, early)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        [job] = await delivered_jobs(app, USER)
    assert job.state == JobState.DELIVERED and len(tg.videos(USER)) == 1
    assert tg.webhook is not None
    assert tg.webhook["url"] == f"https://bot.example.test{PATH}"
    assert tg.webhook["secret_token"] == SECRET
    assert tg.webhook["allowed_updates"] == ALLOWED_UPDATES
    assert tg.webhook["max_connections"] == 40
    assert not [c for c in tg.calls if c.method == "getUpdates"]  # no polling alongside
    assert tg.webhook_posts and {status for _, status in tg.webhook_posts} == {200}
    assert not any(c.params.get("drop_pending_updates") for c in tg.calls)


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, "update", 403),
        ({"X-Telegram-Bot-Api-Secret-Token": "guess"}, "update", 403),
        ({"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}, "update", 403),
        ({"X-Telegram-Bot-Api-Secret-Token": SECRET}, "not json", 400),
        ({"X-Telegram-Bot-Api-Secret-Token": SECRET}, "[]", 400),
    ],
)
async def test_forged_and_malformed_calls_are_refused_and_change_nothing(
    tg: FakeTelegram, tmp_path: Path, headers: dict[str, str], body: str, status: int
) -> None:
    settings = webhook_settings(tg, tmp_path)
    update = {
        "update_id": 99,
        "message": {
            "message_id": 5,
            "date": 1,
            "chat": {"id": USER, "type": "private"},
            "from": {"id": USER, "is_bot": False, "first_name": "Mallory"},
            "text": "/start",
        },
    }
    content = json.dumps(update) if body == "update" else body
    async with webhook_bot(settings), httpx.AsyncClient() as client:
        answer = await client.post(local(settings, PATH), content=content, headers=headers)
        other = await client.post(local(settings, "/not-the-hook"), content=content)
        health = await client.get(local(settings, "/healthz"))
        metrics = (await client.get(local(settings, "/metrics"))).text
    assert answer.status_code == status
    assert other.status_code in (404, 405)
    assert health.status_code == 200 and health.json() == {"ok": True}
    assert tg.messages(USER) == []  # nothing was processed
    reason = "secret" if status == 403 else "malformed"
    assert f'studio_webhook_rejected_total{{reason="{reason}"}} 1.0' in metrics


async def test_an_oversized_call_is_refused_before_it_is_read(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    settings = webhook_settings(tg, tmp_path)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with webhook_bot(settings), httpx.AsyncClient() as client:
        answer = await client.post(local(settings, PATH), content=b"x" * 2_000_000, headers=headers)
    assert answer.status_code == 413


async def test_metrics_show_jobs_by_state(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    settings = webhook_settings(tg, tmp_path)
    async with webhook_bot(settings), httpx.AsyncClient() as client:
        await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        text = (await client.get(local(settings, "/metrics"))).text
    assert 'studio_jobs{state="draft"} 1.0' in text
    assert "studio_webhook_updates_total 1.0" in text
    assert "studio_oldest_due_job_lag_seconds" in text


async def test_without_a_webhook_url_the_bot_deletes_the_webhook_and_long_polls(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with webhook_bot(webhook_settings(tg, tmp_path)):
        pass
    assert tg.webhook is not None  # left in place on stop: Telegram keeps the updates
    async with running_bot(make_settings(tg, tmp_path)):
        tg.user_message(USER, text="/start")
        await tg.wait_for(lambda: tg.messages(USER), timeout=10)
    assert tg.webhook is None


def test_a_webhook_needs_https_and_a_strong_secret(tmp_path: Path) -> None:
    base: dict[str, Any] = {"_env_file": None, "telegram_bot_token": "1:x"}
    with pytest.raises(ValueError, match="https"):
        Settings(
            **base, telegram_webhook_url="http://bot.example/hook", telegram_webhook_secret=SECRET
        )
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        Settings(**base, telegram_webhook_url="https://bot.example/hook")
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        Settings(
            **base, telegram_webhook_url="https://bot.example/hook", telegram_webhook_secret="short"
        )
    ok = Settings(
        **base, telegram_webhook_url="https://bot.example/hook", telegram_webhook_secret=SECRET
    )
    assert SECRET in ok.secrets()  # redacted from the logs like the token


async def test_a_long_polling_bot_serves_health_and_metrics_on_metrics_listen(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    settings = make_settings(tg, tmp_path, metrics_listen=listen)
    async with running_bot(settings) as app, httpx.AsyncClient() as client:
        healthy = await client.get(f"http://{listen}/healthz")
        metrics = await client.get(f"http://{listen}/metrics")
        hook = await client.post(f"http://{listen}{PATH}", content="{}")
        # The database stops answering: the probe says so.
        await services_of(app).db.close()
        sick = await client.get(f"http://{listen}/healthz")
    assert healthy.status_code == 200 and metrics.status_code == 200
    assert "studio_jobs" in metrics.text
    assert hook.status_code in (404, 405)  # no webhook without TELEGRAM_WEBHOOK_URL
    assert sick.status_code == 503 and sick.json()["ok"] is False


async def test_doctor_checks_the_webhook_listen_address_and_what_telegram_saw(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    from bot.doctor import run_doctor

    settings = webhook_settings(tg, tmp_path)
    lines: list[str] = []
    assert await run_doctor(settings, lines.append) == 0, lines
    assert any(line.startswith("✓ webhook") and "set at the next start" in line for line in lines)
    # While the bot runs, its port is taken: doctor says so instead of passing.
    async with webhook_bot(settings):
        lines.clear()
        assert await run_doctor(settings, lines.append) == 1
    assert any(line.startswith("✗ webhook") and "WEBHOOK_LISTEN" in line for line in lines)
    assert SECRET not in "\n".join(lines)


def sample(text: str, name: str) -> float:
    """The value of one sample line of Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and " " in line):
            key, _, value = line.rpartition(" ")
            if key == name or key.startswith(name):
                return float(value)
    return 0.0


async def test_metrics_count_submits_turns_and_send_waits(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    async with (
        running_bot(make_settings(tg, tmp_path, metrics_listen=listen)),
        httpx.AsyncClient(base_url=f"http://{listen}") as client,
    ):
        before = (await client.get("/metrics")).text
        card_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        after = (await client.get("/metrics")).text
    submits = 'studio_submits_total{kind="animate",provider="local"}'
    assert sample(after, submits) == sample(before, submits) + 1
    for name in ("studio_poll_turn_seconds_count", "studio_send_wait_seconds_count"):
        assert sample(after, name) > sample(before, name)
