"""``python -m bot doctor``: a clear report, and a non-zero exit when something is wrong."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.doctor import run_doctor
from tests.conftest import TOKEN, make_settings
from tests.fakes.fal import FakeFal
from tests.fakes.muapi import FakeMuapi
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent


async def report(settings: object) -> tuple[int, str]:
    lines: list[str] = []
    code = await run_doctor(settings, lines.append)  # type: ignore[arg-type]
    return code, "\n".join(lines)


async def test_all_good_with_the_local_studio(tg: FakeTelegram, tmp_path: Path) -> None:
    code, out = await report(make_settings(tg, tmp_path))
    assert code == 0, out
    for name in ("configuration", "data folder", "ffmpeg", "database", "telegram", "provider"):
        assert f"✓ {name}" in out
    assert "@studio_test_bot" in out and "All good." in out and TOKEN not in out


async def test_a_rejected_token_and_an_unreachable_telegram_are_named(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    wrong = make_settings(
        tg, tmp_path, telegram_bot_token="7000000001:AAWrongTokenWrongTokenWrongToken12"
    )
    code, out = await report(wrong)
    assert code == 1 and "✗ telegram: the token was rejected" in out and "@BotFather" in out
    gone = make_settings(tg, tmp_path, telegram_api_url="http://127.0.0.1:9")
    code, out = await report(gone)
    assert code == 1 and "✗ telegram: cannot reach" in out


async def test_provider_keys_are_checked_with_a_cheap_authenticated_call(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with FakeMuapi(api_key="good-key-123456") as muapi, FakeFal(key="fal-good:key") as fal:
        ok = make_settings(tg, tmp_path, muapi_api_key="good-key-123456", muapi_base_url=muapi.root)
        assert (await report(ok))[0] == 0
        bad = make_settings(tg, tmp_path, muapi_api_key="bad-key-123456", muapi_base_url=muapi.root)
        code, out = await report(bad)
        assert code == 1 and "✗ provider: muapi rejected the key" in out
        assert "bad-key-123456" not in out
        muapi.balance = 0
        code, out = await report(ok)
        assert code == 1 and "out of credit" in out
        fal_ok = make_settings(
            tg, tmp_path, fal_key="fal-good:key", fal_queue_url=fal.root, fal_rest_url=fal.root
        )
        assert (await report(fal_ok))[0] == 0
        fal_bad = make_settings(
            tg, tmp_path, fal_key="fal-bad:key", fal_queue_url=fal.root, fal_rest_url=fal.root
        )
        assert "✗ provider: fal rejected the key" in (await report(fal_bad))[1]
        fal.locked = True  # fal's 403 "User is locked": out of money, not a bad key
        assert "✗ provider: fal: the account is out of credit" in (await report(fal_ok))[1]
        fal.locked = False
        assert muapi.accepted_submits() == [] and fal.accepted_submits() == []  # nothing billed


async def test_an_unwritable_database_is_reported(tg: FakeTelegram, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    code, out = await report(
        make_settings(tg, tmp_path, database_url=f"sqlite:///{blocked}/bot.db")
    )
    assert code == 1 and "✗ database" in out and "DATABASE_URL" in out


async def test_the_command_line_exits_non_zero_and_never_prints_the_token(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MUAPI", "FAL"))},
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": "http://127.0.0.1:9",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "DATA_DIR": str(tmp_path / "data"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "doctor",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 1, text
    assert "✓ database" in text and "✗ telegram" in text and TOKEN not in text


async def test_an_ffmpeg_that_refuses_a_graph_is_named_with_the_feature_it_breaks(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    # An ffmpeg build that refuses one filter the bot uses (as Debian 12's 5.1 once refused the
    # music graph): the doctor names the feature, not just "ffmpeg is fine".
    from services.media import ffmpeg as media

    real = media.locate_ffmpeg().ffmpeg
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$*" in *aecho*) echo "Cannot select channel layout" >&2; exit 1;; esac\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    try:
        code, out = await report(make_settings(tg, tmp_path, ffmpeg_binary=str(wrapper)))
    finally:
        media.use_ffmpeg(None)
    assert code == 1, out
    line = next(x for x in out.splitlines() if "ffmpeg" in x.split(":")[0])
    assert line.startswith("✗ ffmpeg") and "generated music would fail" in line, out
    assert "animate a photo" not in line  # the graphs that work are not blamed
