"""The model catalogue: sane data, payloads as each provider spells them, README kept true."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.catalogue import (
    MODELS,
    ModelKind,
    default_model,
    fallback_after,
    get_model,
    models_for,
)
from services.providers.base import JobSpec
from services.providers.http import detail, retry_after
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
    from services.catalogue import Model

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
