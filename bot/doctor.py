"""``python -m bot doctor``: check everything the bot needs, and say what to fix."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from bot.settings import Settings
from services.errors import MediaError
from services.media import ffmpeg as media
from services.media.selftest import run_self_test
from services.providers.http import is_out_of_credit
from services.storage.connect import open_database


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str


async def _ffmpeg() -> Check:
    try:
        tools = media.default_tools()
        proc = await asyncio.create_subprocess_exec(
            tools.ffmpeg,
            "-hide_banner",
            "-version",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    except (MediaError, OSError, TimeoutError) as exc:
        return Check("ffmpeg", False, f"not usable ({exc}); reinstall the package (imageio-ffmpeg)")
    version = out.decode(errors="replace").split("\n", 1)[0].removeprefix("ffmpeg version ")
    probe = "ffprobe found" if tools.ffprobe else "no ffprobe: probing with ffmpeg itself"
    found = f"{tools.ffmpeg} ({tools.source} {version.split(' ')[0]}); {probe}"
    if proc.returncode != 0:
        return Check("ffmpeg", False, f"{found}: it does not run")
    # Every filter graph the bot uses, on tiny media: a build that refuses one is named here.
    failed = [check for check in await run_self_test(tools) if not check.ok]
    if failed:
        lost = "; ".join(f"{c.feature} would fail ({c.detail})" for c in failed)
        return Check(
            "ffmpeg",
            False,
            f"{found}. {lost}. Use a supported ffmpeg (see the README), "
            "or FFMPEG_BINARY=bundled for the one the package ships.",
        )
    return Check("ffmpeg", True, f"{found}; every feature's filters ran")


async def _database(settings: Settings) -> Check:
    db = open_database(settings.database_url)
    try:
        await db.open()
        version = await db.schema_version()
        async with db.transaction() as tx:  # proves the file is writable, then undoes nothing
            await tx.execute(
                "INSERT INTO alerts (key, sent_at) VALUES ('doctor', 0) "
                "ON CONFLICT (key) DO UPDATE SET sent_at = 0"
            )
            await tx.execute("DELETE FROM alerts WHERE key = 'doctor'")
    except Exception as exc:
        return Check(
            "database",
            False,
            f"{settings.database_label}: {exc}. Check DATABASE_URL "
            "(the folder's permissions, or the server, user and password).",
        )
    finally:
        await db.close()
    kind = "PostgreSQL" if db.dialect == "postgres" else "SQLite"
    label = settings.database_label
    return Check("database", True, f"{kind} {label}, schema version {version}, writable")


def _data_dir(settings: Settings) -> Check:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=settings.data_dir):
            pass
    except OSError as exc:
        return Check("data folder", False, f"{settings.data_dir}: {exc.strerror}. Check DATA_DIR.")
    free = os.statvfs(settings.data_dir)
    free_gb = free.f_bavail * free.f_frsize / 1e9
    ok = free_gb >= 1
    hint = "" if ok else " — less than 1 GB free: results may not fit"
    return Check("data folder", ok, f"{settings.data_dir}, {free_gb:.1f} GB free{hint}")


async def _telegram(settings: Settings, client: httpx.AsyncClient) -> Check:
    token = settings.telegram_bot_token.get_secret_value()
    try:
        response = await client.get(f"{settings.telegram_api_url}/bot{token}/getMe")
    except httpx.HTTPError as exc:
        return Check(
            "telegram",
            False,
            f"cannot reach {settings.telegram_api_url} ({type(exc).__name__}). "
            "Check the network or TELEGRAM_API_URL.",
        )
    if response.status_code in (401, 404):
        return Check("telegram", False, "the token was rejected. Get a fresh one from @BotFather.")
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    if not body.get("ok"):
        return Check("telegram", False, f"getMe answered HTTP {response.status_code}")
    return Check("telegram", True, f"@{body['result'].get('username')} (getMe ok)")


async def _webhook(settings: Settings, client: httpx.AsyncClient) -> Check:
    """With a webhook: the listen address is free, and what Telegram last saw of the URL."""
    listen = settings.webhook_listen
    host, _, port = listen.rpartition(":")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]") or "0.0.0.0", int(port)))  # noqa: S104
    except OSError as exc:
        return Check(
            "webhook",
            False,
            f"cannot listen on {listen} ({exc.strerror}): is the bot already running? "
            "Check WEBHOOK_LISTEN.",
        )
    token = settings.telegram_bot_token.get_secret_value()
    try:
        response = await client.get(f"{settings.telegram_api_url}/bot{token}/getWebhookInfo")
        info = response.json().get("result") or {}
    except (httpx.HTTPError, ValueError) as exc:
        return Check("webhook", False, f"getWebhookInfo failed ({type(exc).__name__})")
    url = settings.telegram_webhook_url
    pending = info.get("pending_update_count", 0)
    if info.get("last_error_message"):
        return Check(
            "webhook",
            False,
            f"Telegram could not reach {url}: {info['last_error_message']}. Check the TLS proxy "
            f"in front of {listen}; {pending} updates wait.",
        )
    where = "set" if info.get("url") == url else "set at the next start"
    return Check("webhook", True, f"{url} ({where}); {listen} is free; {pending} updates wait")


async def _provider(settings: Settings, client: httpx.AsyncClient) -> Check:
    name = settings.provider
    if name == "local":
        return Check("provider", True, "local studio (no key needed)")
    try:
        if name == "muapi" and settings.muapi_api_key is not None:
            response = await client.get(
                f"{settings.muapi_base_url}/api/v1/account/balance",
                headers={"x-api-key": settings.muapi_api_key.get_secret_value()},
            )
        elif settings.fal_key is not None:
            # Asking for an upload slot is authenticated and costs nothing.
            response = await client.post(
                f"{settings.fal_rest_url}/storage/upload/initiate",
                params={"storage_type": "fal-cdn-v3"},
                json={"content_type": "text/plain", "file_name": "doctor.txt"},
                headers={"Authorization": f"Key {settings.fal_key.get_secret_value()}"},
            )
        else:
            return Check("provider", False, f"{name} has no key set")
    except httpx.HTTPError as exc:
        return Check("provider", False, f"cannot reach {name} ({type(exc).__name__})")
    if response.status_code == 402 or (
        response.status_code == 403 and is_out_of_credit(response.text)
    ):
        return Check("provider", False, f"{name}: the account is out of credit. Top it up.")
    if response.status_code in (401, 403):
        return Check(
            "provider", False, f"{name} rejected the key. Check it in the provider's dashboard."
        )
    if response.status_code >= 400:
        return Check("provider", False, f"{name} answered HTTP {response.status_code}")
    if name == "muapi":
        # For the operator only: chat users never see the account's balance.
        balance = response.json().get("balance")
        if isinstance(balance, int | float) and balance <= 0:
            return Check("provider", False, "muapi: the account is out of credit. Top it up.")
        return Check("provider", True, f"muapi: key accepted, balance {balance}")
    return Check("provider", True, f"{name}: key accepted")


async def run_doctor(settings: Settings, echo: Callable[[str], object] = print) -> int:
    """Run every check, print the report, return the exit code (0 when all is well)."""
    media.use_ffmpeg(settings.ffmpeg_binary)
    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0)) as client:
        steps: list[Awaitable[Check]] = [
            _ffmpeg(),
            _database(settings),
            _telegram(settings, client),
            _provider(settings, client),
        ]
        if settings.telegram_webhook_url:
            steps.append(_webhook(settings, client))
        checks = [Check("configuration", True, "all variables valid"), _data_dir(settings)]
        checks += [await step for step in steps]
    for check in checks:
        echo(f"{'✓' if check.ok else '✗'} {check.name}: {check.detail}")
    failed = [c.name for c in checks if not c.ok]
    echo("All good." if not failed else f"Fix: {', '.join(failed)}.")
    return 1 if failed else 0
