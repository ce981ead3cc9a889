"""The safety screen: refuse what the bot must not make, before anything is spent.

A word screen is a first line, not a classifier: it catches the plain requests, and the
providers' own moderation catches the rest (their refusals are explained and refunded).
"""

from __future__ import annotations

import re

# Tables are data, per language. An entry ending in "*" matches any word starting with it
# (word stems, needed for Russian endings); other entries match whole words only.
SEXUAL = (
    "nude*",
    "naked",
    "nsfw",
    "porn*",
    "sex",
    "sexual*",
    "erotic*",
    "undress*",
    "topless",
    "lingerie",
    "striptease",
    "голая",
    "голый",
    "обнажен*",
    "порно*",
    "секс",
    "эрот*",
    "раздет*",
    "раздень*",
)
MINORS = (
    "child*",
    "kid",
    "kids",
    "minor",
    "minors",
    "teen*",
    "underage",
    "schoolgirl*",
    "schoolboy*",
    "little girl",
    "little boy",
    "baby",
    "ребен*",
    "ребён*",
    "дет*",
    "школьни*",
    "подрост*",
    "малолет*",
    "девочк*",
    "мальчик*",
)
SUGGESTIVE = (
    "sexy",
    "seductive*",
    "sensual*",
    "flirt*",
    "kiss*",
    "bikini*",
    "провокац*",
    "сексуал*",
    "соблазн*",
    "целу*",
)
LIKENESS = (
    "deepfake*",
    "deep fake*",
    "face swap*",
    "faceswap*",
    "celebrit*",
    "famous person",
    "politician*",
    "дипфейк*",
    "знаменитост*",
    "политик*",
    "замени лицо",
)
# Real, named people whose likeness is a common abuse target; a prompt naming them is refused.
NAMED_PEOPLE = (
    "taylor swift",
    "elon musk",
    "donald trump",
    "joe biden",
    "barack obama",
    "vladimir putin",
    "zelensk*",
    "xi jinping",
    "kim kardashian",
    "scarlett johansson",
    "emma watson",
    "путин*",
    "зеленск*",
    "трамп*",
    "байден*",
    "илон* маск*",
)


def _pattern(entry: str) -> str:
    parts = [re.escape(p.rstrip("*")) + (r"\w*" if p.endswith("*") else "") for p in entry.split()]
    return r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)"


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(_pattern(word), text) for word in words)


def screen(prompt: str) -> str | None:
    """The reason a prompt is refused (a text key), or None if it may go ahead."""
    text = " ".join(prompt.lower().split())
    if not text:
        return None
    if _has(text, MINORS) and (_has(text, SEXUAL) or _has(text, SUGGESTIVE)):
        return "refused_minors"
    if _has(text, SEXUAL):
        return "refused_sexual"
    if _has(text, LIKENESS) or _has(text, NAMED_PEOPLE):
        return "refused_likeness"
    return None
