"""Beyond one process: workers and an ingress sharing one PostgreSQL, provider callbacks.

Every case runs on a fresh database on the PostgreSQL server named by ``BENCH_POSTGRES_URL``
(else ``TEST_POSTGRES_URL``), with the real bot as processes (``python -m bot worker``,
``python -m bot ingress``, or ``python -m bot`` for all in one) against the fake Telegram and
the fake muapi (each status request answered in 50 ms).

(a) Callbacks. 10,000 jobs already running on muapi are seeded with their next polls spread over
    one fallback interval, as a worker in its steady state would have them. While they merely
    run, the worker's CPU over a window is the cost of the slow fallback polling. Then the fake
    finishes 2,000 of them, 200 a second, and at that moment POSTs muapi's callback to the
    worker's ``/callbacks/muapi/<job>/<secret>`` (the URL the submit would have given, with the
    job's secret stored in ``provider_data`` as the submit stores it). Measured for each: from
    the fake marking it done to the fake answering the poll that finds it done (the bot's first
    step of delivery: it then writes ``downloading`` and hands the job to its delivery lane).
    Baseline: the same without ``PUBLIC_URL`` (no callbacks, polled every interval).
(b) One poll round over 10,000 running jobs, all due at once, by one worker with the default
    ``POLL_INTERVAL_SECONDS``: it must end within that interval. Baseline: polling one job after
    another (``MAX_CONCURRENT_POLLS=1``), run for a while and extrapolated.
(c) People's answers while workers are busy: one ingress and two workers on one database,
    1,000 running jobs polled back to back (``POLL_INTERVAL_SECONDS=1``, so the workers never
    rest); people send a message ten times a second; the time until the ingress answers each.
    Baseline: the same load on the all-in-one process on SQLite, the set-up a split replaces.
(d) Throughput: N queued jobs (a photo each) inserted at once while 1, 2 or 4 workers wait; each
    is uploaded, submitted, done at its first poll, downloaded (a 1 s 160x120 MP4) and sent to
    the fake Bot API. Jobs per second from the insert to the last ``sendVideo``; every job must
    be delivered exactly once. Telegram's 30 sends a second (shared by every process on the
    database) would cap any number of workers at a few jobs a second, so here the send budget
    is raised (``TELEGRAM_SENDS_PER_SECOND=10000``) to measure the workers themselves; the
    per-chat pacing stays. Baseline: the all-in-one process on SQLite.

    python -m bench.scale          # 10,000 jobs (a, b), 1,000 (c), 150 (d); about 13 minutes
    python -m bench.scale --quick  # 1,000 jobs (a, b), 300 (c), 60 (d)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.common import (
    JOB_FIELDS,
    BotRunner,
    Proc,
    Row,
    fresh_postgres,
    percentile,
    postgres_server,
    save,
    seed_jobs_pg,
    seed_running_jobs,
    wait_until,
    workdir,
)
from bot.settings import Settings
from services.production.poller import CALLBACK_SLOWDOWN
from services.providers.callbacks import CALLBACK_SECRET, new_secret
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_photo, make_video

KEY = "bench-muapi-key-0000"
TOKEN = "123456:BENCHbenchBENCHbenchBENCHbench12345"
PUBLIC = "https://studio.bench.test"
MODEL, ENDPOINT = "muapi-kling-2.1-pro", "kling-v2.1-pro-i2v"
PROVIDER_LATENCY = 0.05
# The interval an operator gets without setting one: the figure (b) must meet.
POLL_INTERVAL = float(Settings.model_fields["poll_interval_seconds"].default)
FIRST_USER = 3_000_000
ASKER = 6_000_000
ASK_EVERY = 0.1
SETTLE = 3.0  # seconds after the first poll before a CPU window starts
TARGET_ACK_P99 = 0.25
# Seeded jobs never time out or count as stalled while a case runs.
CALM = {"JOB_TIMEOUT_SECONDS": "3600", "STALL_POLLS": "1000000", "LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Sizes:
    running: int  # (a), (b)
    completions: int  # (a): how many of them finish
    rate: float  # (a): finished a second
    window: float  # (a): seconds of CPU measurement while the jobs merely run
    baseline_cap: float  # (b): seconds the one-at-a-time baseline runs
    busy_jobs: int  # (c)
    ask_window: float  # (c): seconds during which people write
    queued: int  # (d)
    workers: tuple[int, ...] = (1, 2, 4)


FULL = Sizes(10_000, 2_000, 200.0, 20.0, 25.0, 1_000, 20.0, 150)
QUICK = Sizes(1_000, 300, 100.0, 8.0, 5.0, 300, 8.0, 60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def db_name(case: str) -> str:
    return f"bench_scale_{os.getpid()}_{case}"


def env_for(tg: FakeTelegram, muapi: FakeMuapi, database_url: str, **extra: str) -> dict[str, str]:
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": tg.root,
        "MUAPI_API_KEY": KEY,
        "MUAPI_BASE_URL": muapi.root,
        "DATABASE_URL": database_url,
        **CALM,
        **extra,
    }


def job_row(uid: int, status_id: int, state: str, due: float, **fields: Any) -> dict[str, Any]:
    now = time.time()
    row: dict[str, Any] = {
        "user_id": uid, "chat_id": uid, "kind": "animate", "state": state, "provider": "muapi",
        "model": MODEL, "prompt": "zoom in", "params": {"motion": "zoom_in"}, "cost": 45,
        "language": "en", "input_path": None, "status_message_id": status_id,
        "external_id": None, "provider_data": {}, "provider_status": None, "created_at": now,
        "updated_at": now, "submitted_at": None, "next_poll_at": due,
    }  # fmt: skip
    row.update(fields)
    return row


async def pg_value(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def listening(port: int, timeout: float) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port} after {timeout:.0f} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


async def stop_all(bots: Iterable[BotRunner]) -> None:
    await asyncio.gather(*(bot.stop() for bot in bots))


def tails(bots: Iterable[BotRunner]) -> str:
    return "\n".join(f"--- {bot.log.name}\n{bot.log_tail()}" for bot in bots)


# --- (a) callbacks ----------------------------------------------------------------------------


@dataclass
class CallbackRun:
    cpu_per_min: float  # CPU seconds a minute while the jobs merely run
    polls_per_s: float  # status polls a second in that window
    latencies: list[float]  # completion → the poll that finds the job done
    unpicked: int = 0  # polled only: not picked up by the deadline (counted at the deadline)
    accepted: int = 0  # callbacks the worker accepted (its /metrics)
    ignored: int = 0  # callbacks for a job a poll had already moved on


def callbacks_counted(metrics: str, outcome: str) -> int:
    """Callbacks the worker's ``/metrics`` counts with this outcome."""
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("studio_provider_callbacks_total{")
            and f'outcome="{outcome}"' in line
        )
    )


async def callback_case(sizes: Sizes, callbacks: bool, folder: Path) -> CallbackRun:
    output = make_video(folder / "out.mp4", seconds=1.0, width=160, height=120)
    interval = POLL_INTERVAL * (CALLBACK_SLOWDOWN if callbacks else 1)
    port = free_port()
    async with (
        FakeTelegram(token=TOKEN) as tg,
        FakeMuapi(api_key=KEY) as muapi,
        fresh_postgres(db_name("cb" if callbacks else "nocb")) as url,
    ):
        muapi.poll_delay = PROVIDER_LATENCY
        # Running until the benchmark says it is done (``finished``), whatever the polls.
        scenario = Scenario(stall=True, output=output)
        now = time.time()
        rows = []
        for i in range(sizes.running):
            uid = FIRST_USER + i
            data: dict[str, Any] = {"inputs": {}}
            if callbacks:
                data[CALLBACK_SECRET] = new_secret()  # as the submit stores it
            rows.append(
                job_row(uid, tg.bot_message(uid, "Working on it…"), "running",
                        now + interval * i / sizes.running,  # steady state: spread over one
                        external_id=muapi.seed_job(scenario, ENDPOINT), provider_data=data,
                        provider_status="processing", submitted_at=now)
            )  # fmt: skip
        await seed_jobs_pg(url, rows)
        conn = await asyncpg.connect(url)
        try:
            found = await conn.fetch("SELECT id, external_id FROM jobs")
            ids = {r["external_id"]: r["id"] for r in found}
        finally:
            await conn.close()
        secret = {r["external_id"]: r["provider_data"].get(CALLBACK_SECRET) for r in rows}
        extra = {"PUBLIC_URL": PUBLIC, "WEBHOOK_LISTEN": f"127.0.0.1:{port}"} if callbacks else {}
        bot = BotRunner(folder, role="worker", log=f"worker-{'cb' if callbacks else 'poll'}.log",
                        **env_for(tg, muapi, url, **extra))  # fmt: skip
        proc = await bot.start()
        try:
            await wait_until(lambda: muapi.answered_polls, 60, what="the worker's first poll")
            if callbacks:
                await listening(port, 30)
            await asyncio.sleep(SETTLE)
            # The jobs merely run: what polling them costs.
            cpu0, polls0, t0 = proc.cpu_seconds(), len(muapi.answered_polls), time.monotonic()
            await asyncio.sleep(sizes.window)
            took = time.monotonic() - t0
            cpu = proc.cpu_seconds() - cpu0
            polls = len(muapi.answered_polls) - polls0
            assert not any(j.finished for j in muapi.jobs.values()), "a job ended by itself"
            run = CallbackRun(cpu / took * 60, polls / took, [])
            latencies, accepted, run.unpicked = await complete(
                sizes, muapi, ids, secret, port if callbacks else None, interval
            )
            run.latencies = latencies
            if callbacks:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{port}/metrics") as reply,
                ):
                    metrics = await reply.text()
                run.accepted = callbacks_counted(metrics, "accepted")
                run.ignored = callbacks_counted(metrics, "ignored")
                assert accepted == sizes.completions, f"{accepted} callbacks answered 200"
                assert run.accepted + run.ignored == sizes.completions, (
                    f"the worker counted {run.accepted} accepted and {run.ignored} ignored "
                    f"callbacks of {sizes.completions}"
                )
                assert run.accepted >= 0.9 * sizes.completions, "callbacks mostly not accepted"
            # Every finished job that was picked up, and only those, left ``running``.
            await wait_until_async(
                lambda: pg_value(url, "SELECT COUNT(*) FROM jobs WHERE state <> 'running'"),
                sizes.completions - run.unpicked, 30, "the finished jobs to leave running",
                most=sizes.completions,  # polled only, the late ones are still coming
            )  # fmt: skip
            bad = await pg_value(
                url,
                "SELECT COUNT(*) FROM jobs WHERE state NOT IN "
                "('running', 'downloading', 'delivering', 'delivered')",
            )
            assert bad == 0, f"{bad} jobs failed"
            return run
        except Exception:
            print(bot.log_tail())
            raise
        finally:
            await bot.stop()


async def wait_until_async(
    query: Any, expected: int, timeout: float, what: str, most: int | None = None
) -> None:
    """Wait until ``query()`` reaches ``expected``; more than ``most`` (or ``expected``) fails."""
    deadline = time.monotonic() + timeout
    while (value := await query()) < expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {value}, expected {expected}")
        await asyncio.sleep(0.2)
    ceiling = expected if most is None else most
    assert value <= ceiling, f"{what}: {value}, more than {ceiling}"


async def complete(
    sizes: Sizes,
    muapi: FakeMuapi,
    ids: dict[str, int],
    secret: dict[str, str | None],
    port: int | None,
    interval: float,
) -> tuple[list[float], int, int]:
    """Finish ``sizes.completions`` jobs at ``sizes.rate`` a second (calling back when ``port``
    is given); return each one's completion → pick-up time, the callbacks answered 200, and how
    many were not picked up by the deadline (polled only)."""
    chosen = random.Random(7).sample(sorted(ids), sizes.completions)
    done_at: dict[str, float] = {}
    answers: list[int] = []
    sends: set[asyncio.Task[None]] = set()

    async def call_back(session: aiohttp.ClientSession, rid: str, body: bytes) -> None:
        url = f"http://127.0.0.1:{port}/callbacks/muapi/{ids[rid]}/{secret[rid]}"
        try:
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as reply:
                answers.append(reply.status)
        except aiohttp.ClientError:
            answers.append(0)

    seen = len(muapi.answered_polls)
    picked: dict[str, float] = {}
    unpicked = 0

    def scan() -> None:
        nonlocal seen
        polls = muapi.answered_polls
        for at, rid in polls[seen:]:
            if rid in done_at and rid not in picked and at >= done_at[rid]:
                picked[rid] = at
        seen = len(polls)

    # One session with a bounded pool, as a provider's sender would; a session per callback
    # (as the fake's own call-back helper does) costs the benchmark more than the bot.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        start = time.monotonic()
        for k, rid in enumerate(chosen):
            if (wait := start + k / sizes.rate - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            job = muapi.jobs[rid]
            job.finished = True
            done_at[rid] = time.monotonic()
            if port is not None:
                raw = muapi._callback_body(job)  # muapi's own callback body
                task = asyncio.create_task(call_back(session, rid, raw))
                sends.add(task)
                task.add_done_callback(sends.discard)
            scan()
        # With callbacks every job must be picked up soon. Polled only, a worker that cannot
        # keep up with its interval falls ever further behind: what is still waiting at the
        # deadline counts with the time it has waited (so that baseline is a lower bound).
        deadline = time.monotonic() + interval * 2 + (60 if port is not None else 30)
        while len(picked) < len(chosen):
            if time.monotonic() > deadline:
                if port is not None:
                    raise AssertionError(
                        f"only {len(picked)} of {len(chosen)} finished jobs were picked up"
                    )
                unpicked = len(chosen) - len(picked)
                print(f"   polled only: {unpicked} jobs not picked up by the deadline", flush=True)
                now = time.monotonic()
                picked.update({rid: now for rid in chosen if rid not in picked})
                break
            await asyncio.sleep(0.05)
            scan()
        await asyncio.gather(*sends)
    latencies = [picked[rid] - done_at[rid] for rid in chosen]
    return latencies, sum(a == 200 for a in answers), unpicked


# --- (b) one round ----------------------------------------------------------------------------


@dataclass
class Round:
    wall: float
    cpu: float
    polled: int
    extrapolated: bool


async def round_case(count: int, concurrency: int | None, cap: float | None, folder: Path) -> Round:
    async with (
        FakeTelegram(token=TOKEN) as tg,
        FakeMuapi(api_key=KEY) as muapi,
        fresh_postgres(db_name("round")) as url,
    ):
        muapi.poll_delay = PROVIDER_LATENCY
        scenario = Scenario(polls_before_done=10**9)
        rows = [
            job_row(uid, tg.bot_message(uid, "Working on it…"), "running", 0.0,
                    external_id=muapi.seed_job(scenario, ENDPOINT), provider_data={"inputs": {}},
                    provider_status="processing", submitted_at=time.time())
            for uid in range(FIRST_USER, FIRST_USER + count)
        ]  # fmt: skip
        await seed_jobs_pg(url, rows)
        seeded_at = time.time()
        extra = {"MAX_CONCURRENT_POLLS": str(concurrency)} if concurrency else {}
        bot = BotRunner(folder, role="worker", log=f"round-{concurrency or 'default'}.log",
                        **env_for(tg, muapi, url, **extra))  # fmt: skip
        proc = await bot.start()
        conn = await asyncpg.connect(url)
        try:
            await wait_until(lambda: muapi.answered_polls, 60, every=0.002, what="the first poll")
            started = muapi.answered_polls[0][0] - PROVIDER_LATENCY
            cpu0 = proc.cpu_seconds()
            while True:
                # Written back with its next due time: that job's poll is complete.
                done = await conn.fetchval(
                    "SELECT COUNT(*) FROM jobs WHERE state = 'running' AND next_poll_at > $1",
                    seeded_at,
                )
                now = time.monotonic()
                if done >= count or (cap is not None and now - started > cap):
                    break
                await asyncio.sleep(0.05)
            wall, cpu = now - started, proc.cpu_seconds() - cpu0
            if done < count:  # capped: the rest at the rate seen so far
                scale = count / max(done, 1)
                return Round(wall * scale, cpu * scale, done, extrapolated=True)
            return Round(wall, cpu, done, extrapolated=False)
        except Exception:
            print(bot.log_tail())
            raise
        finally:
            await conn.close()
            await bot.stop()


# --- (c) answers while the workers are busy ---------------------------------------------------


@dataclass
class Busy:
    acks: list[float]
    polls_per_s: float  # status polls a second while people wrote: how busy the workers were
    front_cpu: float  # % of one core, the process that answers (ingress, or all in one)
    edits_per_s: float  # status edits Telegram received a second meanwhile (progress lines)


async def busy_case(sizes: Sizes, workers: int, folder: Path) -> Busy:
    """``workers`` > 0: an ingress and that many workers on PostgreSQL; 0: all in one, SQLite."""
    run = folder / f"busy-{workers}"
    run.mkdir()
    async with FakeTelegram(token=TOKEN) as tg, FakeMuapi(api_key=KEY) as muapi:
        muapi.poll_delay = PROVIDER_LATENCY
        scenario = Scenario(polls_before_done=10**9)
        users = range(FIRST_USER, FIRST_USER + sizes.busy_jobs)
        fast = {"POLL_INTERVAL_SECONDS": "1"}  # every job due again at once: never at rest
        if workers == 0:
            await seed_running_jobs(run / "bot.db", tg, muapi, users, scenario, 0.0)
            bots = [BotRunner(run, **env_for(tg, muapi, f"sqlite:///{run / 'bot.db'}", **fast))]
            return await ask_while_busy(sizes, tg, muapi, bots, bots[0])
        async with fresh_postgres(db_name("busy")) as url:
            rows = [
                job_row(uid, tg.bot_message(uid, "Working on it…"), "running", 0.0,
                        external_id=muapi.seed_job(scenario, ENDPOINT),
                        provider_data={"inputs": {}}, provider_status="processing",
                        submitted_at=time.time())
                for uid in users
            ]  # fmt: skip
            await seed_jobs_pg(url, rows)
            front = BotRunner(run, role="ingress", log="ingress.log", **env_for(tg, muapi, url))
            bots = [front] + [
                BotRunner(run, role="worker", log=f"worker-{n}.log",
                          **env_for(tg, muapi, url, **fast))
                for n in range(workers)
            ]  # fmt: skip
            return await ask_while_busy(sizes, tg, muapi, bots, front)


async def ask_while_busy(
    sizes: Sizes, tg: FakeTelegram, muapi: FakeMuapi, bots: list[BotRunner], front: BotRunner
) -> Busy:
    for bot in bots:
        await bot.start()
    try:
        await wait_until(lambda: tg.calls_to("getUpdates"), 60, what="the bot to take updates")
        await wait_until(lambda: muapi.answered_polls, 60, what="the first poll")
        await asyncio.sleep(SETTLE)
        proc = Proc(front.pid)
        cpu0, polls0, t0 = proc.cpu_seconds(), len(muapi.answered_polls), time.monotonic()
        edits0 = len(tg.calls_to("editMessageText"))
        asked: dict[int, float] = {}
        while time.monotonic() - t0 < sizes.ask_window:
            uid = ASKER + len(asked)
            asked[uid] = time.monotonic()
            tg.user_message(uid, text="hello")
            await asyncio.sleep(ASK_EVERY)
        took = time.monotonic() - t0
        polls = len(muapi.answered_polls) - polls0
        cpu = proc.cpu_seconds() - cpu0
        edits = len(tg.calls_to("editMessageText")) - edits0
        await wait_until(
            lambda: all(tg.messages(uid) for uid in asked), 120, what="answers to every user"
        )
    except Exception:
        print(tails(bots))
        raise
    finally:
        await stop_all(bots)
    first: dict[int, float] = {}
    for call in tg.calls_to("sendMessage"):
        chat = call.params.get("chat_id")
        if chat in asked and chat not in first:
            first[chat] = call.at
    assert polls > 0, "the workers were not polling while people wrote"
    acks = [first[uid] - at for uid, at in asked.items()]
    return Busy(acks, polls / took, cpu / took * 100, edits / took)


# --- (d) throughput ---------------------------------------------------------------------------


@dataclass
class Throughput:
    jobs: int
    wall: float
    sends_per_job: float  # Bot API sends and edits per job
    cpu: list[float] = field(default_factory=list)  # per process

    @property
    def rate(self) -> float:
        return self.jobs / self.wall


async def throughput_case(count: int, workers: int, folder: Path) -> Throughput:
    """``workers`` > 0: that many workers on PostgreSQL; 0: the all-in-one process on SQLite."""
    run = folder / f"tp-{workers}"
    run.mkdir()
    photo = make_photo(run / "photo.jpg", 640, 480)
    output = make_video(run / "out.mp4", seconds=1.0, width=160, height=120)
    async with FakeTelegram(token=TOKEN) as tg, FakeMuapi(api_key=KEY) as muapi:
        muapi.scenario = Scenario(polls_before_done=0, output=output)  # done at its first poll
        users = list(range(FIRST_USER, FIRST_USER + count))
        # Submitted jobs are first polled after min(interval, 2 s): 1 s here, as in bench.burst.
        extra = {"POLL_INTERVAL_SECONDS": "1", "TELEGRAM_SENDS_PER_SECOND": "10000"}
        if workers == 0:
            database = f"sqlite:///{run / 'bot.db'}"
            bots = [BotRunner(run, **env_for(tg, muapi, database, **extra))]
            return await drive(tg, muapi, bots, users, photo, database)
        async with fresh_postgres(db_name(f"tp{workers}")) as url:
            bots = [
                BotRunner(run, role="worker", log=f"worker-{n}.log",
                          **env_for(tg, muapi, url, **extra))
                for n in range(workers)
            ]  # fmt: skip
            return await drive(tg, muapi, bots, users, photo, url)


async def drive(
    tg: FakeTelegram,
    muapi: FakeMuapi,
    bots: list[BotRunner],
    users: list[int],
    photo: Path,
    database: str,
) -> Throughput:
    procs = [await bot.start() for bot in bots]
    try:
        # Every process has asked Telegram who it is, then opened the database and started.
        await wait_until(lambda: len(tg.calls_to("getMe")) >= len(bots), 60, what="the start")
        await asyncio.sleep(2.0)
        rows = [
            job_row(uid, tg.bot_message(uid, "Submitted"), "queued", 0.0,
                    input_path=str(photo))
            for uid in users
        ]  # fmt: skip
        cpu0 = [p.cpu_seconds() for p in procs]
        calls0 = len(tg.calls)
        t0 = time.monotonic()
        if database.startswith("sqlite:///"):
            seed_sqlite(Path(database.removeprefix("sqlite:///")), rows)
        else:
            await seed_jobs_pg(database, rows)
        await wait_until(
            lambda: len(tg.calls_to("sendVideo")) >= len(users), 300, every=0.05,
            what="every video",
        )  # fmt: skip
        ended = tg.calls_to("sendVideo")[-1].at
        cpu = [p.cpu_seconds() - c for p, c in zip(procs, cpu0, strict=True)]
        await asyncio.sleep(1.0)  # a duplicate would come now
        sends = [
            c for c in tg.calls[calls0:] if c.method.startswith(("send", "edit"))
            and c.method != "sendChatAction"
        ]  # fmt: skip
    except Exception:
        print(tails(bots))
        raise
    finally:
        await stop_all(bots)
    twice = [uid for uid in users if len(tg.videos(uid)) != 1]
    assert not twice, f"{len(twice)} people got other than one video (e.g. {twice[:3]})"
    assert len(tg.calls_to("sendVideo")) == len(users), "a video was sent twice"
    assert len(muapi.accepted_submits()) == len(users), "a job was submitted twice"
    return Throughput(len(users), ended - t0, len(sends) / len(users), cpu)


def seed_sqlite(db_path: Path, rows: list[dict[str, Any]]) -> None:
    """The same rows into the all-in-one process's SQLite database (its schema is made)."""
    import json

    now = time.time()
    with sqlite3.connect(db_path, timeout=30) as conn:
        conn.executemany(
            "INSERT INTO users (id, chat_id, first_name, language, settings, created_at, "
            "last_seen_at) VALUES (?, ?, 'Ann', 'en', '{}', ?, ?)",
            [(r["user_id"], r["chat_id"], now, now) for r in rows],
        )
        conn.executemany(
            f"INSERT INTO jobs ({', '.join(JOB_FIELDS)}) "
            f"VALUES ({', '.join('?' for _ in JOB_FIELDS)})",
            [
                tuple(
                    json.dumps(r[f]) if f in ("params", "provider_data") else r[f]
                    for f in JOB_FIELDS
                )
                for r in rows
            ],
        )


# --- all of it --------------------------------------------------------------------------------


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000


async def run(quick: bool) -> list[Row]:
    postgres_server()  # a clear stop before anything starts
    sizes = QUICK if quick else FULL
    rows: list[Row] = []
    n = f"{sizes.running:,}"
    with workdir("scale") as folder:
        # (a)
        a_dir, b_dir = folder / "cb", folder / "poll"
        a_dir.mkdir()
        b_dir.mkdir()
        cb = await callback_case(sizes, True, a_dir)
        poll = await callback_case(sizes, False, b_dir)
        late = sum(t > 5 for t in cb.latencies)
        case = f"{n} running, {sizes.completions:,} finish at {sizes.rate:g}/s"
        note = f"callbacks: {cb.accepted:,} accepted, {cb.ignored} already picked up; {late} > 5 s"
        rows += [
            Row("scale", case, "done → picked up p50", percentile(cb.latencies, 50), "s",
                percentile(poll.latencies, 50), note=note),
            Row("scale", case, "done → picked up p99", percentile(cb.latencies, 99), "s",
                percentile(poll.latencies, 99), "< 2 s", percentile(cb.latencies, 99) < 2),
            Row("scale", case, "done → picked up, slowest", max(cb.latencies), "s",
                max(poll.latencies),
                note=f"baseline: {poll.unpicked} not picked up within "
                f"{POLL_INTERVAL * 2 + 30:g} s, counted at that" if poll.unpicked else ""),
            Row("scale", f"{n} running, none finish", "worker CPU a minute (fallback polling)",
                cb.cpu_per_min, "s", poll.cpu_per_min,
                note=f"{cb.polls_per_s:.0f} vs {poll.polls_per_s:.0f} polls/s; "
                f"{sizes.window:g} s window"),
        ]  # fmt: skip
        print(
            f"(a) pick-up p50 {percentile(cb.latencies, 50):.2f} s p99 "
            f"{percentile(cb.latencies, 99):.2f} s max {max(cb.latencies):.1f} s (polled: p50 "
            f"{percentile(poll.latencies, 50):.2f} s p99 {percentile(poll.latencies, 99):.2f} s);"
            f" CPU {cb.cpu_per_min:.1f} s/min ({poll.cpu_per_min:.1f} polled every "
            f"{POLL_INTERVAL:g} s)",
            flush=True,
        )
        # (b)
        bot = await round_case(sizes.running, None, None, folder)
        naive = await round_case(sizes.running, 1, sizes.baseline_cap, folder)
        case = f"{n} running, one worker"
        rows += [
            Row("scale", case, "poll round wall time", bot.wall, "s", naive.wall,
                f"< {POLL_INTERVAL:g} s (POLL_INTERVAL_SECONDS)", bot.wall < POLL_INTERVAL,
                "baseline extrapolated" if naive.extrapolated else ""),
            Row("scale", case, "poll round CPU", bot.cpu, "s", naive.cpu),
        ]  # fmt: skip
        print(f"(b) round {bot.wall:.1f} s, CPU {bot.cpu:.1f} s (one at a time {naive.wall:.0f} s)")
        # (c)
        split = await busy_case(sizes, 2, folder)
        alone = await busy_case(sizes, 0, folder)
        case = f"{sizes.busy_jobs:,} running, polled back to back"
        rows += [
            Row("scale", case, "answer p50 (ingress + 2 workers, PG)", ms(split.acks, 50), "ms",
                ms(alone.acks, 50)),
            Row("scale", case, "answer p99 (ingress + 2 workers, PG)", ms(split.acks, 99), "ms",
                ms(alone.acks, 99), f"< {TARGET_ACK_P99 * 1000:.0f} ms",
                percentile(split.acks, 99) < TARGET_ACK_P99,
                f"{len(split.acks)} messages; {split.polls_per_s:.0f} vs "
                f"{alone.polls_per_s:.0f} polls/s, {split.edits_per_s:.0f} vs "
                f"{alone.edits_per_s:.0f} status edits/s"),
            Row("scale", case, "CPU of the answering process", split.front_cpu,
                "% of one core", alone.front_cpu),
        ]  # fmt: skip
        print(
            f"(c) answers p99 {ms(split.acks, 99):.0f} ms split ({split.polls_per_s:.0f} polls/s)"
            f", {ms(alone.acks, 99):.0f} ms all in one ({alone.polls_per_s:.0f} polls/s)",
            flush=True,
        )
        # (d)
        base = await throughput_case(sizes.queued, 0, folder)
        one: Throughput | None = None
        for workers in sizes.workers:
            got = await throughput_case(sizes.queued, workers, folder)
            one = one or got
            per_worker = got.rate / workers / one.rate
            note = f"{got.sends_per_job:.1f} sends a job"
            if workers > (os.cpu_count() or 1):
                note += f"; {workers} workers on {os.cpu_count()} cores"
            rows += [
                Row("scale", f"{sizes.queued} short jobs, {workers} worker(s)", "jobs per second",
                    got.rate, "/s", base.rate, note=note),
                Row("scale", f"{sizes.queued} short jobs, {workers} worker(s)",
                    "per-worker efficiency (jobs/s per worker ÷ 1 worker's)", per_worker * 100,
                    "%", None),
            ]  # fmt: skip
            print(
                f"(d) {workers} worker(s): {got.rate:.1f} jobs/s ({per_worker:.0%} each; all in "
                f"one on SQLite {base.rate:.1f} jobs/s)",
                flush=True,
            )
    save(
        "scale",
        rows,
        {
            "quick": quick,
            "running": sizes.running,
            "completions": sizes.completions,
            "completion_rate": sizes.rate,
            "busy_jobs": sizes.busy_jobs,
            "queued": sizes.queued,
            "poll_interval_s": POLL_INTERVAL,
            "provider_latency_s": PROVIDER_LATENCY,
        },
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
