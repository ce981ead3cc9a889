"""Provider callbacks: a job moves on within about a second of its callback, however slowly it
is polled; forged, foreign, late and repeated callbacks change nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.model.jobs import JobState
from services.providers.callbacks import CALLBACK_SECRET
from tests.conftest import (
    USER,
    data_for,
    delivered_jobs,
    make_settings,
    reply_to,
    running_bot,
    services_of,
)
from tests.fakes.fal import FakeFal
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.telegram import FakeTelegram
from tests.media_factory import make_video
from tests.test_webhook import free_port

PUBLIC = "https://studio.example.test"
FAL_KEY = "fal-test-key-callbacks:secret"
MUAPI_KEY = "muapi-test-key-callbacks-0123456789"


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("cb") / "out.mp4", seconds=2.0)


@pytest.fixture
async def fal(output: Path) -> AsyncIterator[FakeFal]:
    async with FakeFal(key=FAL_KEY) as fake:
        # Done a second after the submit; a poll would not come for a minute.
        fake.scenario = Scenario(output=output, done_after=1.0)
        yield fake


@pytest.fixture
async def muapi(output: Path) -> AsyncIterator[FakeMuapi]:
    async with FakeMuapi(api_key=MUAPI_KEY) as fake:
        fake.scenario = Scenario(output=output, done_after=1.0)
        yield fake


def with_callbacks(tg: FakeTelegram, tmp_path: Path, fake: Any, **extra: Any) -> Any:
    port = free_port()
    fake.proxy = (PUBLIC, f"http://127.0.0.1:{port}")
    return make_settings(
        tg,
        tmp_path,
        public_url=PUBLIC,
        webhook_listen=f"127.0.0.1:{port}",
        **{"poll_interval_seconds": 15, **extra},
    )


def on_fal(tg: FakeTelegram, tmp_path: Path, fal: FakeFal) -> Any:
    return with_callbacks(
        tg,
        tmp_path,
        fal,
        fal_key=FAL_KEY,
        fal_queue_url=fal.root,
        fal_rest_url=fal.root,
        fal_jwks_url=f"{fal.root}/.well-known/jwks.json",
    )


async def generate(tg: FakeTelegram, photo: bytes) -> int:
    card_id = await reply_to(tg, tg.user_message(USER, photo=photo, caption="zoom in"))
    tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
    return card_id


async def test_a_signed_fal_callback_moves_its_job_on_at_once(
    tg: FakeTelegram, tmp_path: Path, fal: FakeFal, photo_bytes: bytes
) -> None:
    async with running_bot(on_fal(tg, tmp_path, fal)) as app:
        await generate(tg, photo_bytes)
        began = time.monotonic()
        await tg.wait_for(lambda: tg.videos(USER), timeout=20)
        took = time.monotonic() - began
        [job] = await delivered_jobs(app, USER)
    [submit] = fal.accepted_submits()
    secret = job.provider_data[CALLBACK_SECRET]
    assert submit.query["fal_webhook"] == f"{PUBLIC}/callbacks/fal/{job.id}/{secret}"
    assert fal.callbacks and fal.callbacks[0][1] == 200
    # Done after 1 s, called back, polled at once: not after the 2 s first poll plus 60 s.
    assert took < 8
    assert len(fal.requests_to("/.well-known/jwks.json")) == 1


async def test_a_muapi_callback_with_the_jobs_secret_moves_it_on(
    tg: FakeTelegram, tmp_path: Path, muapi: FakeMuapi, photo_bytes: bytes
) -> None:
    settings = with_callbacks(
        tg, tmp_path, muapi, muapi_api_key=MUAPI_KEY, muapi_base_url=muapi.root
    )
    async with running_bot(settings):
        await generate(tg, photo_bytes)
        began = time.monotonic()
        await tg.wait_for(lambda: tg.videos(USER), timeout=20)
        took = time.monotonic() - began
    [submit] = muapi.accepted_submits()
    assert submit.query["webhook"].startswith(f"{PUBLIC}/callbacks/muapi/")
    assert muapi.callbacks and muapi.callbacks[0][1] == 200 and took < 8
    assert len(tg.videos(USER)) == 1


async def test_a_called_back_job_is_polled_at_once_while_routine_polls_fill_the_lane(
    tg: FakeTelegram, tmp_path: Path, muapi: FakeMuapi, output: Path, photo_bytes: bytes
) -> None:
    settings = with_callbacks(
        tg,
        tmp_path,
        muapi,
        muapi_api_key=MUAPI_KEY,
        muapi_base_url=muapi.root,
        max_concurrent_polls=1,
        poll_interval_seconds=1,  # a fallback poll every 4 s
    )
    muapi.scenario = Scenario(output=output, stall=True)  # running until the test says
    other = USER + 1
    async with running_bot(settings):
        for submitted, uid in enumerate((USER, other), start=1):
            card_id = await reply_to(tg, tg.user_message(uid, photo=photo_bytes, caption="zoom"))
            tg.press_button(uid, card_id, data_for(tg, uid, card_id, "go"))
            await tg.wait_for(lambda n=submitted: len(muapi.jobs) >= n, timeout=10)
        slow, quick = muapi.jobs.values()
        await tg.wait_for(lambda: muapi.polls[quick.request_id] >= 1, timeout=10)
        # From now on the first job's status takes 10 s to come: its next fallback poll holds
        # the one poll slot while the second job finishes and its provider calls back.
        slow.scenario.poll_delay = 10.0
        before = muapi.polls[slow.request_id]
        await tg.wait_for(lambda: muapi.polls[slow.request_id] > before, timeout=10)
        quick.finished = True
        await tg.wait_for(lambda: tg.videos(other), timeout=20)
        slow_answered = [rid for _, rid in muapi.answered_polls if rid == slow.request_id]
        seen = len(slow_answered)
    assert muapi.callbacks and all(status == 200 for _, status in muapi.callbacks)
    # Delivered while the slow poll was still out: the called-back job did not wait for it.
    assert seen == before
    assert len(tg.videos(other)) == 1 and tg.videos(USER) == []


def signed(body: bytes, key: Ed25519PrivateKey, request_id: str, at: float) -> dict[str, str]:
    import hashlib

    stamp = str(int(at))
    message = f"{request_id}\nuser\n{stamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "user",
        "X-Fal-Webhook-Timestamp": stamp,
        "X-Fal-Webhook-Signature": key.sign(message).hex(),
    }


async def test_forged_foreign_late_and_repeated_callbacks_change_nothing(
    tg: FakeTelegram, tmp_path: Path, fal: FakeFal, photo_bytes: bytes
) -> None:
    fal.scenario = Scenario(output=fal.scenario.output, stall=True)  # it never ends by itself
    settings = on_fal(tg, tmp_path, fal)
    local = fal.proxy[1] if fal.proxy else ""
    async with running_bot(settings) as app, httpx.AsyncClient() as client:
        await generate(tg, photo_bytes)
        jobs = services_of(app).jobs
        await tg.wait_for(lambda: fal.accepted_submits(), timeout=10)
        # Wait until it has been polled once: its next poll is then a minute away.
        for _ in range(200):
            [job] = await jobs.for_user(USER, [JobState.RUNNING]) or [None]
            if job is not None and (job.next_poll_at or 0) > time.time() + 30:
                break
            await asyncio.sleep(0.05)
        assert job is not None and CALLBACK_SECRET in job.provider_data
        secret = job.provider_data[CALLBACK_SECRET]
        path = f"{local}/callbacks/fal/{job.id}/{secret}"
        body = json.dumps({"request_id": job.external_id, "status": "OK", "payload": {}}).encode()
        now = time.time()
        stranger = Ed25519PrivateKey.generate()
        answers = {
            "no signature": await client.post(path, content=body),
            "another key": await client.post(
                path, content=body, headers=signed(body, stranger, job.external_id, now)
            ),
            "an old one": await client.post(
                path,
                content=body,
                headers=signed(body, fal.webhook_key, job.external_id, now - 900),
            ),
            "a wrong secret": await client.post(
                f"{local}/callbacks/fal/{job.id}/guess",
                content=body,
                headers=signed(body, fal.webhook_key, job.external_id, now),
            ),
            "another job's": await client.post(
                path, content=body, headers=signed(body, fal.webhook_key, "someone-else", now)
            ),
        }
        due_before = (await jobs.get(job.id)).next_poll_at  # type: ignore[union-attr]
        polls_before = fal.polls[job.external_id or ""]
        genuine = signed(body, fal.webhook_key, job.external_id, now)
        first = await client.post(path, content=body, headers=genuine)
        # The genuine one has the job polled at once (the poll is the truth).
        await tg.wait_for(lambda: fal.polls[job.external_id or ""] > polls_before, timeout=5)
        again = await client.post(path, content=body, headers=genuine)
        metrics = (await client.get(f"{local}/metrics")).text
        still = await jobs.get(job.id)
    assert {name: a.status_code for name, a in answers.items()} == {
        "no signature": 401,
        "another key": 401,
        "an old one": 401,
        "a wrong secret": 403,
        "another job's": 403,
    }
    assert due_before is not None and due_before > time.time() + 20  # none of them woke it
    # The genuine one only has the job polled: it is still running, so it stays running.
    assert first.status_code == 200 and again.status_code == 200
    assert still is not None and still.state == JobState.RUNNING
    assert 'studio_provider_callbacks_total{outcome="signature",result="rejected"} 3.0' in metrics
    assert 'studio_provider_callbacks_total{outcome="accepted",result="accepted"}' in metrics
