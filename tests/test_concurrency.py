"""Nobody waits behind somebody else, and each person's own messages stay in order."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from telegram import Chat, Message, Update, User

from bot.ordering import PerPersonOrder, order_key
from tests.conftest import OTHER_USER, USER, make_settings, reply_to, running_bot
from tests.fakes.telegram import FakeTelegram


def _update(update_id: int, user_id: int) -> Update:
    user = User(user_id, "Someone", is_bot=False)
    chat = Chat(user_id, Chat.PRIVATE)
    message = Message(update_id, date=None, chat=chat, from_user=user, text="hi")  # type: ignore[arg-type]
    return Update(update_id, message=message)


async def test_people_run_side_by_side_and_each_person_in_order() -> None:
    processor = PerPersonOrder(8)
    log: list[str] = []
    release_first = asyncio.Event()

    async def handle(name: str, wait: asyncio.Event | None = None) -> None:
        log.append(f"start {name}")
        if wait is not None:
            await wait.wait()
        log.append(f"end {name}")

    a1 = asyncio.create_task(processor.process_update(_update(1, 1), handle("a1", release_first)))
    a2 = asyncio.create_task(processor.process_update(_update(2, 1), handle("a2")))
    b1 = asyncio.create_task(processor.process_update(_update(3, 2), handle("b1")))
    await asyncio.wait_for(b1, 2)  # the other person is not held up by a1
    assert log == ["start a1", "start b1", "end b1"]
    assert not a2.done()  # the same person's next update waits for their first
    release_first.set()
    await asyncio.wait_for(asyncio.gather(a1, a2), 2)
    assert log[3:] == ["end a1", "start a2", "end a2"]
    assert processor.waiting == 0


async def test_a_busy_person_holds_only_their_own_turn() -> None:
    # 20 updates from one person queue behind each other without using up the slots that
    # other people's updates run in.
    processor = PerPersonOrder(2)
    gate = asyncio.Event()

    async def slow() -> None:
        await gate.wait()

    queued = [
        asyncio.create_task(processor.process_update(_update(i, 1), slow())) for i in range(20)
    ]
    done = asyncio.Event()

    async def quick() -> None:
        done.set()

    other = asyncio.create_task(processor.process_update(_update(99, 2), quick()))
    await asyncio.wait_for(other, 2)
    assert done.is_set()
    gate.set()
    await asyncio.wait_for(asyncio.gather(*queued), 5)


def test_updates_are_ordered_by_person_then_chat() -> None:
    assert order_key(_update(1, 5)) == order_key(_update(2, 5)) != order_key(_update(3, 6))


async def test_a_slow_file_fetch_for_one_person_does_not_delay_another(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    # Telegram's file servers answer from afar: getFile and the download take 1 s each.
    tg.file_latency = 1.0
    async with running_bot(make_settings(tg, tmp_path)):
        started = time.monotonic()
        first = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        second = tg.user_message(OTHER_USER, photo=photo_bytes, caption="zoom out")
        await asyncio.gather(reply_to(tg, first), reply_to(tg, second))
        both = time.monotonic() - started
    # One after another would take two fetches (4 s and more); side by side, about one.
    assert both < 3.5, both


async def test_one_at_a_time_when_configured(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    # CONCURRENT_UPDATES=1 is the plain sequential mode (the benchmarks' baseline): it works,
    # and it shows what the default saves.
    tg.file_latency = 1.0
    async with running_bot(make_settings(tg, tmp_path, concurrent_updates=1)):
        started = time.monotonic()
        first = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        second = tg.user_message(OTHER_USER, photo=photo_bytes, caption="zoom out")
        await asyncio.gather(reply_to(tg, first), reply_to(tg, second))
        both = time.monotonic() - started
    assert both >= 4.0, both
