"""Restarts lose nothing: buttons keep working, killed jobs finish exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from services.model.jobs import JobState
from tests.conftest import (
    TOKEN,
    USER,
    data_for,
    database_url_for,
    db_rows,
    make_settings,
    reply_to,
    running_bot,
    services_of,
)
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_video

ROOT = Path(__file__).resolve().parent.parent
MUAPI_KEY = "muapi-test-key-restart-0123456789"


async def test_buttons_of_a_previous_run_still_work(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    settings = make_settings(tg, tmp_path)
    async with running_bot(settings):
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        card_id = await reply_to(tg, msg)
    async with running_bot(settings) as app:
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "dur"))
        await tg.wait_for(lambda: "10 s" in (tg.message(USER, card_id).text_plain or ""))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(
            lambda: "Done" in (tg.message(USER, card_id).text_plain or ""), timeout=60
        )
        job = await services_of(app).jobs.by_card(USER, card_id)
        assert job is not None and job.state == JobState.DELIVERED
    # A button of a job that no longer exists answers that it has expired.
    async with running_bot(settings):
        query = tg.press_button(USER, card_id, "j:999:go", strict=False)
        answer = await tg.wait_for(lambda: tg.callback_answers.get(query))
        assert "expired" in (answer.text or "")


class BotProcess:
    """``python -m bot`` as a real process, pointed at the fake server."""

    def __init__(self, tg: FakeTelegram, tmp_path: Path, *args: str, log: str = "bot.log") -> None:
        self.args = list(args)  # a role: "ingress", "worker"
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("TELEGRAM_", "MUAPI", "FAL"))
            },
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_URL": tg.root,
            "DATABASE_URL": database_url_for(tmp_path),
            "DATA_DIR": str(tmp_path / "data"),
            "POLL_INTERVAL_SECONDS": "0.3",
            "POLLER_TICK_SECONDS": "0.1",
            "STATUS_EDIT_INTERVAL_SECONDS": "0",
            "LEASE_SECONDS": "2",
            "LOCAL_STUDIO_HEIGHT": "360",
            "LOG_LEVEL": "DEBUG",
        }
        self.cwd = tmp_path
        self.log = tmp_path / log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                *self.args,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    async def kill9(self) -> None:
        assert self.proc is not None
        # The whole process group, ffmpeg included: nothing of the old run survives.
        os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                await self.kill9()


# What a person is told instead of getting the video when a process died at the one moment
# that cannot be repeated safely: mid-submit (never sent again, not charged) or mid-upload to
# Telegram (it may be in the chat already: a button sends it again).
UNSURE = ("won't send it again", "did not confirm it arrived")


def outcomes(tg: FakeTelegram, user: int = USER) -> list[object]:
    """The videos, and the notices of a job whose one unrepeatable step a kill cut short."""
    notices = [m for m in tg.messages(user) if any(s in (m.text_plain or "") for s in UNSURE)]
    return [*tg.videos(user), *notices]


async def assert_one_outcome(tg: FakeTelegram, users: tuple[int, ...] = (USER,)) -> None:
    """For each user, exactly one video or one notice, however long a duplicate takes."""
    await tg.wait_for(lambda: all(outcomes(tg, user) for user in users), timeout=90)
    await asyncio.sleep(2.0)  # give a duplicate every chance to show up before counting
    assert [len(outcomes(tg, user)) for user in users] == [1] * len(users), tg.dump()


@pytest.mark.parametrize("kill_after", [0.0, 0.4, 1.2], ids=["at-confirm", "early", "rendering"])
async def test_kill_9_mid_job_then_restart_delivers_exactly_once(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, kill_after: float
) -> None:
    bot = BotProcess(tg, tmp_path)
    await bot.start()
    try:
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in 10 seconds")
        card_id = await reply_to(tg, msg)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await asyncio.sleep(kill_after)
        await bot.kill9()
        assert tg.videos(USER) == [] or kill_after > 0

        await bot.start()
        await assert_one_outcome(tg)
    finally:
        await bot.stop()
    log = bot.log.read_text(errors="replace")
    assert TOKEN not in log
    assert "Traceback" not in log, log[-3000:]


async def test_sigterm_leaves_work_resumable_and_the_next_start_finishes_it(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    bot = BotProcess(tg, tmp_path)
    bot.env["LOCAL_STUDIO_HEIGHT"] = "720"  # a render long enough to be interrupted
    await bot.start()
    try:
        msg = tg.user_message(USER, photo=photo_bytes, caption="pan left 10 seconds")
        card_id = await reply_to(tg, msg)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(
            lambda: "Rendering" in (tg.message(USER, card_id).text_plain or ""), timeout=30
        )
        assert bot.proc is not None
        bot.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.proc.wait(), 20) == 0  # a clean, prompt exit
        assert tg.videos(USER) == []
        data = tmp_path / "data"
        # Nothing half-written is left where a finished file would be.
        assert not list(data.glob("studio/*/output.mp4")) and not list(data.glob("jobs/*/*.part"))
        # Everything the bot wrote is private to its user.
        for path in data.rglob("*"):
            assert path.stat().st_mode & 0o077 == 0, path
        await bot.start()
        await tg.wait_for(lambda: tg.videos(USER), timeout=90)
        await asyncio.sleep(1.0)
        assert len(tg.videos(USER)) == 1
    finally:
        await bot.stop()
    log = bot.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert TOKEN not in log


# Loaded by the bot process through PYTHONPATH: the process kills itself the moment the
# job's credits are written, before anything else happens. With the hold and the move to the
# queue in one transaction, nothing of it survives; with two commits the credits would stay
# held for a job that never started.
_KILL_AT_RESERVE = """
import os, signal
from services.storage import db

def _dying(original):
    async def execute(self, sql, params=()):
        result = await original(self, sql, params)
        writes = sql.lstrip().upper().startswith("INSERT") and "INTO ledger" in sql
        if writes and ("'reserve'" in sql or (len(params) > 2 and params[2] == "reserve")):
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return execute

db.SqliteTransaction.execute = _dying(db.SqliteTransaction.execute)
db.SqliteDatabase.execute = _dying(db.SqliteDatabase.execute)
try:
    from services.storage import postgres
except ImportError:
    pass
else:
    postgres.PostgresTransaction.execute = _dying(postgres.PostgresTransaction.execute)
    postgres.PostgresDatabase.execute = _dying(postgres.PostgresDatabase.execute)
"""


async def test_kill_9_while_credits_are_held_strands_nothing(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(_KILL_AT_RESERVE)
    bot = BotProcess(tg, tmp_path)
    plain_path = bot.env["PYTHONPATH"]
    bot.env["PYTHONPATH"] = f"{hooks}{os.pathsep}{plain_path}"
    await bot.start()
    try:
        msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
        card_id = await reply_to(tg, msg)
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        assert bot.proc is not None
        assert await asyncio.wait_for(bot.proc.wait(), 30) == -signal.SIGKILL
        held = db_rows(tmp_path, "SELECT entry, amount FROM ledger")
        [(state,)] = db_rows(tmp_path, "SELECT state FROM jobs")
        assert held == [] and state == "draft"  # nothing held, nothing queued

        bot.env["PYTHONPATH"] = plain_path
        await bot.start()
        # The card still works: the press goes through and charges once.
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=90)
        await asyncio.sleep(1.0)
        assert len(tg.videos(USER)) == 1
    finally:
        await bot.stop()
    entries = [e for (e,) in db_rows(tmp_path, "SELECT entry FROM ledger ORDER BY id")]
    assert entries == ["reserve", "keep"]


async def test_kill_9_mid_story_resumes_it_and_never_makes_a_shot_twice(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes, portrait_bytes: bytes
) -> None:
    bot = BotProcess(tg, tmp_path)
    await bot.start()

    def shots() -> list[tuple[int, str]]:
        rows = db_rows(
            tmp_path, "SELECT step, state FROM jobs WHERE parent_id IS NOT NULL ORDER BY step, id"
        )
        return [(int(step), str(state)) for step, state in rows]

    try:
        album = [("photo", photo_bytes), ("photo", portrait_bytes), ("photo", photo_bytes)]
        sent = tg.user_album(USER, album, caption="a day out")
        card_id = await reply_to(tg, sent[0])
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        # Killed once the first shot is made and before the story is joined.
        await tg.wait_for(lambda: "delivered" in {s for _, s in shots()}, timeout=60)
        await bot.kill9()
        made_before = [step for step, state in shots() if state == "delivered"]
        assert made_before and len(made_before) < 3

        await bot.start()
        await tg.wait_for(lambda: tg.videos(USER), timeout=120)
        await asyncio.sleep(1.5)  # a duplicate would show up now
        assert len(tg.videos(USER)) == 1, tg.dump()
    finally:
        await bot.stop()
    # Every shot was made exactly once: the ones made before the kill were not made again.
    assert [step for step, state in shots() if state == "delivered"] == [0, 1, 2]
    assert len(shots()) == 3, shots()
    log = bot.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


async def test_kill_9_mid_story_from_words_never_sends_or_bills_a_shot_twice(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "shot.mp4", seconds=2.0)
    async with FakeMuapi(api_key=MUAPI_KEY) as muapi:
        # The first shot is quick, the others take a while: the kill finds them at the provider.
        muapi.next_scenarios = [Scenario(output=clip, polls_before_done=1)]
        muapi.scenario = Scenario(output=clip, polls_before_done=12)
        bot = BotProcess(tg, tmp_path)
        bot.env.update(MUAPI_API_KEY=MUAPI_KEY, MUAPI_BASE_URL=muapi.root)
        await bot.start()

        def shot_rows() -> list[tuple[int, str]]:
            rows = db_rows(
                tmp_path,
                "SELECT step, state FROM jobs WHERE parent_id IS NOT NULL ORDER BY step, id",
            )
            return [(int(step), str(state)) for step, state in rows]

        try:
            card_id = await reply_to(tg, tg.user_message(USER, text="a 3-shot story about a kite"))
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            await tg.wait_for(
                lambda: (
                    "delivered" in {s for _, s in shot_rows()}
                    and len(muapi.accepted_submits()) == 3
                ),
                timeout=60,
            )
            await bot.kill9()
            await bot.start()
            await tg.wait_for(lambda: tg.videos(USER), timeout=120)
            await asyncio.sleep(1.5)
            assert len(tg.videos(USER)) == 1, tg.dump()
        finally:
            await bot.stop()
        # Each shot went to the provider once; the shots running at the kill were followed on.
        assert len(muapi.accepted_submits()) == 3
        assert sorted(shot_rows()) == [(0, "delivered"), (1, "delivered"), (2, "delivered")]
        entries = db_rows(
            tmp_path, "SELECT entry, SUM(amount) FROM ledger GROUP BY entry ORDER BY entry"
        )
        assert entries == [("keep", 300), ("reserve", 300)]
