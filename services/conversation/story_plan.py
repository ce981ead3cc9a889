"""A story planned from words: how many shots, what each one shows, and edits to one shot.

Deterministic: the beats come from ``prompt_tables`` (an opening, middle beats in turn, a
closing), each followed by the prompt crafted from the user's words (by the operator's LLM when
one is configured, else the tables), so the plan on the card is what the models are sent.
"""

from __future__ import annotations

import math
import re

from services.conversation.intents import MAX_STORY_SHOTS
from services.conversation.prompt_tables import (
    SHOT_EDIT_LEAD_INS,
    STORY_CLOSING,
    STORY_MIDDLES,
    STORY_OPENING,
)

DEFAULT_SHOTS = 3
MIN_SHOTS = 2
MAX_SHOT_PROMPT = 1500

_COUNT_PHRASE = re.compile(
    r"(?:\b(?:in|of|with|из|в)\s+)?\b(?:\d{1,2}|two|three|four|five|six|seven|eight|два|две|три|"
    r"четыре|пять|шесть|семь|восемь)[\s-]*(?:shots?|scenes?|parts?|сцен\w*|кадр\w*|част\w*|"
    r"эпизод\w*)\b",
    re.IGNORECASE,
)
_STORY_WORD = re.compile(
    r"\b(?:story\s+(?:video|film)|story|short film|multi[- ]shot\s+video|истори[юяи])\b",
    re.IGNORECASE,
)
_SHOT_EDIT = re.compile(
    r"^\s*(?:shot|scene|кадр|сцена)\s*(?:#|№)?\s*(\d{1,2})\s*[:.,—–-]?\s*(.+)$",
    re.IGNORECASE | re.DOTALL,
)


def subject_words(words: str) -> str:
    """The words with the story phrasing turned into a plain request for a video, so prompt
    craft finds the subject: "a 3-shot story about a fox" → "a video about a fox"."""
    plain = _COUNT_PHRASE.sub(" ", words)
    plain = _STORY_WORD.sub(lambda m: "видео" if m.group(0)[0].lower() == "и" else "video", plain)
    return " ".join(plain.split())


def shot_count(asked: int | None, seconds: int | None, longest: int) -> int:
    """How many shots: as asked; else enough for the length asked; else the default."""
    if asked is not None:
        count = asked
    elif seconds is not None and seconds > longest:
        count = math.ceil(seconds / longest)
    else:
        count = DEFAULT_SHOTS
    return max(MIN_SHOTS, min(MAX_STORY_SHOTS, count))


def shot_seconds(durations: tuple[int, ...], count: int, seconds: int | None) -> int:
    """Each shot's length: the shortest the model offers, or the one that makes the length
    asked for with ``count`` shots."""
    if seconds is None:
        return min(durations)
    wanted = seconds / count
    fitting = [d for d in sorted(durations) if d >= wanted]
    return fitting[0] if fitting else max(durations)


def beats(count: int) -> list[str]:
    """The beat of each of ``count`` shots: opening, middles in turn, closing."""
    middles = [STORY_MIDDLES[i % len(STORY_MIDDLES)] for i in range(max(0, count - 2))]
    return [STORY_OPENING, *middles, STORY_CLOSING][:count]


def shot_prompts(base: str, count: int) -> list[str]:
    """The prompt of each shot: its beat, then the crafted prompt of the whole story."""
    return [f"{beat} {base}"[:MAX_SHOT_PROMPT] for beat in beats(count)]


def parse_shot_edit(words: str) -> tuple[int, str] | None:
    """``shot 2: make it night`` → (1, "night"): the shot's index and what to change."""
    found = _SHOT_EDIT.match(words)
    if found is None:
        return None
    change = found.group(2).strip()
    lowered = change.lower()
    for lead in sorted(SHOT_EDIT_LEAD_INS, key=len, reverse=True):
        if lowered.startswith(lead + " "):
            change = change[len(lead) :].strip()
            break
    change = change.strip(" .,;:!")
    if not change:
        return None
    return int(found.group(1)) - 1, change


def edited(prompt: str, change: str) -> str:
    """A shot's prompt with the user's change: it leads, so the model weighs it most."""
    return f"{change[:1].upper()}{change[1:]}. {prompt}"[:MAX_SHOT_PROMPT]
