"""Shared fixtures: a fake Bot API server on 127.0.0.1 and the real bot running against it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.application import App, build_application
from bot.container import Services
from bot.serve import ALLOWED_UPDATES
from bot.settings import Settings
from services.model.jobs import Job, JobState
from tests.fakes.fal import FakeFal
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_photo, make_video

# A PostgreSQL server the tests may create databases on (CI starts one); without it, the
# PostgreSQL variants of tests are skipped on a developer's machine, and fail in CI.
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "")
# The database the end-to-end tests run the bot on: SQLite, the embedded default, unless
# TEST_DATABASE=postgres, when each test gets a fresh database on that server (CI runs the
# end-to-end suites both ways).
ON_POSTGRES = os.environ.get("TEST_DATABASE", "sqlite") == "postgres"

T = TypeVar("T")

# Provider keys of the fake muapi and fal the text-to-video and story tests run on.
MUAPI_KEY = "muapi-test-key-words-0123456789"
FAL_KEY = "fal-test-key-words-0123:secret"

# Shaped like a real BotFather token so that redaction is exercised for real.
TOKEN = "7000000001:AAHk3vTestTokenForTheFakeServer0123456"
USER = 1001
OTHER_USER = 2002


def make_settings(tg: FakeTelegram, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings that point the bot at the fake server and a temp database, tuned for speed."""
    values: dict[str, Any] = {
        "telegram_bot_token": tg.token,
        "telegram_api_url": tg.root,
        "database_url": database_url_for(tmp_path),
        "data_dir": tmp_path / "data",
        "poll_interval_seconds": 0.2,
        "poller_tick_seconds": 0.1,
        "status_edit_interval_seconds": 0,
        "local_studio_height": 144,
        "lease_seconds": 3,
        "job_timeout_seconds": 60,
        "download_retry_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from synchronous code called inside the test's loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def _postgres_required() -> None:
    if not POSTGRES:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set TEST_POSTGRES_URL")
        pytest.skip("no PostgreSQL server: set TEST_POSTGRES_URL to run these")


# The PostgreSQL databases made for the running test, by its tmp_path: one per test, however
# many times it starts the bot, and dropped when it ends.
_test_databases: dict[Path, str] = {}


def database_url_for(tmp_path: Path) -> str:
    """The database a test's bot runs on: ``bot.db`` in its folder, or (``TEST_DATABASE=
    postgres``) a fresh PostgreSQL database of its own."""
    if not ON_POSTGRES:
        return f"sqlite:///{tmp_path / 'bot.db'}"
    if tmp_path not in _test_databases:
        _postgres_required()
        _test_databases[tmp_path] = _in_thread(_create_database())
    return _test_databases[tmp_path]


def db_rows(tmp_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows straight from the test's database, as another process would see them."""
    if not ON_POSTGRES:
        with contextlib.closing(sqlite3.connect(tmp_path / "bot.db")) as conn:
            return [tuple(row) for row in conn.execute(sql, params)]
    from services.storage.postgres import dollar_params

    async def fetch() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(database_url_for(tmp_path))
        try:
            return [tuple(row) for row in await conn.fetch(dollar_params(sql), *params)]
        finally:
            await conn.close()

    return _in_thread(fetch())


sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="about SQLite's own file and locks")


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    while _test_databases:
        _, url = _test_databases.popitem()
        _in_thread(_drop_database(url))


async def _create_database() -> str:
    name = f"studio_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(POSTGRES)._replace(path=f"/{name}"))


async def _drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def running_bot(settings: Settings) -> AsyncIterator[App]:
    """Run the bot as ``run_polling`` would (same order of hooks), inside the test's loop."""
    app = build_application(settings)
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=ALLOWED_UPDATES)
    await app.start()
    try:
        yield app
    finally:
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        assert app.post_shutdown is not None
        await app.post_shutdown(app)


def services_of(app: App) -> Services:
    """The wired services of a running bot."""
    services: Services = app.bot_data["services"]
    return services


async def delivered_jobs(app: App, user_id: int, count: int = 1, timeout: float = 10) -> list[Job]:
    """The user's delivered jobs, once there are ``count``: the video is in the chat a moment
    before its job is recorded as delivered."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = await services_of(app).jobs.for_user(user_id, [JobState.DELIVERED])
        if len(jobs) >= count or time.monotonic() > deadline:
            return jobs
        await asyncio.sleep(0.05)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """A fresh fake Bot API server."""
    async with FakeTelegram(TOKEN) as fake:
        yield fake


@pytest.fixture(scope="session")
def photo_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real 640×480 JPEG."""
    path = make_photo(tmp_path_factory.mktemp("media") / "photo.jpg", 640, 480)
    return path.read_bytes()


@pytest.fixture(scope="session")
def portrait_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real 360×640 JPEG."""
    path = make_photo(tmp_path_factory.mktemp("media") / "portrait.jpg", 360, 640)
    return path.read_bytes()


def buttons_of(tg: FakeTelegram, chat_id: int, message_id: int) -> dict[str, str]:
    """Label → callback data of a bot message's buttons."""
    msg = tg.message(chat_id, message_id)
    assert msg is not None
    return {b["text"]: b["callback_data"] for b in msg.buttons if "callback_data" in b}


def data_for(tg: FakeTelegram, chat_id: int, message_id: int, action: str) -> str:
    """The callback data of the button with that action (``go``, ``x``, ``dur``…)."""
    for data in buttons_of(tg, chat_id, message_id).values():
        parts = data.split(":")
        if len(parts) >= 3 and parts[2] == action:
            return data
    raise AssertionError(f"no {action!r} button on message {message_id}")


async def reply_to(tg: FakeTelegram, message: dict[str, Any], timeout: float = 30) -> int:
    """Wait for the bot's reply to a user message; return the reply's message id."""

    chat_id = int(message["chat"]["id"])

    def found() -> int | None:
        for m in tg.messages(chat_id):
            if m.reply_to and m.reply_to.get("message_id") == message["message_id"]:
                return m.message_id
        return None

    result: int = await tg.wait_for(found, timeout=timeout)
    return result


@asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database on the ``TEST_POSTGRES_URL`` server; dropped after."""
    _postgres_required()
    url = await _create_database()
    try:
        yield url
    finally:
        await _drop_database(url)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The URL of a fresh PostgreSQL database (see ``fresh_postgres``)."""
    async with fresh_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An open, migrated database of each kind the bot runs on."""
    from services.storage.connect import open_database

    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'bot.db'}"
        else:
            url = await stack.enter_async_context(fresh_postgres())
        db = open_database(url)
        await db.open()
        stack.push_async_callback(db.close)
        yield db


@pytest.fixture(scope="session")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2 s MP4 with sound: what the fake providers hand back as a made video."""
    return make_video(tmp_path_factory.mktemp("made") / "out.mp4", seconds=2.0, audio=True)


@pytest.fixture
async def muapi(output: Path) -> AsyncIterator[FakeMuapi]:
    """A fake muapi with the ``MUAPI_KEY`` account, making each video in one poll."""
    async with FakeMuapi(api_key=MUAPI_KEY) as fake:
        fake.scenario = Scenario(output=output, polls_before_done=1)
        yield fake


@pytest.fixture
async def fal(output: Path) -> AsyncIterator[FakeFal]:
    """A fake fal with the ``FAL_KEY`` account, making each video in one poll."""
    async with FakeFal(key=FAL_KEY) as fake:
        fake.scenario = Scenario(output=output, polls_before_done=1)
        yield fake
