"""The model catalogue: sane data, payloads as each provider spells them, README kept true."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.errors import ProviderPermanent
from services.providers.base import JobSpec
from services.providers.catalogue import (
    MODELS,
    MOTION_PROMPTS,
    ClipFacts,
    ModelKind,
    default_model,
    fallback_after,
    get_model,
    model_for_clip,
    models_for,
)
from services.providers.http import detail, raise_for, retry_after
from services.providers.muapi import fraction, output_urls
from services.providers.payloads import build_payload, swapped_field

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_model_is_well_formed() -> None:
    assert len({m.key for m in MODELS}) == len(MODELS)
    for model in MODELS:
        assert set(model.costs) == set(model.durations), model.key
        assert all(c >= 0 for c in model.costs.values())
        assert model.fields.get("image", "image_url") in ("image_url", "images_list")


def test_defaults_and_fallback_order() -> None:
    assert default_model("muapi", ModelKind.IMAGE_TO_VIDEO).title == "Kling 2.1 Pro"
    assert default_model("fal", ModelKind.IMAGE_TO_VIDEO).title == "Kling 2.1 Pro"
    chain = [default_model("muapi", ModelKind.IMAGE_TO_VIDEO)]
    while (following := fallback_after(chain[-1])) is not None:
        chain.append(following)
    assert chain == models_for("muapi", ModelKind.IMAGE_TO_VIDEO)


@pytest.mark.parametrize("model", [m for m in MODELS if m.kind == ModelKind.IMAGE_TO_VIDEO])
def test_readme_lists_each_photo_model_with_its_credits(model: object) -> None:
    from services.providers.catalogue import Model

    assert isinstance(model, Model)
    row = next(
        (
            line
            for line in README.splitlines()
            if line.startswith(f"| {model.provider} | {model.title} |")
        ),
        None,
    )
    assert row is not None, f"README has no row for {model.key}"
    costs = [model.costs[d] for d in model.durations]
    expected = str(costs[0]) if len(set(costs)) == 1 else " / ".join(str(c) for c in costs)
    assert row.rstrip(" |").endswith(f"| {expected}"), row


def spec(key: str, prompt: str = "", **options: object) -> JobSpec:
    return JobSpec(
        model=get_model(key),
        prompt=prompt,
        inputs={"image": "https://cdn/x.jpg"},
        duration=5,
        aspect="9:16",
        options={"motion": "pan_left", **options},
    )


def test_payloads_follow_each_models_spelling() -> None:
    assert build_payload(spec("muapi-kling-2.1-pro", "wave")) == {
        "prompt": "wave",
        "image_url": "https://cdn/x.jpg",
        "duration": 5,
        "aspect_ratio": "9:16",
    }
    seedance = build_payload(spec("muapi-seedance-2"))
    assert (
        seedance["images_list"] == ["https://cdn/x.jpg"] and "pan to the left" in seedance["prompt"]
    )
    fal_kling = build_payload(spec("fal-kling-2.1-pro"))
    assert fal_kling["duration"] == "5" and "aspect_ratio" not in fal_kling
    veo = JobSpec(get_model("fal-veo-3.1-fast"), "x", {"image": "u"}, 8, "16:9")
    assert build_payload(veo)["duration"] == "8s"
    extend = JobSpec(get_model("fal-veo-3.1-fast-extend"), "", {"video": "u"}, 7, "16:9")
    assert build_payload(extend)["duration"] == "7s"  # the endpoint's only length
    assert build_payload(extend)["prompt"] not in MOTION_PROMPTS.values()
    wan = build_payload(spec("muapi-wan-2.5"))
    assert wan["resolution"] == "720p" and "aspect_ratio" not in wan  # it has no such field


def test_the_422_swap_names_the_other_field_only() -> None:
    sent = {"prompt": "p", "image_url": "u"}
    assert swapped_field("body.images_list: Field required", sent) == {"image_url": "images_list"}
    assert swapped_field("body.prompt: too long", sent) is None
    assert swapped_field("body.image_url: Field required", {"images_list": ["u"]}) == {
        "images_list": "image_url"
    }


def test_response_parsing_helpers() -> None:
    import httpx

    assert output_urls(["a", {"url": "b"}, {"video_url": "c"}, 3]) == ("a", "b", "c")
    assert output_urls("a") == ("a",)
    assert fraction(45) == 0.45 and fraction(0.5) == 0.5 and fraction(True) is None
    assert retry_after(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    body = {"detail": [{"loc": ["body", "images_list"], "msg": "Field required"}]}
    assert detail(httpx.Response(422, json=body)) == "body.images_list: Field required"


VEO_MADE = [ClipFacts(1280, 720, 8.04), ClipFacts(720, 1280, 4.0), ClipFacts(1920, 1080, 8.0)]
NOT_VEO = [
    ClipFacts(320, 240, 2.0),  # a phone upload
    ClipFacts(1280, 720, 10.0),  # a 10 s Kling result
    ClipFacts(1080, 1080, 5.0),  # square
    ClipFacts(1366, 768, 6.0),  # Hailuo 768P
    ClipFacts(None, None, 5.0),  # unknown size
    None,  # nothing known
]


def test_veo_extend_takes_only_veo_made_clips_and_others_go_to_the_next_model() -> None:
    veo = get_model("fal-veo-3.1-fast-extend")
    assert all(veo.takes(clip) for clip in VEO_MADE)
    assert not any(veo.takes(clip) for clip in NOT_VEO)
    for clip in NOT_VEO:
        chosen = model_for_clip("fal", ModelKind.EXTEND_BY_CLIP, clip)
        assert chosen is not None and chosen.key == "fal-pixverse-extend"
        assert fallback_after(veo, clip) == chosen
    assert model_for_clip("fal", ModelKind.EXTEND_BY_CLIP, VEO_MADE[0]) == veo


def sound_spec(key: str, prompt: str, seconds: float | None, mood: str = "calm") -> JobSpec:
    clip = {"clip": ClipFacts(640, 360, seconds).as_params()} if seconds is not None else {}
    return JobSpec(
        get_model(key),
        prompt,
        {"video": "u"},
        0,
        "16:9",
        {"mood": mood, "motion": "pan_left", **clip},
    )


@pytest.mark.parametrize("key", ["fal-mmaudio-2", "muapi-mmaudio-2"])
def test_mmaudio_gets_the_clips_length_and_a_sound_prompt(key: str) -> None:
    payload = build_payload(sound_spec(key, "", 12.48, mood="epic"))
    assert payload["duration"] == 12.48
    assert "orchestral" in payload["prompt"] and "pan to the left" not in payload["prompt"]
    assert payload["prompt"] not in MOTION_PROMPTS.values()
    assert build_payload(sound_spec(key, "", 45.0))["duration"] == 30.0  # the model's cap
    assert build_payload(sound_spec(key, "", 0.4))["duration"] == 1.0  # its floor
    assert "duration" not in build_payload(sound_spec(key, "", None))  # unknown: its default
    worded = build_payload(sound_spec(key, "rain on a tin roof", 3.0))["prompt"]
    assert worded.startswith("rain on a tin roof; ") and "ambient" in worded
    model = get_model(key)
    assert model.takes(ClipFacts(320, 240, 30.05)) and not model.takes(ClipFacts(320, 240, 31.0))


def status_error(status: int, body: object) -> ProviderPermanent:
    import httpx

    with pytest.raises(ProviderPermanent) as caught:
        raise_for(httpx.Response(status, json=body), what="submit")
    return caught.value


def test_provider_refusals_map_to_what_the_bot_does_next() -> None:
    locked = "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard."
    assert status_error(403, {"detail": locked}).reason == "out_of_credit"
    assert (
        status_error(403, {"detail": "User is locked. Reason: TOP_UP."}).reason == "out_of_credit"
    )
    assert status_error(403, {"detail": "Invalid API key"}).reason == "auth"
    assert status_error(402, {"detail": "Insufficient balance"}).reason == "out_of_credit"
    schema = {"detail": [{"loc": ["body", "safety_tolerance"], "msg": "bad", "type": "x"}]}
    assert status_error(422, schema).reason == "invalid_input"  # not a content-policy refusal
    assert status_error(422, {"detail": "prompt is too long"}).reason == "invalid_input"
    policy = {"detail": "Content policy violation: flagged"}
    assert status_error(422, policy).reason == "content_policy"
    assert status_error(404, {"detail": "Not Found"}).reason == "not_found"
