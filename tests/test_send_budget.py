"""The send budget: never more than Telegram allows, and progress edits give way to people."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from telegram.error import RetryAfter

from services.telegram.send_budget import SendBudget, Skipped
from tests.conftest import TOKEN, USER, make_settings, running_bot
from tests.fakes.telegram import FakeTelegram


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def ok() -> dict[str, Any]:
    return {"ok": True}


async def send(
    budget: SendBudget, endpoint: str = "sendMessage", chat: int | None = None, **limit: Any
) -> None:
    data = {} if chat is None else {"chat_id": chat}
    await budget.process_request(ok, (), {}, endpoint, data, limit or None)


async def timed(budget: SendBudget, chat: int | None = None, **limit: Any) -> float:
    """How long one send waited for its slot."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await send(budget, chat=chat, **limit)
    return loop.time() - started


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


async def test_each_chat_gets_a_short_burst_then_one_send_per_interval() -> None:
    budget = SendBudget(30, chat_burst=3, chat_interval=0.2)
    waits = [await timed(budget, chat=USER) for _ in range(5)]
    assert max(waits[:3]) < 0.05  # a short burst goes at once
    assert all(0.15 <= w < 0.3 for w in waits[3:])  # then one per interval
    assert await timed(budget, chat=USER + 1) < 0.05  # other chats have their own bucket
    await asyncio.sleep(0.6)  # the bucket fills up again
    assert max([await timed(budget, chat=USER) for _ in range(3)]) < 0.05


async def test_progress_in_a_chat_uses_spare_slots_only_and_gives_way_to_the_person() -> None:
    budget = SendBudget(30, chat_burst=2, chat_interval=0.3)
    edits = []
    for _ in range(3):
        try:
            edits.append(await timed(budget, chat=USER, optional=True))
        except Skipped:
            edits.append(-1.0)
    assert edits[2] == -1.0 and max(edits[:2]) < 0.05  # spare slots only, never a wait
    person = asyncio.create_task(timed(budget, chat=USER))
    await asyncio.sleep(0.05)
    with pytest.raises(Skipped):  # somebody must send: progress does not go in front
        await send(budget, "editMessageText", chat=USER, optional=True)
    assert 0.2 <= await person < 0.4


async def test_a_send_counts_until_telegram_answers_it() -> None:
    # Telegram may see an upload at any moment until it answers, so the chat's next send
    # waits a whole interval after the answer, not after the start.
    budget = SendBudget(30, chat_burst=1, chat_interval=0.2)

    async def slow_upload() -> dict[str, Any]:
        await asyncio.sleep(0.3)
        return {"ok": True}

    upload = asyncio.create_task(
        budget.process_request(slow_upload, (), {}, "sendVideo", {"chat_id": USER}, None)
    )
    await asyncio.sleep(0.05)
    assert await timed(budget, chat=USER) >= 0.4
    await upload


async def test_a_429_in_a_busy_chat_pauses_that_chat_and_in_a_quiet_one_everybody() -> None:
    budget = SendBudget(30, window=1.0)
    refusals = {USER: 1, USER + 1: 1}

    def refused_once(chat: int) -> Any:
        async def call() -> dict[str, Any]:
            if refusals[chat]:
                refusals[chat] -= 1
                raise RetryAfter(1)
            return {"ok": True}

        return call

    def send_refused(chat: int) -> asyncio.Task[Any]:
        return asyncio.create_task(
            budget.process_request(
                refused_once(chat), (), {}, "sendMessage", {"chat_id": chat}, None
            )
        )

    # The chat had sent just before: its own limit is the likely cause, the others go on.
    await send(budget, chat=USER)
    retried = send_refused(USER)
    await asyncio.sleep(0.05)
    assert await timed(budget, chat=USER + 2) < 0.05
    with pytest.raises(Skipped):
        await send(budget, "editMessageText", chat=USER, optional=True)
    await retried
    # The chat's first send in a while: only the overall limit explains it, everybody waits.
    retried = send_refused(USER + 1)
    await asyncio.sleep(0.05)
    assert await timed(budget, chat=USER + 3) >= 0.8
    await retried


async def test_an_optional_send_may_wait_for_room_but_gives_way_to_people() -> None:
    budget = SendBudget(30, chat_burst=1, chat_interval=0.2)
    await send(budget, chat=USER)
    # "uploading video…" before an upload: worth waiting a moment for the chat's next slot.
    assert 0.15 <= await timed(budget, chat=USER, optional=True, wait=1.0) < 0.3
    with pytest.raises(Skipped):  # but not longer than it was told
        await send(budget, "sendChatAction", chat=USER, optional=True, wait=0.05)
    person = asyncio.create_task(send(budget, chat=USER))
    await asyncio.sleep(0.01)
    with pytest.raises(Skipped):  # and never in front of somebody who must send
        await send(budget, "sendChatAction", chat=USER, optional=True, wait=1.0)
    await person


async def test_a_burst_of_people_gets_no_429_from_a_strict_flood_limit(tmp_path: Any) -> None:
    tg = FakeTelegram(TOKEN, flood_limit_per_second=30, chat_limit_per_second=1.0)
    async with tg, running_bot(make_settings(tg, tmp_path)):
        people = [USER + i for i in range(45)]
        for uid in people:
            tg.user_message(uid, text="hello")
        await tg.wait_for(lambda: all(tg.messages(uid) for uid in people), timeout=30)
    assert tg.flood_429_count == 0


class ShortTokens:
    """The shared budget of other processes: says how long each bucket it lacks needs."""

    def __init__(self) -> None:
        self.asked = 0
        self.short: dict[str, float] = {}

    async def take(self, buckets: Any) -> dict[str, float]:
        self.asked += 1
        await asyncio.sleep(0)  # a database round trip
        keys = {bucket.key for bucket in buckets}
        return {key: wait for key, wait in self.short.items() if key in keys}


async def test_progress_edits_do_not_ask_the_shared_budget_while_it_is_known_to_be_short() -> None:
    clock = Clock()
    budget = SendBudget(30, clock=clock)
    tokens = ShortTokens()
    budget.share(tokens)  # type: ignore[arg-type]
    tokens.short = {"optional": 0.5}
    with pytest.raises(Skipped):
        await send(budget, "editMessageText", chat=1, optional=True)
    assert tokens.asked == 1
    # Other processes took the progress share: until it refills, edits are skipped at once.
    for chat in range(2, 50):
        with pytest.raises(Skipped):
            await send(budget, "editMessageText", chat=chat, optional=True)
    assert tokens.asked == 1
    await send(budget, chat=2)  # a person's answer still asks, and goes
    assert tokens.asked == 2
    clock.now = 0.5
    tokens.short = {}
    await send(budget, "editMessageText", chat=3, optional=True)  # refilled: asked, and sent
    assert tokens.asked == 3
    # Many edits at one moment: one asks, the rest give way instead of queueing on the database.
    clock.now = 5.0
    tokens.short = {"optional": 0.1}
    results = await asyncio.gather(
        *(send(budget, "editMessageText", chat=c, optional=True) for c in range(100, 120)),
        return_exceptions=True,
    )
    assert all(isinstance(r, Skipped) for r in results) and tokens.asked == 4
