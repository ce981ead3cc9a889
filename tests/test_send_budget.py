"""The send budget: never more than Telegram allows, and progress edits give way to people."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram.error import RetryAfter

from services.send_budget import SendBudget, Skipped
from tests.conftest import TOKEN, USER, make_settings, running_bot
from tests.fakes.telegram import FakeTelegram


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def ok() -> dict[str, Any]:
    return {"ok": True}


async def send(budget: SendBudget, endpoint: str = "sendMessage", **limit: Any) -> None:
    await budget.process_request(ok, (), {}, endpoint, {}, limit or None)


async def test_optional_edits_take_only_half_the_window_and_never_block() -> None:
    clock = Clock()
    budget = SendBudget(10, window=1.0, clock=clock)
    done = 0
    for _ in range(10):
        try:
            await send(budget, "editMessageText", optional=True)
            done += 1
        except Skipped:
            pass
    assert done == 5  # the rest of the window stays free for people's messages
    for _ in range(5):
        await send(budget)  # a person's answer goes straight out
    clock.now = 1.0
    await send(budget, "editMessageText", optional=True)  # a new window, room again


async def test_a_full_window_makes_senders_wait_and_reads_are_never_counted() -> None:
    budget = SendBudget(5, window=0.3)
    for _ in range(5):
        await send(budget)
    await send(budget, "getFile")  # not a send: no wait
    loop = asyncio.get_running_loop()
    started = loop.time()
    await send(budget)
    assert loop.time() - started >= 0.25


async def test_retry_after_pauses_everyone_and_is_retried_as_told() -> None:
    budget = SendBudget(30, window=1.0)
    calls = 0

    async def flaky() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryAfter(1)
        return {"ok": True}

    loop = asyncio.get_running_loop()
    started = loop.time()
    await budget.process_request(flaky, (), {}, "sendMessage", {}, None)
    assert calls == 2 and loop.time() - started >= 0.9
    budget.pause(5)
    with pytest.raises(Skipped):  # during a pause, optional sends are simply dropped
        await send(budget, "sendChatAction", optional=True)


async def test_a_burst_of_people_gets_no_429_from_a_strict_flood_limit(tmp_path: Any) -> None:
    tg = FakeTelegram(TOKEN, flood_limit_per_second=30)
    async with tg, running_bot(make_settings(tg, tmp_path)):
        people = [USER + i for i in range(45)]
        for uid in people:
            tg.user_message(uid, text="hello")
        await tg.wait_for(lambda: all(tg.messages(uid) for uid in people), timeout=30)
    assert tg.flood_429_count == 0
