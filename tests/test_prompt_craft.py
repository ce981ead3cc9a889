"""Prompt craft: the keyword tables, and the LLM path against a fake OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from services.conversation.prompt_craft import (
    Crafted,
    PromptCrafter,
    craft_from_tables,
    subject_of,
)
from services.conversation.prompt_tables import DEFAULT_LOOK
from tests.fakes.llm import FakeLLM

KEY = "sk-test-9f8e7d6c5b4a39281706SECRETKEY"
MODEL = "gpt-4o-mini"

# ------------------------------------------------------------------------------- tables


def test_tables_are_deterministic() -> None:
    words = "make me a drone video of a fox running through a snowy forest at sunset, anime"
    first = craft_from_tables(words, "en")
    assert all(craft_from_tables(words, "en") == first for _ in range(5))
    assert craft_from_tables("сделай видео про лису в снегу", "ru") == craft_from_tables(
        "сделай видео про лису в снегу", "ru"
    )


def test_sunset_gets_golden_hour_light_and_the_subject_first() -> None:
    prompt = craft_from_tables("make me a video of a sunset over Miami for TikTok", "en")
    assert prompt.startswith("A sunset over Miami. ")
    assert "golden-hour" in prompt
    assert DEFAULT_LOOK["light"] not in prompt


@pytest.mark.parametrize(
    "words",
    [
        "drone shot of a lighthouse on a cliff",
        "an aerial view of a lighthouse",
        "сними маяк с высоты",
        "маяк, дрон",
    ],
)
def test_drone_and_aerial_requests_get_an_aerial_move(words: str) -> None:
    language = "ru" if any("а" <= ch <= "я" for ch in words) else "en"
    prompt = craft_from_tables(words, language)
    assert "aerial drone move" in prompt
    assert DEFAULT_LOOK["camera"].capitalize() not in prompt


def test_russian_request_words_are_stripped() -> None:
    assert subject_of("сделай видео про лису в снегу", "ru") == "лису в снегу"
    prompt = craft_from_tables("сделай видео про лису в снегу", "ru")
    assert prompt.startswith("Лису в снегу. ")
    assert "snow" in prompt.split(". ", 1)[1]  # an English snow descriptor after the subject
    for request_word in ("сделай", "видео", "про "):
        assert request_word not in prompt.lower()


@pytest.mark.parametrize(
    ("words", "language", "subject"),
    [
        ("make me a video of a sunset over Miami for TikTok", "en", "a sunset over Miami"),
        ("create a clip about a cat playing piano", "en", "a cat playing piano"),
        ("can you generate a horse galloping on a beach", "en", "a horse galloping on a beach"),
        (
            "Can you please make me a quick 10-second vertical video of a sunset over Miami "
            "for TikTok? Just do it.",
            "en",
            "a sunset over Miami",
        ),
        ("a fox in snow, vertical, 10s, draft", "en", "a fox in snow"),
        ("show how bees make honey, square format, no questions", "en", "bees make honey"),
        (
            "a man in shorts walking his dog, for YouTube Shorts",
            "en",
            "a man in shorts walking his dog",
        ),
        ("sunset over Times Square", "en", "sunset over Times Square"),
        ("a square table in a vertical garden", "en", "a square table in a vertical garden"),
        ("сними ролик, как кот играет с клубком, 10 сек, для рилс", "ru", "кот играет с клубком"),
        ("вертикальное видео про закат на море, быстро", "ru", "закат на море"),
        ("просто сделай видео о старом маяке для TikTok", "ru", "старом маяке"),
        (
            "Сделай мне, пожалуйста, короткий ролик о том, как лиса бежит по лесу, 9:16",
            "ru",
            "лиса бежит по лесу",
        ),
        ("кот в квадратной коробке", "ru", "кот в квадратной коробке"),
        # Other languages fall back to the English tables and keep their own words.
        ("ein Fuchs im Schnee, TikTok, 10s", "de", "ein Fuchs im Schnee"),
    ],
)
def test_subject_of_keeps_the_subject_and_action(words: str, language: str, subject: str) -> None:
    assert subject_of(words, language) == subject


@pytest.mark.parametrize(
    ("words", "language"),
    [
        (
            "make me a quick draft 10 second vertical video of a lighthouse for TikTok "
            "Reels and YouTube Shorts, preview, just do it, no questions",
            "en",
        ),
        (
            "a lighthouse, 9:16, widescreen, in portrait mode, 5 seconds, HD, as fast as possible",
            "en",
        ),
        (
            "просто сделай быстро вертикальное видео 10 сек про маяк для тиктока и рилс, "
            "черновик, без вопросов",
            "ru",
        ),
        ("маяк, в квадратном формате, на 5 секунд, для ютуба, превью", "ru"),
    ],
)
def test_platform_duration_and_quality_words_never_reach_the_prompt(
    words: str, language: str
) -> None:
    prompt = craft_from_tables(words, language).lower()
    banned = (
        "tiktok", "reels", "shorts", "youtube", "vertical", "widescreen", "portrait mode",
        "9:16", "second", " 10 ", " 5 ", "quick", "draft", "preview", "hd", "fast",
        "just do it", "question", "тикток", "рилс", "ютуб", "вертикальн", "квадратн", "сек",
        "быстро", "черновик", "превью", "просто", "вопрос",
    )  # fmt: skip
    leaked = [word for word in banned if word in prompt]
    assert not leaked, f"{leaked} in {prompt!r}"
    assert prompt.startswith(("a lighthouse.", "маяк."))


def test_empty_words_still_give_a_usable_prompt() -> None:
    for words in ("", "   ", "make me a video for TikTok, 10 seconds", "сделай видео"):
        prompt = craft_from_tables(words, "ru" if "сделай" in words else "en")
        subject, _, look = prompt.partition(". ")
        assert len(subject) > 5 and subject[0].isupper()
        assert look.startswith(DEFAULT_LOOK["camera"].capitalize())
        assert prompt.endswith(".")


def test_defaults_when_nothing_matches() -> None:
    prompt = craft_from_tables("a wooden chair", "en")
    assert prompt == (
        "A wooden chair. Slow dolly-in, 35 mm lens, natural soft light, subtle natural motion, "
        "cinematic, photoreal."
    )


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("a girl's face in the wind", "85 mm"),
        ("портрет старика", "85 mm"),
        ("coffee being poured into a cup", "macro"),
        ("neon night city", "neon"),
        ("ночной город", "neon"),
        ("a lake at night", "moonlit"),
        ("waves on the ocean", "ocean waves"),
        ("девушка у моря", "ocean waves"),
        ("rain on a window", "rain"),
        ("a misty forest", "forest"),
        ("a samurai, anime", "anime style"),
        ("кот-самурай в стиле аниме", "anime style"),
        ("a cartoon dog", "cartoon"),
        ("retro car on a highway", "film grain"),
        ("city streets", "24 mm"),
    ],
)
def test_words_select_their_looks(words: str, expected: str) -> None:
    language = "ru" if any("а" <= ch.lower() <= "я" for ch in words) else "en"
    assert expected in craft_from_tables(words, language)


def test_table_prompts_stay_under_600_characters() -> None:
    long_words = "make me a video of " + "a fox running through a snowy forest at sunset " * 40
    prompt = craft_from_tables(long_words + " drone anime retro ocean city rain", "en")
    assert len(prompt) <= 600
    assert prompt.startswith("A fox running")
    assert "\x00" not in craft_from_tables("a\x00fox\x1b in snow", "en")


# -------------------------------------------------------------------------------- the LLM


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def crafter(http: httpx.AsyncClient, llm: FakeLLM, **overrides: object) -> PromptCrafter:
    values: dict[str, object] = {"base_url": llm.base_url, "api_key": KEY, "model": MODEL}
    values.update(overrides)
    return PromptCrafter(http, **values)  # type: ignore[arg-type]


async def test_llm_prompt_is_used_and_the_request_is_shaped(
    http: httpx.AsyncClient, llm: FakeLLM
) -> None:
    llm.reply = json.dumps({"prompt": "  A red fox trots through deep snow,\nslow dolly-in.  "})
    crafted = await crafter(http, llm).craft(
        "make me a video of a fox in the snow for TikTok", "en", aspect="9:16", seconds=10
    )
    assert crafted == Crafted("A red fox trots through deep snow, slow dolly-in.", "llm")
    assert llm.refusals == []
    [request] = llm.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body is not None
    assert body["model"] == MODEL
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0.4
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    user = request.user_message()
    assert "a fox in the snow" in user
    assert "9:16" in user and "10 seconds" in user
    assert "TikTok" not in user and "make me" not in user


async def test_base_url_with_a_trailing_slash_and_no_key(http: httpx.AsyncClient) -> None:
    async with FakeLLM() as local:  # a local Ollama wants no key
        crafting = PromptCrafter(http, base_url=local.base_url + "/", model="llama3.2")
        assert crafting.enabled
        crafted = await crafting.craft("сделай видео про лису в снегу", "ru")
    assert crafted.source == "llm"
    assert "лису в снегу" in crafted.prompt  # the fake builds its prompt from the subject
    [request] = local.requests
    assert request.path == "/v1/chat/completions"
    assert "authorization" not in request.headers


async def test_fenced_json_answer_is_accepted(http: httpx.AsyncClient, llm: FakeLLM) -> None:
    llm.reply = 'Here you go:\n```json\n{"prompt": "A fox in snow, aerial shot."}\n```'
    crafted = await crafter(http, llm).craft("a fox", "en")
    assert crafted == Crafted("A fox in snow, aerial shot.", "llm")


async def test_timeout_falls_back_to_the_tables_in_time(
    http: httpx.AsyncClient, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    llm.delay = 5.0
    started = time.monotonic()
    crafted = await crafter(http, llm, timeout=0.3).craft("a sunset over Miami", "en")
    elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 0.5, f"took {elapsed:.2f}s"
    assert crafted == Crafted(craft_from_tables("a sunset over Miami", "en"), "tables")
    assert "LLM unavailable (timeout)" in caplog.text


@pytest.mark.parametrize(
    "reply",
    [
        None,  # malformed: prose instead of JSON
        '{"prompt": ""}',
        '{"prompt": 42}',
        '{"text": "A fox."}',
        '["A fox."]',
        json.dumps({"prompt": "A fox. " * 200}),
        json.dumps({"prompt": "A fox\x00 in snow"}),
        json.dumps({"prompt": f"A fox, key {KEY}"}),
    ],
)
async def test_a_bad_answer_falls_back_to_the_tables(
    http: httpx.AsyncClient, llm: FakeLLM, reply: str | None
) -> None:
    if reply is None:
        llm.malformed = True
    else:
        llm.reply = reply
    crafted = await crafter(http, llm).craft("a fox in snow", "en")
    assert crafted == Crafted(craft_from_tables("a fox in snow", "en"), "tables")
    assert len(llm.requests) == 1


@pytest.mark.parametrize(("key", "status"), [("sk-wrong-key-000000000000", None), (KEY, 500)])
async def test_error_statuses_fall_back_to_the_tables(
    http: httpx.AsyncClient,
    llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
    key: str,
    status: int | None,
) -> None:
    llm.status = status
    crafted = await crafter(http, llm, api_key=key).craft("a fox in snow", "en")
    assert crafted.source == "tables"
    expected = 401 if status is None else status
    assert [s for s, _ in llm.refusals] == [expected]
    assert f"LLM unavailable (HTTP {expected})" in caplog.text


async def test_connection_refused_falls_back(http: httpx.AsyncClient) -> None:
    async with FakeLLM() as gone:
        url = gone.base_url
    crafted = await PromptCrafter(http, base_url=url, model=MODEL, timeout=2).craft("a fox", "en")
    assert crafted.source == "tables"


async def test_the_key_and_the_words_never_reach_the_logs(
    http: httpx.AsyncClient, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    words = "a secret birthday surprise for Anna"
    results = []
    for setup in ({"status": 500}, {"malformed": True}, {"delay": 1.0}, {}):
        llm.status, llm.malformed, llm.delay = None, False, 0.0
        for name, value in setup.items():
            setattr(llm, name, value)
        results.append(await crafter(http, llm, timeout=0.3).craft(words, "en"))
    # A wrong key comes back masked in the 401 body; the crafter must not log that either.
    results.append(await crafter(http, llm, api_key=KEY[:-1] + "X").craft(words, "en"))
    assert [r.source for r in results] == ["tables", "tables", "tables", "llm", "tables"]
    warnings = [r for r in caplog.records if r.name == "services.conversation.prompt_craft"]
    assert len(warnings) == 4 and all(r.levelno == logging.WARNING for r in warnings)
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (KEY, KEY[:-1] + "X", KEY[-12:], "Anna", "birthday"):
        assert secret not in logged
    assert all(KEY not in r.prompt for r in results)


async def test_disabled_crafter_uses_the_tables_without_a_call(
    http: httpx.AsyncClient, llm: FakeLLM
) -> None:
    for crafting in (
        PromptCrafter(http),
        PromptCrafter(http, api_key=KEY, model=MODEL),
        PromptCrafter(http, base_url=llm.base_url, api_key=KEY),
        PromptCrafter(http, base_url=" ", model=MODEL),
    ):
        assert not crafting.enabled
        crafted = await crafting.craft("a sunset over Miami", "en")
        assert crafted == Crafted(craft_from_tables("a sunset over Miami", "en"), "tables")
    assert llm.requests == []


async def test_fake_refuses_a_request_openai_would_refuse(
    http: httpx.AsyncClient, llm: FakeLLM
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    url = f"{llm.base_url}/chat/completions"
    bad = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": 3}
    answer = await http.post(url, json=bad, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "decimal_above_max_value"
    no_json_word = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"},
    }
    answer = await http.post(url, json=no_json_word, headers=headers)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "messages"
    answer = await http.post(url, json={"messages": []}, headers={})
    assert answer.status_code == 401
