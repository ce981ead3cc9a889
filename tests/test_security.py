"""Security promises as tests: secrets stay secret, SQL is parameterised, paths are ours."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import TOKEN, USER, data_for, make_settings, reply_to, running_bot
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_photo, make_video
from tests.test_restart import BotProcess

ROOT = Path(__file__).resolve().parent.parent
KEY = "muapi-live-key-0f3a9c2e7b"
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b")
# The only names ever put into SQL text: lists of "?" marks, column lists taken from the fixed
# set of job columns, and job states as literals from the JobState enum (never from input).
ALLOWED_INTERPOLATION = {"marks", "assignments", "names", "update", "among"}


async def test_a_real_process_at_debug_level_never_logs_or_sends_a_secret(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    out = make_video(tmp_path / "out.mp4", seconds=1.0)
    async with FakeMuapi(api_key=KEY) as muapi:
        muapi.scenario = Scenario(output=out, polls_before_done=1)
        bot = BotProcess(tg, tmp_path)
        bot.env.update(MUAPI_API_KEY=KEY, MUAPI_BASE_URL=muapi.root, LOG_LEVEL="DEBUG")
        await bot.start()
        try:
            msg = tg.user_message(USER, photo=photo_bytes, caption="zoom in")
            card_id = await reply_to(tg, msg)
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            await tg.wait_for(lambda: tg.videos(USER), timeout=60)
        finally:
            await bot.stop()
        log = bot.log.read_text(errors="replace")
        assert TOKEN not in log and KEY not in log
        assert "HTTP Request" not in log  # httpx's per-request lines (with URLs) are silenced
        for message in tg.messages(USER):
            assert TOKEN not in (message.text or "") + (message.caption or "")
            assert KEY not in (message.text or "") + (message.caption or "")
        assert muapi.requests_containing(TOKEN) == []
        assert muapi.requests_containing("/file/bot") == []


def test_all_sql_is_parameterised() -> None:
    offenders = []
    for path in (ROOT / "services").rglob("*.py"):
        source = path.read_text()
        for match in re.finditer(r'f"([^"\n]*)"', source):
            literal = match.group(1)
            if not SQL.search(literal):
                continue
            names = set(re.findall(r"\{(\w+)\}", literal))
            if names - ALLOWED_INTERPOLATION:
                offenders.append(f"{path.name}: {literal}")
    assert offenders == []


async def test_hostile_file_names_never_become_paths(tg: FakeTelegram, tmp_path: Path) -> None:
    image = make_photo(tmp_path / "x.png", 320, 240, fmt="png").read_bytes()
    settings = make_settings(tg, tmp_path)
    async with running_bot(settings):
        for name in ("../../../../tmp/evil.png", "/etc/passwd.png", "..\\..\\x.png", "a\0b.png"):
            msg = tg.user_message(
                USER, document=image, document_name=name, mime_type="image/png", caption="zoom in"
            )
            await reply_to(tg, msg)
    stored = list((settings.data_dir / "inbound").iterdir())
    assert len(stored) == 4
    for path in stored:
        assert re.fullmatch(r"[0-9a-f]{32}\.png", path.name), path.name
    assert not (Path("/tmp") / "evil.png").exists()
    assert all(p.resolve().is_relative_to(tmp_path) for p in tmp_path.rglob("*"))


def test_the_reliability_document_cites_tests_that_exist() -> None:
    doc = (ROOT / "docs" / "reliability.md").read_text()
    cited = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc)
    assert len(cited) >= 15  # the doc names its proofs; each must be a real test
    current = ""
    for line in doc.splitlines():
        for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)`", line):
            current = path or current
            assert f"def {name}(" in (ROOT / current).read_text(), f"{current}::{name}"
