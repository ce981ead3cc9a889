"""Status polls go through their own client (aiohttp, for the CPU it saves a worker): the bot
must see exactly what it sees through httpx, keep the key where it belongs, and say what went
wrong on the wire without the URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from services.errors import ProviderPermanent, ProviderTransient
from services.model.jobs import JobKind
from services.production.poller import job_spec
from services.providers.base import ProviderState, ProviderStatus, Submission
from services.providers.catalogue import ModelKind, models_for
from services.providers.fal import FalProvider
from services.providers.http import StatusClient
from services.providers.muapi import MuapiProvider
from tests.fakes.fal import FakeFal
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import Scenario
from tests.fakes.server import LocalServer
from tests.test_provider_schemas import job

KEY = "status-test-key"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def clients(
    provider: str, fake: FakeMuapi | FakeFal, http: httpx.AsyncClient, statuses: StatusClient
) -> tuple[MuapiProvider | FalProvider, MuapiProvider | FalProvider]:
    """The provider as before (httpx only) and as wired (status polls on ``statuses``)."""
    if provider == "muapi":
        return (
            MuapiProvider(http, api_key=KEY, base_url=fake.root),
            MuapiProvider(http, api_key=KEY, base_url=fake.root, statuses=statuses),
        )
    return (
        FalProvider(http, key=KEY, queue_url=fake.root, rest_url=fake.root),
        FalProvider(http, key=KEY, queue_url=fake.root, rest_url=fake.root, statuses=statuses),
    )


async def poll_until_over(client: MuapiProvider | FalProvider, sub: Submission) -> list[str]:
    seen = []
    for _ in range(10):
        status = await client.poll(sub)
        # Outputs by count: each job's URL is its own.
        seen.append(f"{status.state.value}:{status.raw}:{len(status.outputs)}:{status.error}")
        if status.state not in (ProviderState.QUEUED, ProviderState.RUNNING):
            break
    return seen


@pytest.mark.parametrize("provider", ["muapi", "fal"])
async def test_polls_through_the_status_client_read_exactly_as_through_httpx(
    provider: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    model = models_for(provider, ModelKind.IMAGE_TO_VIDEO)[0]
    spec_job = job(model, JobKind.ANIMATE, "", duration=model.durations[0], motion="zoom_in")
    statuses = StatusClient(4, timeout=10.0)
    fake: FakeMuapi | FakeFal = FakeMuapi(KEY) if provider == "muapi" else FakeFal(KEY)
    try:
        async with fake:
            plain, wired = clients(provider, fake, http, statuses)
            url = await plain.upload(photo, "image/jpeg")
            journeys = []
            for scenario in (
                Scenario(queue_polls=1, polls_before_done=2),
                Scenario(polls_before_done=1, fail_with="the model crashed"),
            ):
                seen = []
                for client in (plain, wired):
                    fake.next_scenarios.append(scenario)
                    sub = await client.submit(job_spec(spec_job, {"image": url}))
                    seen.append(await poll_until_over(client, sub))
                assert seen[0] == seen[1], scenario
                journeys.append(seen[1])
            # Finished the first time, failed the second: both journeys came to their end.
            assert journeys[0][-1].startswith(f"{ProviderState.COMPLETED.value}:")
            assert journeys[1][-1].startswith(f"{ProviderState.FAILED.value}:")
            # The key went with every status poll, and only in its header.
            polls = [
                r for r in fake.requests
                if r.method == "GET" and ("status" in r.path or r.path.endswith("/result"))
            ]  # fmt: skip
            assert polls
            for request in polls:
                sent = request.headers.get("x-api-key") or request.headers.get("authorization")
                assert sent is not None and KEY in sent
                assert KEY not in request.path + request.query
            # An unknown job is the provider's own "not found", as through httpx.
            with pytest.raises(ProviderPermanent) as unknown:
                if provider == "muapi":
                    await wired.poll(Submission("no-such-job", {}))
                else:
                    await wired.poll(Submission("x", {"status_url": f"{fake.root}/nope/status"}))
            assert unknown.value.reason == "not_found"
    finally:
        await statuses.aclose()


class Elsewhere(LocalServer):
    """A server that records what reaches it: where a redirect would take the key."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, str]] = []

    def application(self) -> web.Application:
        async def anything(request: web.Request) -> web.Response:
            self.seen.append(dict(request.headers))
            return web.json_response({"status": "completed", "outputs": ["x"]})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", anything)
        return app


class Moving(LocalServer):
    """Answers every request with a redirect to ``target``, or, ``slow``, not in time."""

    def __init__(self, target: str = "", slow: float = 0.0) -> None:
        super().__init__()
        self.target, self.slow = target, slow

    def application(self) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            if self.slow:
                await self.pause(self.slow)
            raise web.HTTPFound(f"{self.target}/stolen")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        return app


async def test_a_redirected_status_poll_is_not_followed_and_the_key_stays_home() -> None:
    statuses = StatusClient(2, timeout=5.0)
    try:
        async with Elsewhere() as thief, Moving(thief.root) as moving:
            client = MuapiProvider(
                httpx.AsyncClient(), api_key=KEY, base_url=moving.root, statuses=statuses
            )
            with pytest.raises(ProviderTransient) as moved:
                await client.poll(Submission("abc", {}))
    finally:
        await statuses.aclose()
    assert "redirect" in str(moved.value)
    assert thief.seen == []


async def test_wire_failures_are_transient_and_never_name_the_url() -> None:
    statuses = StatusClient(2, timeout=0.5, connect=0.5)
    try:
        # Nothing listens there: the request never left, so it surely did not reach anyone.
        async with Moving() as gone:
            closed = gone.root
        client = MuapiProvider(httpx.AsyncClient(), api_key=KEY, base_url=closed, statuses=statuses)
        with pytest.raises(ProviderTransient) as refused:
            await client.poll(Submission("abc", {}))
        assert refused.value.reached is False
        # The provider took the request and did not answer in time.
        async with Moving(slow=5.0) as slow:
            client = MuapiProvider(
                httpx.AsyncClient(), api_key=KEY, base_url=slow.root, statuses=statuses
            )
            began = asyncio.get_running_loop().time()
            with pytest.raises(ProviderTransient) as late:
                await client.poll(Submission("abc", {}))
            assert asyncio.get_running_loop().time() - began < 3
        assert late.value.reached is True
    finally:
        await statuses.aclose()
    for failure in (refused.value, late.value):
        assert "127.0.0.1" not in str(failure) and "abc" not in str(failure)


async def test_a_status_poll_answer_is_mapped_like_any_other(http: httpx.AsyncClient) -> None:
    statuses = StatusClient(2, timeout=5.0)
    try:
        async with FakeMuapi(KEY) as fake:
            wrong_key = MuapiProvider(http, api_key="wrong", base_url=fake.root, statuses=statuses)
            rid = fake.seed_job(Scenario(polls_before_done=5))
            with pytest.raises(ProviderPermanent) as refused:
                await wrong_key.poll(Submission(rid, {}))
            right = MuapiProvider(http, api_key=KEY, base_url=fake.root, statuses=statuses)
            status = await right.poll(Submission(rid, {}))
    finally:
        await statuses.aclose()
    assert refused.value.reason == "auth"
    assert isinstance(status, ProviderStatus) and status.state is not ProviderState.FAILED
