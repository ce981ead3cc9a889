"""Tests of the fake muapi.ai and fal.ai servers themselves, driven by plain httpx."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.fal import FakeFal
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import FAKE_MP4, Scenario

MU_KEY = "muapi-test-key"
FAL_KEY = "fal-test-key"
# Bodies the fakes' schemas (tests/fakes/schemas.json) accept, for tests about other things.
KLING = "kling-v2.1-pro-i2v"
KLING_BODY = {"prompt": "slow push-in", "image_url": "https://x/a.jpg", "duration": 5}
FAL_WAN = "fal-ai/wan-25-preview/image-to-video"
FAL_VEO = "fal-ai/veo3.1/fast/image-to-video"
FAL_BODY = {"prompt": "p", "image_url": "https://x/a.jpg"}


@pytest.fixture
async def mu() -> AsyncIterator[FakeMuapi]:
    async with FakeMuapi(MU_KEY) as fake:
        yield fake


@pytest.fixture
async def fal() -> AsyncIterator[FakeFal]:
    async with FakeFal(FAL_KEY) as fake:
        yield fake


@pytest.fixture
async def mu_client(mu: FakeMuapi) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"x-api-key": MU_KEY}
    async with httpx.AsyncClient(base_url=f"{mu.root}/api/v1", headers=headers) as client:
        yield client


@pytest.fixture
async def fal_client(fal: FakeFal) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Key {FAL_KEY}"}
    async with httpx.AsyncClient(base_url=fal.root, headers=headers) as client:
        yield client


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    path = tmp_path / "out.mp4"
    path.write_bytes(FAKE_MP4 + os.urandom(3 * 1024 * 1024 + 17))
    return path


# ---------------------------------------------------------------------- muapi


async def test_muapi_auth(mu: FakeMuapi) -> None:
    async with httpx.AsyncClient(base_url=f"{mu.root}/api/v1") as client:
        for headers in ({}, {"x-api-key": "wrong"}):
            r = await client.get("/account/balance", headers=headers)
            assert r.status_code == 401
            assert r.json() == {"detail": "Invalid API key"}
            r = await client.post("/kling-v2.1-pro-i2v", json={"prompt": "x"}, headers=headers)
            assert r.status_code == 401
    assert mu.submits == []
    assert len(mu.requests) == 4


async def test_muapi_balance_and_unknown_prediction(mu_client: httpx.AsyncClient) -> None:
    assert (await mu_client.get("/account/balance")).json() == {"balance": 42.5}
    r = await mu_client.get("/predictions/mu-nope/result")
    assert r.status_code == 404
    assert r.json() == {"detail": "Prediction not found"}


async def test_muapi_direct_upload_roundtrip(mu: FakeMuapi, mu_client: httpx.AsyncClient) -> None:
    data = os.urandom(200_000)
    files = {"file": ("my photo.jpg", data, "image/jpeg")}
    r = await mu_client.post("/upload_file", files=files)
    assert r.status_code == 200
    url = r.json()["url"]
    assert url.startswith(f"{mu.root}/files/up/")
    async with httpx.AsyncClient() as plain:
        got = await plain.get(url)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    [upload] = mu.uploads
    assert (upload.filename, upload.content_type, upload.size) == (
        "my photo.jpg",
        "image/jpeg",
        200_000,
    )
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert mu.file_content(url) == data
    assert mu.requests[0].size > 200_000
    assert mu.requests[0].headers["x-api-key"] == MU_KEY


async def test_muapi_upload_caps() -> None:
    async with FakeMuapi(max_image_bytes=1000, max_video_bytes=3000) as fake:
        headers = {"x-api-key": fake.api_key}
        async with httpx.AsyncClient(base_url=fake.api_url, headers=headers) as client:
            big_image = {"file": ("a.png", b"x" * 1001, "image/png")}
            r = await client.post("/upload_file", files=big_image)
            assert r.status_code == 413
            assert r.json() == {"detail": "File too large"}
            ok_video = {"file": ("a.mp4", b"x" * 2500, "video/mp4")}
            assert (await client.post("/upload_file", files=ok_video)).status_code == 200
            big_video = {"file": ("a.mp4", b"x" * 3001, "video/mp4")}
            assert (await client.post("/upload_file", files=big_video)).status_code == 413
        assert [u.size for u in fake.uploads] == [2500]


async def test_muapi_presigned_upload(mu: FakeMuapi, mu_client: httpx.AsyncClient) -> None:
    r = await mu_client.get("/get_upload_url", params={"filename": "clip.mp4"})
    info = r.json()
    assert info["url"] == f"{mu.root}/s3"
    assert info["fields"]["key"].endswith("/clip.mp4")
    data = os.urandom(120_000)
    async with httpx.AsyncClient() as s3:
        bad = {**info["fields"], "x-amz-signature": "forged"}
        denied = await s3.post(info["url"], data=bad, files={"file": ("clip.mp4", data)})
        assert denied.status_code == 403
        r = await s3.post(info["url"], data=info["fields"], files={"file": ("clip.mp4", data)})
        assert r.status_code == 204
        got = await s3.get(f"{mu.root}/files/{info['fields']['key']}")
    assert got.content == data
    [upload] = mu.uploads
    assert (upload.filename, upload.content_type, upload.size) == ("clip.mp4", "video/mp4", 120_000)


async def test_muapi_job_flow(
    mu: FakeMuapi, mu_client: httpx.AsyncClient, video_file: Path
) -> None:
    mu.scenario = Scenario(polls_before_done=3, queue_polls=1, output=video_file)
    payload = KLING_BODY
    r = await mu_client.post(f"/{KLING}", json=payload)
    assert r.status_code == 200
    body = r.json()
    rid = body["request_id"]
    assert rid.startswith("mu-")
    assert body["status"] == "processing"
    assert body["cost"]["amount_usd"] == 0.225
    assert r.headers["X-MuAPI-Cost-USD"] == "0.225"
    assert r.headers["X-MuAPI-Cost-Credits"] == "45"
    assert r.headers["X-Account-Balance"] == "42.5"
    statuses = []
    for _ in range(4):
        poll = (await mu_client.get(f"/predictions/{rid}/result")).json()
        statuses.append(poll["status"])
    assert statuses == ["queued", "processing", "processing", "completed"]
    assert poll["id"] == rid
    assert poll["cost"]["refunded"] is False
    [url] = poll["outputs"]
    assert isinstance(url, str)
    async with httpx.AsyncClient() as plain:
        got = await plain.get(url)
    assert got.content == video_file.read_bytes()
    assert mu.polls[rid] == 4
    [submit] = mu.submits
    assert (submit.endpoint, submit.payload, submit.request_id, submit.accepted) == (
        "kling-v2.1-pro-i2v",
        payload,
        rid,
        True,
    )


async def test_muapi_object_outputs_and_slash_endpoint(
    mu: FakeMuapi, mu_client: httpx.AsyncClient
) -> None:
    mu.scenario = Scenario(polls_before_done=0)
    shapes = []
    bodies = {
        "seedance-2-i2v": {"prompt": "p", "images_list": ["u"]},
        "mmaudio-v2/video-to-video": {"prompt": "rain", "video_url": "u", "duration": 4.5},
    }
    for endpoint, body in bodies.items():
        rid = (await mu_client.post(f"/{endpoint}", json=body)).json()["request_id"]
        poll = (await mu_client.get(f"/predictions/{rid}/result")).json()
        shapes.append(type(poll["outputs"][0]))
    assert shapes == [str, dict]
    assert [s.endpoint for s in mu.submits] == list(bodies)
    mu.object_outputs = True
    rid = (await mu_client.post(f"/{KLING}", json=KLING_BODY)).json()["request_id"]
    out = (await mu_client.get(f"/predictions/{rid}/result")).json()["outputs"][0]
    assert out == {"url": f"{mu.root}/files/out/{rid}.mp4"}
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(out["url"])).content == FAKE_MP4


async def test_muapi_rate_limit_then_success(mu: FakeMuapi, mu_client: httpx.AsyncClient) -> None:
    mu.next_scenarios = [
        Scenario(submit_errors=[(429, {"detail": "Too many requests"}, {"Retry-After": "1"})]),
        Scenario(fail_with="NSFW content detected", polls_before_done=0),
    ]
    veo, body = "veo3.1-fast-image-to-video", {"prompt": "p", "image_url": "u"}
    r = await mu_client.post(f"/{veo}", json=body)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert r.json() == {"detail": "Too many requests"}
    r = await mu_client.post(f"/{veo}", json=body)
    assert r.status_code == 200
    r2 = await mu_client.post(f"/{veo}", json=body)
    failed = (await mu_client.get(f"/predictions/{r2.json()['request_id']}/result")).json()
    assert failed["status"] == "failed"
    assert failed["error"] == "NSFW content detected"
    assert failed["cost"]["refunded"] is True
    assert [(s.accepted, s.status) for s in mu.submits] == [(False, 429), (True, 200), (True, 200)]
    assert mu.next_scenarios == []


async def test_muapi_checks_each_submit_against_the_models_schema(
    mu: FakeMuapi, mu_client: httpx.AsyncClient
) -> None:
    r = await mu_client.post("/seedance-2-i2v", json={"image_url": "u", "prompt": "p"})
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {"loc": ["body", "images_list"], "msg": "Field required", "type": "missing"},
            {
                "loc": ["body", "image_url"],
                "msg": "Extra inputs are not permitted",
                "type": "extra_forbidden",
            },
        ]
    }
    r = await mu_client.post("/seedance-2-i2v", json={"images_list": ["u"], "prompt": "p"})
    assert r.status_code == 200
    r = await mu_client.post("/no-such-model", json={"prompt": "p"})
    assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})
    assert [(s.accepted, s.status) for s in mu.submits] == [(False, 422), (True, 200), (False, 404)]
    # A test may tighten the fake's copy of a schema, e.g. to play a model that changed.
    mu.schema_for(KLING)["properties"]["duration"]["enum"] = [10]
    assert (await mu_client.post(f"/{KLING}", json=KLING_BODY)).status_code == 422


async def test_muapi_poll_errors_and_stall(mu: FakeMuapi, mu_client: httpx.AsyncClient) -> None:
    mu.scenario = Scenario(polls_before_done=0, poll_errors=[(500, {"detail": "boom"})] * 2)
    rid = (await mu_client.post(f"/{KLING}", json=KLING_BODY)).json()["request_id"]
    codes = [(await mu_client.get(f"/predictions/{rid}/result")).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    mu.scenario = Scenario(stall=True)
    rid = (await mu_client.post(f"/{KLING}", json=KLING_BODY)).json()["request_id"]
    answers = [(await mu_client.get(f"/predictions/{rid}/result")).json() for _ in range(5)]
    assert all(a == {"id": rid, "status": "processing", "outputs": []} for a in answers)


async def test_muapi_submit_delay_times_out_client(
    mu: FakeMuapi, mu_client: httpx.AsyncClient
) -> None:
    mu.scenario = Scenario(submit_delay=0.5)
    with pytest.raises(httpx.ReadTimeout):
        await mu_client.post(f"/{KLING}", json=KLING_BODY, timeout=0.1)
    assert len(mu.submits) == 1
    assert mu.submits[0].accepted


async def test_muapi_insufficient_balance(mu: FakeMuapi, mu_client: httpx.AsyncClient) -> None:
    mu.balance = 0
    r = await mu_client.post(f"/{KLING}", json=KLING_BODY)
    assert r.status_code == 402
    files = {"file": ("a.jpg", b"x", "image/jpeg")}
    assert (await mu_client.post("/upload_file", files=files)).status_code == 402
    assert [(s.accepted, s.status) for s in mu.submits] == [(False, 402)]


async def test_muapi_secret_search(mu: FakeMuapi, mu_client: httpx.AsyncClient) -> None:
    await mu_client.post(f"/{KLING}", json={**KLING_BODY, "prompt": "hello SECRET-123"})
    assert len(mu.requests_containing("SECRET-123")) == 1
    assert len(mu.requests_containing(MU_KEY)) == 1
    assert mu.requests_containing("nothing-like-this") == []


# ---------------------------------------------------------------------- fal


async def test_fal_auth(fal: FakeFal) -> None:
    async with httpx.AsyncClient(base_url=fal.root) as client:
        for headers in ({}, {"Authorization": "Key wrong"}, {"Authorization": f"Bearer {FAL_KEY}"}):
            r = await client.post(
                "/fal-ai/kling-video/v2.1/pro/image-to-video", json={}, headers=headers
            )
            assert r.status_code == 401
            assert r.json() == {"detail": "Unauthorized"}
    assert fal.submits == []


async def test_fal_upload_roundtrip(fal: FakeFal, fal_client: httpx.AsyncClient) -> None:
    r = await fal_client.post(
        "/storage/upload/initiate",
        params={"storage_type": "fal-cdn-v3"},
        json={"content_type": "image/jpeg", "file_name": "photo.jpg"},
    )
    assert r.status_code == 200
    info = r.json()
    data = os.urandom(150_000)
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(info["file_url"])).status_code == 404
        put = await plain.put(
            info["upload_url"], content=data, headers={"Content-Type": "image/jpeg"}
        )
        assert put.status_code == 200
        got = await plain.get(info["file_url"])
    assert got.content == data
    [upload] = fal.uploads
    assert (upload.filename, upload.content_type, upload.size) == (
        "photo.jpg",
        "image/jpeg",
        150_000,
    )
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.url == info["file_url"]


async def test_fal_job_flow_and_subpath_rule(
    fal: FakeFal, fal_client: httpx.AsyncClient, video_file: Path
) -> None:
    fal.scenario = Scenario(polls_before_done=4, queue_polls=2, output=video_file)
    model = "fal-ai/kling-video/v2.1/pro/image-to-video"
    r = await fal_client.post(f"/{model}", json={"prompt": "p", "image_url": "u"})
    assert r.status_code == 200
    sub = r.json()
    rid = sub["request_id"]
    assert sub["gateway_request_id"] == rid
    assert sub["queue_position"] == 2
    assert sub["response_url"] == f"{fal.root}/fal-ai/kling-video/requests/{rid}"
    assert sub["status_url"] == sub["response_url"] + "/status"
    assert sub["cancel_url"] == sub["response_url"] + "/cancel"

    rebuilt = f"/{model}/requests/{rid}"
    assert (await fal_client.get(f"{rebuilt}/status")).status_code == 404
    assert (await fal_client.get(rebuilt)).status_code == 404
    assert (await fal_client.put(f"{rebuilt}/cancel")).status_code == 404

    early = await fal_client.get(sub["response_url"])
    assert early.status_code == 400
    assert early.json() == {"detail": "Request is still in progress"}

    seen = []
    for _ in range(5):
        st = (await fal_client.get(sub["status_url"], params={"logs": "1"})).json()
        seen.append((st["status"], st.get("queue_position")))
        assert st["response_url"] == sub["response_url"]
    assert seen == [
        ("IN_QUEUE", 1),
        ("IN_QUEUE", 0),
        ("IN_PROGRESS", None),
        ("IN_PROGRESS", None),
        ("COMPLETED", None),
    ]
    assert st["metrics"] == {"inference_time": 1.2}
    assert "error" not in st
    assert fal.polls[rid] == 5

    result = (await fal_client.get(sub["response_url"])).json()
    assert result["seed"] == 42
    video = result["video"]
    assert video["content_type"] == "video/mp4"
    assert video["file_size"] == video_file.stat().st_size
    async with httpx.AsyncClient() as plain:
        got = await plain.get(video["url"])
    assert got.content == video_file.read_bytes()
    assert fal.submits[0].endpoint == model

    done_cancel = await fal_client.put(sub["cancel_url"])
    assert done_cancel.status_code == 400
    assert done_cancel.json() == {"status": "ALREADY_COMPLETED"}


async def test_fal_logs_and_stall(fal: FakeFal, fal_client: httpx.AsyncClient) -> None:
    fal.scenario = Scenario(stall=True)
    sub = (await fal_client.post(f"/{FAL_WAN}", json=FAL_BODY)).json()
    answers = [
        (await fal_client.get(sub["status_url"], params={"logs": 1})).json() for _ in range(4)
    ]
    assert all(a == answers[0] for a in answers)
    assert answers[0]["status"] == "IN_PROGRESS"
    assert answers[0]["logs"][0]["message"] == "step 1"
    no_logs = (await fal_client.get(sub["status_url"])).json()
    assert no_logs["logs"] is None


async def test_fal_failure_and_retry(fal: FakeFal, fal_client: httpx.AsyncClient) -> None:
    text = "Content policy violation: the image was flagged"
    fal.scenario = Scenario(
        polls_before_done=0,
        fail_with=text,
        submit_errors=[(429, {"detail": "Too many requests"}, {"Retry-After": "1"})],
        poll_errors=[(503, {"detail": "unavailable"})],
    )
    first = await fal_client.post(f"/{FAL_VEO}", json=FAL_BODY)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "1"
    sub = (await fal_client.post(f"/{FAL_VEO}", json=FAL_BODY)).json()
    assert (await fal_client.get(sub["status_url"])).status_code == 503
    st = (await fal_client.get(sub["status_url"])).json()
    assert st["status"] == "COMPLETED"
    assert st["error"] == text
    assert st["error_type"] == "content_policy_violation"
    res = await fal_client.get(sub["response_url"])
    assert res.status_code == 422
    assert res.json() == {"detail": text, "error_type": "content_policy_violation"}
    assert [(s.accepted, s.status) for s in fal.submits] == [(False, 429), (True, 200)]


async def test_fal_cancel(fal: FakeFal, fal_client: httpx.AsyncClient) -> None:
    fal.scenario = Scenario(stall=True)
    sub = (await fal_client.post(f"/{FAL_VEO}", json=FAL_BODY)).json()
    r = await fal_client.put(sub["cancel_url"])
    assert r.status_code == 202
    assert r.json() == {"status": "CANCELLATION_REQUESTED"}
    assert fal.cancels == [sub["request_id"]]
    st = (await fal_client.get(sub["status_url"])).json()
    assert (st["status"], st["error"]) == ("COMPLETED", "Request was cancelled")
    assert (await fal_client.put(sub["cancel_url"])).status_code == 400


async def test_fal_output_expired_and_cut_off(
    fal: FakeFal, fal_client: httpx.AsyncClient, video_file: Path
) -> None:
    fal.next_scenarios = [
        Scenario(polls_before_done=0, output_expired=True),
        Scenario(polls_before_done=0, output=video_file, output_cut_off=True),
        Scenario(polls_before_done=0, output=video_file.read_bytes(), output_cut_off=True),
    ]
    urls = []
    for _ in range(3):
        sub = (await fal_client.post(f"/{FAL_WAN}", json=FAL_BODY)).json()
        await fal_client.get(sub["status_url"])
        urls.append((await fal_client.get(sub["response_url"])).json()["video"]["url"])
    size = video_file.stat().st_size
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(urls[0])).status_code == 404
        for url in urls[1:]:
            received = 0
            with pytest.raises(httpx.RemoteProtocolError):
                async with plain.stream("GET", url) as resp:
                    assert resp.headers["content-length"] == str(size)
                    async for chunk in resp.aiter_raw():
                        received += len(chunk)
            assert received < size


async def test_wait_for(fal: FakeFal, fal_client: httpx.AsyncClient) -> None:
    await fal_client.post(f"/{FAL_WAN}", json=FAL_BODY)
    submit = await fal.wait_for(lambda: fal.accepted_submits(), timeout=1)
    assert submit[0].endpoint == FAL_WAN
    with pytest.raises(AssertionError, match="not met"):
        await fal.wait_for(lambda: fal.cancels, timeout=0.05)


async def test_fal_checks_each_submit_against_the_models_schema(
    fal: FakeFal, fal_client: httpx.AsyncClient
) -> None:
    r = await fal_client.post(f"/{FAL_VEO}", json={**FAL_BODY, "duration": "7s"})
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {
                "loc": ["body", "duration"],
                "msg": "unexpected value; permitted: '4s', '6s', '8s'",
                "type": "value_error.const",
            }
        ]
    }
    r = await fal_client.post("/fal-ai/no-such-model", json=FAL_BODY)
    assert r.status_code == 404
    assert (await fal_client.post(f"/{FAL_VEO}", json=FAL_BODY)).status_code == 200
    assert [(s.accepted, s.status) for s in fal.submits] == [
        (False, 422),
        (False, 404),
        (True, 200),
    ]


async def test_fal_locked_account_answers_403_to_billable_calls(
    fal: FakeFal, fal_client: httpx.AsyncClient
) -> None:
    sub = (await fal_client.post(f"/{FAL_WAN}", json=FAL_BODY)).json()
    fal.locked = True
    for r in (
        await fal_client.post(f"/{FAL_WAN}", json=FAL_BODY),
        await fal_client.post(
            "/storage/upload/initiate",
            json={"content_type": "image/jpeg", "file_name": "photo.jpg"},
        ),
    ):
        assert r.status_code == 403
        assert r.json()["detail"].startswith("User is locked. Reason: Exhausted balance")
    # Status requests still answer (fal-ai/fal issue #1147).
    assert (await fal_client.get(sub["status_url"])).status_code == 200
    assert [(s.accepted, s.status) for s in fal.submits] == [(True, 200), (False, 403)]
