"""Every payload the bot can build matches the providers' published input schemas.

Each choice the bot can make (provider × model × length × shape × kind of job × with or without
words) goes through the catalogue, the poller's own ``job_spec``, the real payload builder and
the real provider HTTP client, to fake servers that enforce ``tests/fakes/schemas.json``. The
fakes must also refuse what is outside a schema, in each provider's own error shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.errors import ProviderPermanent
from services.media.effects import MOODS
from services.model.jobs import Job, JobKind, JobState
from services.production.poller import job_spec
from services.providers.base import JobSpec, Submission
from services.providers.catalogue import (
    MODELS,
    MOTION_PRESETS,
    ClipFacts,
    Model,
    ModelKind,
    chained_extend_for,
    default_model,
    fallback_after,
    get_model,
    model_for_clip,
    models_for,
    pick_model,
)
from services.providers.fal import FalProvider
from services.providers.muapi import MuapiProvider
from services.providers.payloads import build_payload
from tests.fakes.fal import FakeFal
from tests.fakes.muapi import FakeMuapi
from tests.fakes.provider_common import FAKE_MP4
from tests.fakes.schema_check import models_of

KEY = "schema-test-key"
PROVIDERS = ("muapi", "fal")
PHOTO_SHAPES = ("16:9", "9:16", "1:1")
CLIPS = {
    "veo 720p 16:9 8 s": ClipFacts(1280, 720, 8.04),
    "veo 1080p 9:16 4 s": ClipFacts(1080, 1920, 4.0),
    "phone 320x240 2 s": ClipFacts(320, 240, 2.0),
    "kling 720p 10 s": ClipFacts(1280, 720, 10.0),
    "square 1080 5 s": ClipFacts(1080, 1080, 5.0),
    "hailuo 768p 6 s": ClipFacts(1366, 768, 6.0),
    "short 0.5 s": ClipFacts(640, 360, 0.5),
    "long 29.9 s": ClipFacts(640, 360, 29.9),
}


@dataclasses.dataclass(frozen=True)
class Case:
    """One choice the bot can make, as the job it would queue."""

    name: str
    job: Job


def job(model: Model, kind: JobKind, prompt: str, **params: Any) -> Job:
    return Job(
        id=0,
        user_id=1,
        chat_id=1,
        kind=kind,
        state=JobState.QUEUED,
        provider=model.provider,
        model=model.key,
        prompt=prompt,
        params=params,
    )


def animation_cases(provider: str) -> Iterator[Case]:
    for model in models_for(provider, ModelKind.IMAGE_TO_VIDEO):
        for duration in model.durations:
            # Models without an aspect follow the photo: any shape may be on the job.
            for aspect in model.aspects or PHOTO_SHAPES:
                for prompt, motion in (("", MOTION_PRESETS[0]), ("a dancer spins", "pan_left")):
                    params = {"duration": duration, "aspect": aspect, "motion": motion}
                    name = f"{model.key} {duration}s {aspect} {prompt or motion}"
                    yield Case(name, job(model, JobKind.ANIMATE, prompt, **params, as_file=False))


def extend_cases(provider: str) -> Iterator[Case]:
    for label, clip in CLIPS.items():
        # The model chosen for the clip and every fallback that can take it.
        for model in models_for(provider, ModelKind.EXTEND_BY_CLIP):
            if not model.takes(clip):
                continue
            for duration in model.durations:
                for prompt in ("", "the camera keeps rising"):
                    params = {"duration": duration, "effect": "slow_tail", "clip": clip.as_params()}
                    name = f"{model.key} {duration}s {label} {prompt!r}"
                    yield Case(name, job(model, JobKind.EXTEND, prompt, **params))
    for source in models_for(provider, ModelKind.IMAGE_TO_VIDEO):
        chained = chained_extend_for(source)
        if chained is None:
            continue
        for duration in chained.durations:
            params = {"duration": duration, "source_request_id": "mu-source"}
            yield Case(
                f"{chained.key} chained {duration}s", job(chained, JobKind.EXTEND, "", **params)
            )


def sound_cases(provider: str) -> Iterator[Case]:
    for label, clip in CLIPS.items():
        model = model_for_clip(provider, ModelKind.VIDEO_TO_AUDIO, clip)
        assert model is not None, label
        for mood in MOODS:
            for prompt in ("", "add epic music"):
                params = {"duration": 0, "mood": mood, "clip": clip.as_params()}
                name = f"{model.key} {label} {mood} {prompt!r}"
                yield Case(name, job(model, JobKind.MUSIC, prompt, **params))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def submit_all(provider: str, cases: list[Case], http: httpx.AsyncClient, tmp: Path) -> None:
    """Submit every case to the strict fake; fail listing each refused case with its 422."""
    fake: FakeMuapi | FakeFal = FakeMuapi(KEY) if provider == "muapi" else FakeFal(KEY)
    async with fake:
        client = (
            MuapiProvider(http, api_key=KEY, base_url=fake.root)
            if provider == "muapi"
            else FalProvider(http, key=KEY, queue_url=fake.root, rest_url=fake.root)
        )
        photo, clip = tmp / "photo.jpg", tmp / "clip.mp4"
        photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        clip.write_bytes(FAKE_MP4)
        inputs = {
            JobKind.ANIMATE: {"image": await client.upload(photo, "image/jpeg")},
            JobKind.EXTEND: {"video": await client.upload(clip, "video/mp4")},
        }
        inputs[JobKind.MUSIC] = inputs[JobKind.EXTEND]
        refused: list[str] = []
        for case in cases:
            before = len(fake.submits)
            chained = {"chained": "1"} if case.job.params.get("source_request_id") else None
            try:
                submission = await client.submit(
                    job_spec(case.job, chained or inputs[case.job.kind])
                )
            except ProviderPermanent as exc:
                refused.append(f"{case.name}: {exc}")
                continue
            attempts = fake.submits[before:]
            # Accepted at the first try: no 422 swap, no fallback needed.
            assert [s.accepted for s in attempts] == [True], case.name
            assert isinstance(submission, Submission) and submission.external_id
        assert not refused, "refused by the provider's schema:\n" + "\n".join(refused)
        assert len(fake.accepted_submits()) == len(cases)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_photo_animation_the_bot_can_choose_is_accepted(
    provider: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    cases = list(animation_cases(provider))
    # The quality and fast modes choose among these same models.
    modes = ("quality", "fast")
    chosen = {pick_model(provider, ModelKind.IMAGE_TO_VIDEO, None, q).key for q in modes}
    assert chosen <= {c.job.model for c in cases}
    await submit_all(provider, cases, http, tmp_path)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_extend_the_bot_can_choose_is_accepted(
    provider: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    await submit_all(provider, list(extend_cases(provider)), http, tmp_path)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_soundtrack_the_bot_can_choose_is_accepted(
    provider: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    await submit_all(provider, list(sound_cases(provider)), http, tmp_path)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_schemas_cover_exactly_the_catalogue(provider: str) -> None:
    schemas = models_of(provider)
    offered = {m.endpoint: m for m in MODELS if m.provider == provider}
    assert set(schemas) == set(offered)
    for endpoint, schema in schemas.items():
        assert schema["sources"], endpoint  # every schema says where it came from
        # What the catalogue lets through as a source clip is what the model page allows.
        limits = offered[endpoint].accepts
        spec = schema.get("input_video")
        assert (limits is None) == (spec is None), endpoint
        if limits is not None and spec is not None:
            assert limits.max_seconds == spec["max_seconds"], endpoint
            assert list(limits.short_sides) == spec.get("short_sides", []), endpoint
            assert list(limits.aspects) == spec.get("aspects", []), endpoint


def test_a_clip_veo_did_not_make_never_goes_to_veo_extend() -> None:
    veo = get_model("fal-veo-3.1-fast-extend")
    for case in extend_cases("fal"):
        clip = ClipFacts.from_params(case.job.params)
        if case.job.model == veo.key:
            assert clip is not None and min(clip.width or 0, clip.height or 0) in (720, 1080)
            assert (clip.seconds or 99) <= 8.1, case.name
    assert model_for_clip("fal", ModelKind.EXTEND_BY_CLIP, CLIPS["kling 720p 10 s"]) != veo


# --- what is outside a schema ---------------------------------------------------------------

MUAPI_BAD = {
    # field breaking the schema: (body, the error type muapi's FastAPI answers with)
    "missing": ({"image_url": "u"}, "prompt", "missing"),
    "extra": ({"prompt": "p", "image_url": "u", "tail": "x"}, "tail", "extra_forbidden"),
    "type": ({"prompt": "p", "image_url": "u", "duration": "5"}, "duration", "int_type"),
    "enum": ({"prompt": "p", "image_url": "u", "duration": 7}, "duration", "literal_error"),
}
MMAUDIO, VEO_EXTEND = "fal-ai/mmaudio-v2", "fal-ai/veo3.1/fast/extend-video"
FAL_BAD = {
    # (model, body, field breaking the schema, the error type fal answers with)
    "missing": (MMAUDIO, {"video_url": "u"}, "prompt", "value_error.missing"),
    "extra": (MMAUDIO, {"prompt": "p", "video_url": "u", "fps": 24}, "fps", "value_error.extra"),
    "type": (MMAUDIO, {"prompt": 5, "video_url": "u"}, "prompt", "type_error.str"),
    "range": (
        MMAUDIO,
        {"prompt": "p", "video_url": "u", "duration": 31.0},
        "duration",
        "value_error.number.not_le",
    ),
    # What the bot used to send to Veo extend.
    "enum": (
        VEO_EXTEND,
        {"prompt": "p", "video_url": "u", "duration": "8s"},
        "duration",
        "value_error.const",
    ),
}


@pytest.mark.parametrize("problem", sorted(MUAPI_BAD))
async def test_muapi_answers_an_out_of_schema_body_with_its_422(
    problem: str, http: httpx.AsyncClient
) -> None:
    body, field, error = MUAPI_BAD[problem]
    async with FakeMuapi(KEY) as fake:
        r = await http.post(
            f"{fake.api_url}/kling-v2.1-pro-i2v", json=body, headers={"x-api-key": KEY}
        )
        seedance = await http.post(
            f"{fake.api_url}/seedance-2-i2v",
            json={"prompt": "p", "images_list": ["u"], "duration": 16},
            headers={"x-api-key": KEY},
        )
    assert r.status_code == 422
    [first, *_] = r.json()["detail"]
    assert first["loc"] == ["body", field] and first["type"] == error and first["msg"]
    assert seedance.status_code == 422
    assert seedance.json()["detail"] == [
        {
            "loc": ["body", "duration"],
            "msg": "Input should be less than or equal to 15",
            "type": "less_than_equal",
        }
    ]


@pytest.mark.parametrize("problem", sorted(FAL_BAD))
async def test_fal_answers_an_out_of_schema_body_with_its_422(
    problem: str, http: httpx.AsyncClient
) -> None:
    model, body, field, error = FAL_BAD[problem]
    async with FakeFal(KEY) as fake:
        r = await http.post(
            f"{fake.root}/{model}", json=body, headers={"Authorization": f"Key {KEY}"}
        )
    assert r.status_code == 422
    [first, *_] = r.json()["detail"]
    assert first == {"loc": ["body", field], "msg": first["msg"], "type": error}
    assert first["msg"]


async def test_the_disputed_wan_image_field_is_taken_either_way_but_not_both(
    http: httpx.AsyncClient,
) -> None:
    headers = {"x-api-key": KEY}
    async with FakeMuapi(KEY) as fake:
        url = f"{fake.api_url}/wan2.5-image-to-video"
        one = await http.post(url, json={"prompt": "p", "image_url": "u"}, headers=headers)
        other = await http.post(url, json={"prompt": "p", "images_list": ["u"]}, headers=headers)
        both = {"prompt": "p", "image_url": "u", "images_list": ["u"]}
        clash = await http.post(url, json=both, headers=headers)
    assert (one.status_code, other.status_code, clash.status_code) == (200, 200, 422)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_payload_outside_the_schema_is_an_input_refusal_to_the_bot(
    provider: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with FakeMuapi(KEY) if provider == "muapi" else FakeFal(KEY) as fake:
        client = (
            MuapiProvider(http, api_key=KEY, base_url=fake.root)
            if provider == "muapi"
            else FalProvider(http, key=KEY, queue_url=fake.root, rest_url=fake.root)
        )
        model = models_for(provider, ModelKind.IMAGE_TO_VIDEO)[0]
        # The old fal Veo-extend mistake, on any model: a field value the schema does not list.
        broken = dataclasses.replace(model, fields={**model.fields, "extra": {"duration": "8s"}})
        case = job(broken, JobKind.ANIMATE, "p", duration=5, aspect="16:9")
        with pytest.raises(ProviderPermanent) as refused:
            await client.submit(dataclasses.replace(job_spec(case, {"image": "u"}), model=broken))
    assert refused.value.reason == "invalid_input" and "HTTP 422" in str(refused.value)
    assert fake.accepted_submits() == []


# --- text to video ----------------------------------------------------------------------------
# Built as the JobSpec the conversation side will queue (words, a length, a shape, no inputs),
# then sent through the real provider client to the strict fakes.

T2V = ModelKind.TEXT_TO_VIDEO
FOX = "A fox runs through snow."
KLING_T2V = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"


def text_specs(provider: str) -> Iterator[tuple[str, JobSpec]]:
    """Every length and shape the bot can ask a text-to-video model for: words only, no inputs."""
    for model in models_for(provider, T2V):
        # Models without an aspect field pick their own frame: the job may carry any shape.
        for duration in model.durations:
            for aspect in model.aspects or PHOTO_SHAPES:
                spec = JobSpec(model, FOX, {}, duration, aspect, {})
                yield f"{model.key} {duration}s {aspect}", spec


def provider_client(
    provider: str, fake: FakeMuapi | FakeFal, http: httpx.AsyncClient
) -> MuapiProvider | FalProvider:
    if provider == "muapi":
        return MuapiProvider(http, api_key=KEY, base_url=fake.root)
    return FalProvider(http, key=KEY, queue_url=fake.root, rest_url=fake.root)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_text_to_video_the_bot_can_choose_is_accepted(
    provider: str, http: httpx.AsyncClient
) -> None:
    specs = list(text_specs(provider))
    assert specs, f"{provider} offers no text-to-video model"
    async with FakeMuapi(KEY) if provider == "muapi" else FakeFal(KEY) as fake:
        client = provider_client(provider, fake, http)
        refused: list[str] = []
        for name, spec in specs:
            before = len(fake.submits)
            try:
                submission = await client.submit(spec)
            except ProviderPermanent as exc:
                refused.append(f"{name}: {exc}")
                continue
            assert [s.accepted for s in fake.submits[before:]] == [True], name
            assert submission.external_id
            payload = fake.submits[-1].payload
            assert payload["prompt"] == FOX, name
            assert not any(k.endswith(("_url", "_list")) for k in payload), name  # no media input
            if spec.model.fields.get("aspect", True):
                assert payload["aspect_ratio"] == spec.aspect, name
            else:
                assert "aspect_ratio" not in payload, name
    assert not refused, "refused by the provider's schema:\n" + "\n".join(refused)


def test_text_to_video_durations_are_written_as_each_provider_wants() -> None:
    def payload(key: str, duration: int) -> dict[str, Any]:
        return build_payload(JobSpec(get_model(key), FOX, {}, duration, "16:9", {}))

    assert payload("fal-kling-2.5-turbo-t2v", 10)["duration"] == "10"
    assert payload("fal-veo-3.1-fast-t2v", 8)["duration"] == "8s"
    assert payload("fal-hailuo-02-t2v", 6) == {"prompt": FOX, "duration": "6"}
    assert payload("muapi-kling-2.5-turbo-t2v", 5) == {
        "prompt": FOX,
        "duration": 5,
        "aspect_ratio": "16:9",
    }
    # Veo 3 on muapi has no duration field: it always makes 8 s.
    assert payload("muapi-veo3-fast-t2v", 8) == {"prompt": FOX, "aspect_ratio": "16:9"}


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        # Kling on fal wants "5"/"10": an integer length is a type error.
        ({"prompt": FOX, "duration": 5}, "duration", "type_error.str"),
        ({"prompt": FOX, "duration": "7"}, "duration", "value_error.const"),
        ({"prompt": FOX, "aspect_ratio": "4:3"}, "aspect_ratio", "value_error.const"),
        ({"prompt": FOX, "image_url": "u"}, "image_url", "value_error.extra"),
        ({"duration": "5"}, "prompt", "value_error.missing"),
    ],
)
async def test_fal_refuses_a_wrong_text_to_video_body_with_its_422(
    body: dict[str, Any], field: str, error: str, http: httpx.AsyncClient
) -> None:
    async with FakeFal(KEY) as fake:
        r = await http.post(
            f"{fake.root}/{KLING_T2V}", json=body, headers={"Authorization": f"Key {KEY}"}
        )
    assert r.status_code == 422
    assert r.json()["detail"][0] == {
        "loc": ["body", field],
        "msg": r.json()["detail"][0]["msg"],
        "type": error,
    }


async def test_muapi_refuses_a_wrong_text_to_video_body_with_its_422(
    http: httpx.AsyncClient,
) -> None:
    headers = {"x-api-key": KEY}
    async with FakeMuapi(KEY) as fake:
        as_text = await http.post(
            f"{fake.api_url}/kling-v2.5-turbo-pro-t2v",
            json={"prompt": FOX, "duration": "5"},
            headers=headers,
        )
        veo_length = await http.post(
            f"{fake.api_url}/veo3-fast-text-to-video",
            json={"prompt": FOX, "duration": 8},
            headers=headers,
        )
    assert as_text.status_code == veo_length.status_code == 422
    assert as_text.json()["detail"] == [
        {"loc": ["body", "duration"], "msg": "Input should be a valid integer", "type": "int_type"}
    ]
    assert veo_length.json()["detail"][0]["type"] == "extra_forbidden"


async def test_an_integer_length_to_fal_kling_is_an_input_refusal_to_the_bot(
    http: httpx.AsyncClient,
) -> None:
    model = get_model("fal-kling-2.5-turbo-t2v")
    broken = dataclasses.replace(model, fields={**model.fields, "duration": "int"})
    async with FakeFal(KEY) as fake:
        client = provider_client("fal", fake, http)
        with pytest.raises(ProviderPermanent) as refused:
            await client.submit(JobSpec(broken, FOX, {}, 5, "16:9", {}))
    assert refused.value.reason == "invalid_input" and "HTTP 422" in str(refused.value)
    assert "duration" in str(refused.value) and fake.accepted_submits() == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_provider_has_a_text_to_video_default_and_fallbacks(provider: str) -> None:
    offered = models_for(provider, T2V)
    default = default_model(provider, T2V)
    assert default.key == f"{provider}-kling-2.5-turbo-t2v" and default is offered[0]
    assert pick_model(provider, T2V, None, "quality") is default
    assert pick_model(provider, T2V, None, "fast").tier == "fast"
    # A refused or vanished default falls back along the catalogue, staying text-to-video.
    following = fallback_after(default)
    assert following is offered[1]
    assert following.kind == T2V and following.provider == provider
    chain = [default]
    while (after := fallback_after(chain[-1])) is not None:
        chain.append(after)
    assert chain == offered


def test_the_local_studio_offers_no_text_to_video() -> None:
    assert models_for("local", T2V) == []
    with pytest.raises(LookupError):
        pick_model("local", T2V, None, "quality")
