"""What every benchmark shares: the bot as a real process, /proc readings, and the results files.

The bot runs as ``python -m bot`` in its own process, so its CPU and memory readings are its own
and not the fakes'. The fake Telegram and provider servers (``tests/fakes``) run in the
benchmark's process on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.storage.db import SqliteDatabase
from services.storage.postgres import PostgresDatabase
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Row:
    """One figure, with the naive baseline measured in the same run and the target."""

    bench: str
    case: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    target: str | None = None
    ok: bool | None = None
    note: str = ""


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0–100), nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


class Proc:
    """Readings of one process from /proc: CPU seconds, resident and peak resident memory."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); here the list starts at field 3.
        return (int(fields[11]) + int(fields[12])) / TICK

    def _status(self, key: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB → MB
        return 0.0

    def rss_mb(self) -> float:
        return self._status("VmRSS")

    def peak_mb(self) -> float:
        return self._status("VmHWM")

    def reset_peak(self) -> bool:
        """Start the peak (VmHWM) afresh from now; False where the kernel does not allow it."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True


class PeakSampler:
    """Samples a process's RSS while a block runs; the peak is the larger of this and VmHWM."""

    def __init__(self, proc: Proc, every: float = 0.01) -> None:
        self.proc = proc
        self.every = every
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, self.proc.rss_mb())
            except OSError:
                return
            await asyncio.sleep(self.every)

    async def __aenter__(self) -> PeakSampler:
        self.proc.reset_peak()
        self.peak = self.proc.rss_mb()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with suppress(OSError):
            self.peak = max(self.peak, self.proc.peak_mb())


@contextmanager
def workdir(name: str) -> Iterator[Path]:
    """A fresh folder for one run, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        yield Path(tmp)


class BotRunner:
    """``python -m bot`` as a real process, pointed at the fakes; quiet logging."""

    def __init__(
        self, folder: Path, *, role: str | None = None, log: str = "bot.log", **env: str
    ) -> None:
        keep = {
            k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MUAPI", "FAL"))
        }
        self.env = {
            **keep,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite:///{folder / 'bot.db'}",
            "DATA_DIR": str(folder / "data"),
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.folder = folder
        self.role = role  # "ingress" or "worker"; None runs everything in one process
        self.log = folder / log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> Proc:
        # BENCH_PROFILE=file.prof runs the bot under cProfile, to see where a figure comes from.
        # With several processes, each role writes its own file (``file.prof.ingress``…).
        profile = os.environ.get("BENCH_PROFILE")
        if profile and self.role:
            profile = f"{profile}.{self.role}"
        prefix = ["-m", "cProfile", "-o", profile] if profile else []
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *prefix, "-m", "bot", *([self.role] if self.role else []),
                env=self.env, cwd=self.folder,
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        return Proc(self.proc.pid)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def wait_until(
    predicate: Callable[[], Any], timeout: float, every: float = 0.02, what: str = "condition"
) -> float:
    """Wait for ``predicate``; return the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        await asyncio.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


async def seed_running_jobs(
    db_path: Path,
    tg: FakeTelegram,
    muapi: FakeMuapi,
    user_ids: Iterable[int],
    scenario: Scenario,
    due_at: float,
) -> None:
    """One job per user, already running on the fake muapi as ``scenario`` says, due at
    ``due_at``, each with a status message in the fake Telegram; the schema is the bot's own."""
    database = SqliteDatabase(db_path)
    await database.open()  # the bot's own migrations make the schema
    await database.close()
    now = time.time()
    users, jobs = [], []
    for uid in user_ids:
        status_id = tg.bot_message(uid, "Working on it…")
        users.append((uid, uid, "Ann", "en", "{}", now, now))
        jobs.append(
            (uid, uid, "animate", "running", "muapi", "muapi-kling-2.1-pro", "zoom in",
             json.dumps({"motion": "zoom_in"}), 45, "en", status_id,
             muapi.seed_job(scenario, "kling-v2.1-pro-i2v"), json.dumps({"inputs": {}}),
             "processing", now, now, now, due_at)
        )  # fmt: skip
    with sqlite3.connect(db_path) as conn:
        conn.executemany(
            "INSERT INTO users (id, chat_id, first_name, language, settings, created_at, "
            "last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            users,
        )
        conn.executemany(
            "INSERT INTO jobs (user_id, chat_id, kind, state, provider, model, prompt, params, "
            "cost, language, status_message_id, external_id, provider_data, provider_status, "
            "created_at, updated_at, submitted_at, next_poll_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            jobs,
        )


# --- PostgreSQL -------------------------------------------------------------------------------

JOB_FIELDS = (
    "user_id", "chat_id", "kind", "state", "provider", "model", "prompt", "params", "cost",
    "language", "input_path", "status_message_id", "external_id", "provider_data",
    "provider_status", "created_at", "updated_at", "submitted_at", "next_poll_at",
)  # fmt: skip


def postgres_server() -> str:
    """The server the PostgreSQL benchmarks create their databases on: ``BENCH_POSTGRES_URL``,
    else ``TEST_POSTGRES_URL``; a clear stop when neither is set."""
    url = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    if not url:
        raise SystemExit(
            "set BENCH_POSTGRES_URL (or TEST_POSTGRES_URL) to a PostgreSQL server this benchmark "
            "may create and drop databases on, e.g. postgresql://postgres:postgres@127.0.0.1:5432/"
            "postgres"
        )
    return url


@asynccontextmanager
async def fresh_postgres(name: str) -> AsyncIterator[str]:
    """A new, empty database ``name`` on the benchmark's server (dropped first if a run left it
    behind, and dropped after); yields its URL. The bot's own migrations make the schema."""
    import asyncpg

    server = postgres_server()
    parts = urlsplit(server)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    database = PostgresDatabase(url)
    await database.open()  # the bot's migrations
    await database.close()
    try:
        yield url
    finally:
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def seed_jobs_pg(url: str, jobs: list[dict[str, Any]]) -> None:
    """Users and jobs straight into a migrated PostgreSQL database, one COPY each: ``jobs`` are
    dicts of ``JOB_FIELDS`` (params and provider_data as dicts), one user per distinct user_id."""
    import asyncpg

    now = time.time()
    users = {j["user_id"]: (j["user_id"], j["chat_id"], "Ann", "en", "{}", now, now) for j in jobs}
    records = [
        tuple(
            json.dumps(j[f]) if f in ("params", "provider_data") else j.get(f) for f in JOB_FIELDS
        )
        for j in jobs
    ]
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "users",
            records=list(users.values()),
            columns=["id", "chat_id", "first_name", "language", "settings", "created_at",
                     "last_seen_at"],
        )  # fmt: skip
        await conn.copy_records_to_table("jobs", records=records, columns=list(JOB_FIELDS))
    finally:
        await conn.close()


# --- results ----------------------------------------------------------------------------------


def save(bench: str, rows: list[Row], params: dict[str, Any]) -> Path:
    """Write one benchmark's rows as JSON (results/<bench>.json) and refresh the README table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{bench}.json"
    payload = {
        "bench": bench,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "params": params,
        "rows": [asdict(r) for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    render_readme()
    return path


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu": model, "python": sys.version.split()[0]}


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
ORDER = ["polling", "delivery_memory", "reencode", "stitch", "burst", "crowd", "idle", "scale"]


def render_readme() -> None:
    """Rewrite the results section of bench/README.md from every results/*.json."""
    blocks: list[str] = []
    files = sorted(RESULTS.glob("*.json"), key=lambda p: ([*ORDER, p.stem]).index(p.stem))
    for path in files:
        data = json.loads(path.read_text())
        m = data["machine"]
        blocks.append(
            f"### {data['bench']}\n\n"
            f"Run {data['when']} on {m['cpus']} × {m['cpu']}, Python {m['python']}; "
            f"parameters: `{json.dumps(data['params'])}`\n\n"
            "| case | metric | bot | naive baseline | target | met |\n|---|---|---|---|---|---|"
        )
        for r in data["rows"]:
            met = {True: "yes", False: "**no**", None: ""}[r["ok"]]
            note = f" ({r['note']})" if r["note"] else ""
            blocks[-1] += (
                f"\n| {r['case']} | {r['metric']}{note} | {_fmt(r['value'])} {r['unit']} "
                f"| {_fmt(r['baseline'])} | {r['target'] or ''} | {met} |"
            )
    text = README.read_text() if README.exists() else f"{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{BEGIN}\n\n" + "\n\n".join(blocks) + f"\n\n{END}{tail}")
