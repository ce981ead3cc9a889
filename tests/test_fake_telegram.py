"""Tests of the fake Telegram Bot API server itself, driven by a real PTB Bot and httpx."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, CommandHandler, ContextTypes

from tests.fakes.telegram import FakeTelegram

USER = 42


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def make_bot(tg: FakeTelegram, token: str | None = None) -> Bot:
    return Bot(token or tg.token, base_url=tg.api_url, base_file_url=tg.file_url)


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with make_bot(tg) as ptb_bot:
        yield ptb_bot


async def test_get_me(bot: Bot, tg: FakeTelegram) -> None:
    me = await bot.get_me()
    assert me.id == tg.bot_id
    assert me.is_bot
    assert me.username == "studio_test_bot"
    assert tg.calls_to("getMe")


async def test_wrong_token_and_unknown_method(tg: FakeTelegram) -> None:
    with pytest.raises(InvalidToken):
        await make_bot(tg, "999:wrong").get_me()
    async with httpx.AsyncClient() as client:
        resp = await client.post(f"{tg.api_url}{tg.token}/noSuchMethod")
        assert resp.status_code == 404
        assert resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        resp = await client.post(f"{tg.api_url}999:bad/getMe")
        assert resp.status_code == 401
        assert resp.json()["description"] == "Unauthorized"


async def test_get_updates_offset_long_poll_and_redelivery(bot: Bot, tg: FakeTelegram) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=0.3) == ()
    assert time.monotonic() - started >= 0.25

    sent = tg.user_message(USER, text="/start")
    first = await bot.get_updates(timeout=1)
    assert [u.message.text for u in first] == ["/start"]
    assert first[0].message.message_id == sent["message_id"]
    assert first[0].message.entities[0].type == "bot_command"

    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [first[0].update_id]

    assert await bot.get_updates(offset=first[0].update_id + 1, timeout=0) == ()
    assert await bot.get_updates(timeout=0) == ()

    waiter = asyncio.create_task(bot.get_updates(offset=first[0].update_id + 1, timeout=5))
    await asyncio.sleep(0.1)
    tg.user_message(USER, text="later")
    woke = await asyncio.wait_for(waiter, 2)
    assert [u.message.text for u in woke] == ["later"]

    tg.redeliver(first[0].update_id)
    duplicate = await bot.get_updates(offset=woke[0].update_id + 1, timeout=0)
    assert [u.update_id for u in duplicate] == [first[0].update_id]


async def test_send_and_edit_message(bot: Bot, tg: FakeTelegram) -> None:
    tg.user_message(USER, text="hi")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go:1")]])
    msg = await bot.send_message(
        USER, "<b>Hello</b>", parse_mode=ParseMode.HTML, reply_markup=keyboard
    )
    assert msg.text == "Hello"
    assert msg.entities[0].type == "bold"
    assert msg.from_user.id == tg.bot_id

    await bot.edit_message_text("Step 2", chat_id=USER, message_id=msg.message_id)
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("Step 2", chat_id=USER, message_id=msg.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=999)

    stored = tg.message(USER, msg.message_id)
    assert stored is not None
    assert stored.text == "Step 2"
    assert stored.reply_markup is None
    assert [rev.text for rev in stored.history] == ["<b>Hello</b>"]
    assert tg.messages(USER) == [stored]


async def test_validation_errors(bot: Bot, tg: FakeTelegram) -> None:
    tg.user_message(USER, text="hi")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(USER, "x" * 4097)
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.send_message(USER, "1 < 2 <b>x", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.send_message(USER, "<b>unclosed", parse_mode=ParseMode.HTML)
    long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(USER, "hi", reply_markup=long_data)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(777, "hi")
    assert tg.messages(USER) == []


async def test_callback_query_flow(bot: Bot, tg: FakeTelegram) -> None:
    tg.user_message(USER, text="hi")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
    msg = await bot.send_message(USER, "Pick", reply_markup=keyboard)
    query_id = tg.press_button(USER, msg.message_id, "go")
    *_, update = await bot.get_updates(timeout=0)
    assert update.callback_query.data == "go"
    assert update.callback_query.message.reply_markup == keyboard
    await bot.answer_callback_query(query_id, text="ok")
    assert tg.callback_answers[query_id].text == "ok"
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)


async def test_send_video_upload_records_size_and_hash(bot: Bot, tg: FakeTelegram) -> None:
    tg.user_message(USER, text="hi")
    payload = bytes(range(256)) * 4001
    msg = await bot.send_video(
        USER, payload, caption="done", width=640, height=360, duration=3, supports_streaming=True
    )
    assert msg.video.file_size == len(payload)
    assert (msg.video.width, msg.video.duration) == (640, 3)

    (sent,) = tg.videos(USER)
    assert sent.file is not None
    assert sent.file.size == len(payload)
    assert sent.file.sha256 == hashlib.sha256(payload).hexdigest()
    assert sent.supports_streaming is True
    assert tg.calls_to("sendVideo")[0].files["video"].size == len(payload)

    again = await bot.send_video(USER, msg.video.file_id)
    assert again.video.file_unique_id == msg.video.file_unique_id
    assert tg.videos(USER)[1].source == "file_id"


async def test_upload_over_limit_gets_413() -> None:
    async with FakeTelegram(max_upload_bytes=1_000_000) as tg, make_bot(tg) as bot:
        tg.user_message(USER, text="hi")
        with pytest.raises(NetworkError, match="Request Entity Too Large"):
            await bot.send_document(USER, b"\0" * 1_200_000, filename="big.bin")
        assert tg.messages(USER) == []


async def test_get_file_limits_and_download(bot: Bot, tg: FakeTelegram) -> None:
    tg.max_download_bytes = 1000
    big_id, _ = tg.add_file(b"x" * 1001)
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(big_id)
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("nope")

    content = b"\x89PNG fake image bytes" * 20
    file_id, unique_id = tg.add_file(content, file_unique_id="AQADuniq")
    tg_file = await bot.get_file(file_id)
    assert tg_file.file_unique_id == unique_id
    assert tg_file.file_size == len(content)
    assert bytes(await tg_file.download_as_bytearray()) == content
    async with httpx.AsyncClient() as client:
        raw = (
            await client.post(f"{tg.api_url}{tg.token}/getFile", data={"file_id": file_id})
        ).json()
        resp = await client.get(f"{tg.file_url}{tg.token}/{raw['result']['file_path']}")
    assert resp.content == content

    sent = tg.user_message(USER, photo=content, photo_size=(1600, 1200), caption="cat")
    largest = sent["photo"][-1]
    assert len(sent["photo"]) == 3
    assert largest["width"] == 1600
    photo_file = await bot.get_file(largest["file_id"])
    assert bytes(await photo_file.download_as_bytearray()) == content


async def test_fault_injection(bot: Bot, tg: FakeTelegram) -> None:
    tg.user_message(USER, text="hi")
    tg.fail_next(
        "sendMessage",
        error_code=429,
        description="Too Many Requests: retry after 7",
        retry_after=7,
    )
    with pytest.raises(RetryAfter, match="Retry in 7"):
        await bot.send_message(USER, "hello")
    await bot.send_message(USER, "hello")

    tg.drop_connection_next("sendMessage")
    with pytest.raises(NetworkError):
        await bot.send_message(USER, "dropped")
    assert [m.text for m in tg.messages(USER)] == ["hello"]


async def test_flood_control_and_json_body() -> None:
    async with FakeTelegram(flood_limit_per_second=2) as tg, httpx.AsyncClient() as client:
        tg.user_message(USER, text="hi")
        url = f"{tg.api_url}{tg.token}/sendMessage"
        codes = [
            (await client.post(url, json={"chat_id": USER, "text": f"m{i}"})).status_code
            for i in range(3)
        ]
        assert codes == [200, 200, 429]
        assert tg.flood_429_count == 1
        body = (await client.post(url, json={"chat_id": USER, "text": "again"})).json()
        assert body["parameters"]["retry_after"] >= 1


async def test_wait_for(tg: FakeTelegram) -> None:
    assert await tg.wait_for(lambda: 5) == 5
    with pytest.raises(AssertionError, match="condition not met"):
        await tg.wait_for(lambda: tg.messages(USER), timeout=0.1)


async def test_ptb_application_polls_and_replies(tg: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("Welcome!")

    app = Application.builder().token(tg.token).base_url(tg.api_url).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        tg.user_message(USER, text="/start")
        reply = await tg.wait_for(lambda: tg.last_message(USER), timeout=5)
        assert reply.text == "Welcome!"
        await app.updater.stop()
        await app.stop()
    assert tg.pending_updates == 0


async def test_per_chat_limit_allows_a_small_burst_then_one_a_second() -> None:
    async with (
        FakeTelegram(chat_limit_per_second=1.0, chat_burst=3) as tg,
        httpx.AsyncClient() as client,
    ):
        tg.user_message(USER, text="hi")
        tg.user_message(USER + 1, text="hi")
        url = f"{tg.api_url}{tg.token}/sendMessage"

        async def send(chat_id: int) -> httpx.Response:
            return await client.post(url, json={"chat_id": chat_id, "text": "x"})

        codes = [(await send(USER)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = (await send(USER)).json()
        assert refused == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        }
        assert (await send(USER + 1)).status_code == 200  # another chat has its own bucket
        answer = await client.post(
            f"{tg.api_url}{tg.token}/sendChatAction", json={"chat_id": USER, "action": "typing"}
        )
        assert answer.status_code == 429  # chat actions count too
        assert tg.flood_429_by_chat == {USER: 3}
        assert tg.flood_429_count == 3
        await asyncio.sleep(1.05)
        assert (await send(USER)).status_code == 200
        assert (await send(USER)).status_code == 429
        assert len(tg.messages(USER)) == 4  # a refused send posts nothing


async def test_file_latency_applies_to_get_file_and_download() -> None:
    async with FakeTelegram(file_latency=0.2) as tg, make_bot(tg) as bot:
        file_id, _ = tg.add_file(b"bytes" * 100)
        started = time.monotonic()
        tg_file = await bot.get_file(file_id)
        fetched = time.monotonic()
        assert bytes(await tg_file.download_as_bytearray()) == b"bytes" * 100
        downloaded = time.monotonic()
        assert fetched - started >= 0.19
        assert downloaded - fetched >= 0.19
        tg.file_latency = 0
        started = time.monotonic()
        await bot.get_file(file_id)
        assert time.monotonic() - started < 0.15


async def test_a_late_press_cannot_be_answered(bot: Bot, tg: FakeTelegram) -> None:
    tg.user_message(USER, text="hi")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
    msg = await bot.send_message(USER, "Pick", reply_markup=keyboard)
    first = tg.press_button(USER, msg.message_id, "go")
    tg.expire_callbacks()
    second = tg.press_button(USER, msg.message_id, "go")
    with pytest.raises(BadRequest, match="Query is too old and response timeout expired"):
        await bot.answer_callback_query(first)
    await bot.answer_callback_query(second)
    tg.callback_timeout = 0.05
    third = tg.press_button(USER, msg.message_id, "go")
    await asyncio.sleep(0.1)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(third)
    assert set(tg.callback_answers) == {second}
