"""Start-up configuration: valid values load, invalid ones stop with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings, describe_error
from tests.conftest import TOKEN

ROOT = Path(__file__).resolve().parent.parent


def run_bot(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MUAPI_", "FAL_"))
    }
    clean.update(env)
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        env=clean,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_token_exits_2_with_one_line_saying_where_to_get_one(tmp_path: Path) -> None:
    result = run_bot({}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "TELEGRAM_BOT_TOKEN" in lines[0] and "@BotFather" in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_values_exit_2_naming_the_variable_without_echoing_the_token(
    tmp_path: Path,
) -> None:
    result = run_bot(
        {"TELEGRAM_BOT_TOKEN": TOKEN, "POLL_INTERVAL_SECONDS": "soon", "TIMEZONE": "Mars/Base"},
        tmp_path,
    )
    assert result.returncode == 2
    assert "POLL_INTERVAL_SECONDS" in result.stderr and "TIMEZONE" in result.stderr
    assert TOKEN not in result.stderr and "Traceback" not in result.stderr


def test_malformed_token_is_refused_without_being_printed(tmp_path: Path) -> None:
    result = run_bot({"TELEGRAM_BOT_TOKEN": "not-a-token-secret-value"}, tmp_path)
    assert result.returncode == 2
    assert "BotFather" in result.stderr and "not-a-token-secret-value" not in result.stderr


def test_every_documented_variable_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": "http://127.0.0.1:8081/",
        "TELEGRAM_LOCAL_MODE": "true",
        "DATABASE_URL": "sqlite:////var/lib/bot/bot.db",
        "DATA_DIR": "/var/lib/bot/media",
        "MUAPI_BASE_URL": "http://127.0.0.1:9000",
        "FAL_QUEUE_URL": "http://127.0.0.1:9001",
        "FAL_REST_URL": "http://127.0.0.1:9002",
        "POLL_INTERVAL_SECONDS": "7.5",
        "JOB_TIMEOUT_SECONDS": "900",
        "DAILY_CREDITS": "250",
        "TIMEZONE": "Europe/Berlin",
        "ADMIN_USER_IDS": "1, 2",
        "ALLOWED_USER_IDS": "3 4,5",
        "LOG_LEVEL": "debug",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.telegram_api_url == "http://127.0.0.1:8081"
    assert s.telegram_local_mode and s.upload_limit == 2_000_000_000
    assert s.database_path == Path("/var/lib/bot/bot.db")
    assert s.data_dir == Path("/var/lib/bot/media")
    assert s.poll_interval_seconds == 7.5 and s.job_timeout_seconds == 900
    assert s.daily_credits == 250 and s.timezone == "Europe/Berlin"
    assert s.admin_user_ids == [1, 2] and s.allowed_user_ids == [3, 4, 5]
    assert s.log_level == "DEBUG" and s.provider == "local"


def test_provider_follows_the_keys_unless_chosen() -> None:
    base = {"telegram_bot_token": TOKEN, "_env_file": None}
    assert Settings(**base).provider == "local"  # type: ignore[arg-type]
    assert Settings(**base, fal_key="k").provider == "fal"  # type: ignore[arg-type]
    assert Settings(**base, fal_key="k", muapi_api_key="m").provider == "muapi"  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as err:
        Settings(**base, video_provider="fal")  # type: ignore[arg-type]
    assert "FAL_KEY" in describe_error(err.value)


def test_relative_database_url_and_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("TELEGRAM_"):
            monkeypatch.delenv(key)
    (tmp_path / ".env").write_text(
        f"TELEGRAM_BOT_TOKEN={TOKEN}\nDATABASE_URL=sqlite:///state/x.db\n"
    )
    s = Settings()  # type: ignore[call-arg]
    assert s.telegram_bot_token.get_secret_value() == TOKEN
    assert s.database_path == Path("state/x.db")
    assert TOKEN not in repr(s)


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in readme]
    assert missing == []


def test_a_worker_polls_more_jobs_at_once_than_a_process_that_answers_people() -> None:
    base = {"telegram_bot_token": TOKEN, "_env_file": None}
    unset = Settings(**base)  # type: ignore[arg-type]
    assert unset.poll_concurrency(answers_people=True) == 48
    assert unset.poll_concurrency(answers_people=False) == 128
    blank = Settings(**base, max_concurrent_polls="")  # type: ignore[arg-type]
    assert blank.poll_concurrency(answers_people=False) == 128  # "MAX_CONCURRENT_POLLS=" is unset
    chosen = Settings(**base, max_concurrent_polls=10)  # type: ignore[arg-type]
    assert chosen.poll_concurrency(answers_people=True) == 10
    assert chosen.poll_concurrency(answers_people=False) == 10
