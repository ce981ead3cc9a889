"""What the words of a caption ask for: camera motion, aspect ratio, duration."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.providers.catalogue import DEFAULT_MOTION

# Keyword tables are data: per motion, the phrases that select it (English and Russian).
MOTION_WORDS: dict[str, tuple[str, ...]] = {
    "zoom_out": (
        "zoom out",
        "pull back",
        "pull out",
        "dolly out",
        "reveal",
        "wider",
        "отдал",
        "отъезд",
        "общий план",
    ),
    "zoom_in": (
        "zoom in",
        "push in",
        "dolly in",
        "closer",
        "close up",
        "close-up",
        "zoom",
        "приближ",
        "наезд",
        "крупн",
    ),
    "pan_left": ("pan left", "to the left", "leftward", "move left", "влево", "налево"),
    "pan_right": ("pan right", "to the right", "rightward", "move right", "вправо", "направо"),
    "pan_up": ("pan up", "tilt up", "upward", "look up", "rise", "вверх", "наверх"),
    "pan_down": ("pan down", "tilt down", "downward", "look down", "вниз"),
}
ASPECT_WORDS: dict[str, tuple[str, ...]] = {
    "9:16": (
        "tiktok",
        "reels",
        "reel",
        "shorts",
        "stories",
        "story",
        "vertical",
        "portrait",
        "9:16",
        "вертикал",
        "сторис",
        "рилс",
        "тикток",
    ),
    "16:9": ("youtube", "landscape", "horizontal", "widescreen", "16:9", "горизонт", "ютуб"),
    "1:1": ("square", "1:1", "квадрат"),
}

_DURATION = re.compile(
    r"\b(5|10|five|ten|пять|десять)\s*(?:-?\s*)(s|sec|secs|second|seconds|с|сек|секунд\w*)\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = {"five": 5, "ten": 10, "пять": 5, "десять": 10}


@dataclass(frozen=True)
class AnimationRequest:
    """What a caption asks of an animation; None where it says nothing."""

    motion: str
    aspect: str | None
    duration: int | None


def _first_match(text: str, table: dict[str, tuple[str, ...]]) -> str | None:
    # The earliest phrase in the text wins, so "zoom out then pan left" means zoom out.
    best: tuple[int, str] | None = None
    for key, words in table.items():
        for word in words:
            pos = text.find(word)
            if pos >= 0 and (best is None or pos < best[0]):
                best = (pos, key)
    return best[1] if best else None


def parse_animation(prompt: str) -> AnimationRequest:
    """Read motion, aspect and duration from a caption."""
    text = " ".join(prompt.lower().split())
    motion = _first_match(text, MOTION_WORDS) or DEFAULT_MOTION
    aspect = _first_match(text, ASPECT_WORDS)
    duration: int | None = None
    found = _DURATION.search(text)
    if found:
        raw = found.group(1).lower()
        duration = _NUMBER_WORDS.get(raw) or int(raw)
    return AnimationRequest(motion=motion, aspect=aspect, duration=duration)


def named_motion(words: str) -> str | None:
    """The camera move the words name, if they name one."""
    return _first_match(" ".join(words.lower().split()), MOTION_WORDS)


# Albums and stories: how the shots are joined and what plays under them.
STITCH_WORDS: tuple[str, ...] = (
    "stitch",
    "join",
    "combine",
    "merge",
    "glue",
    "склей",
    "склеить",
    "соедини",
    "объедини",
    "смонтируй",
)
NO_MUSIC_WORDS: tuple[str, ...] = (
    "no music",
    "without music",
    "no soundtrack",
    "without sound",
    "silent",
    "без музыки",
    "без звука",
    "без саундтрека",
)
MUSIC_WORDS: tuple[str, ...] = ("music", "soundtrack", "музык", "саундтрек")
CUT_WORDS: tuple[str, ...] = (
    "hard cut",
    "no transitions",
    "without transitions",
    "no fades",
    "just cuts",
    "cuts only",
    "без переходов",
    "резкие склейки",
)


@dataclass(frozen=True)
class JoinWish:
    """What the words of an album or a story say about joining its shots."""

    music: bool | None  # True: asked for music; False: asked for none; None: not said
    cuts: bool  # hard cuts instead of crossfades
    stitch: bool  # "stitch/join these" was said


def join_wish(words: str) -> JoinWish:
    """Read music, transitions and "join these" from a caption."""
    text = " ".join(words.lower().split())
    music: bool | None = None
    if any(w in text for w in NO_MUSIC_WORDS):
        music = False
    elif any(w in text for w in MUSIC_WORDS):
        music = True
    return JoinWish(
        music=music,
        cuts=any(w in text for w in CUT_WORDS),
        stitch=any(w in text for w in STITCH_WORDS),
    )


def aspect_for_size(width: int, height: int) -> str:
    """The offered aspect closest to a photo's own shape."""
    ratio = width / height
    if ratio > 1.25:
        return "16:9"
    if ratio < 0.8:
        return "9:16"
    return "1:1"


# A caption with one of these skips the confirm card and goes straight to submit.
SKIP_CONFIRM_WORDS: tuple[str, ...] = (
    "just do it",
    "no confirm",
    "don't ask",
    "dont ask",
    "без подтверждения",
    "просто сделай",
    "не спрашивай",
)


# Words that ask for the fast (cheaper, quicker) mode for this one request, whatever /settings says.
FAST_WORDS: tuple[str, ...] = (
    "quick video",
    "quick draft",
    "quick clip",
    "draft video",
    "as a draft",
    "just a draft",
    "rough draft",
    "preview",
    "fast mode",
    "cheap version",
    "быстрое видео",
    "быстрый ролик",
    "черновик",
    "превью",
    "по-быстрому",
)


_FAST = re.compile(
    r"(?<!\w)(?:" + "|".join(re.escape(w) for w in FAST_WORDS) + r")(?!\w)", re.IGNORECASE
)


def wants_fast(prompt: str) -> bool:
    """Whether the words ask for the fast mode ("a quick draft", "черновик")."""
    return _FAST.search(" ".join(prompt.split())) is not None


def wants_no_confirmation(prompt: str) -> bool:
    """Whether the caption says to go ahead without the card."""
    text = " ".join(prompt.lower().split())
    return any(phrase in text for phrase in SKIP_CONFIRM_WORDS)


def without_commands(prompt: str) -> str:
    """The prompt minus the "just do it" phrases, which are for the bot, not the model."""
    cleaned = prompt
    for phrase in SKIP_CONFIRM_WORDS:
        cleaned = re.sub(re.escape(phrase), "", cleaned, flags=re.IGNORECASE)
    return " ".join(cleaned.split()).strip(" ,.;!-")


# What a clip's caption (or a reply to a video) asks for, per language; the earliest phrase wins.
CLIP_WORDS: dict[str, tuple[str, ...]] = {
    "extend": (
        "longer",
        "continue",
        "extend",
        "keep going",
        "make it go on",
        "more of this",
        "продолж",
        "длиннее",
        "удлин",
        "дальше",
        "延长",
        "继续",
    ),
    "music": (
        "add music",
        "music",
        "soundtrack",
        "audio",
        "sound",
        "song",
        "score",
        "музык",
        "саундтрек",
        "звук",
        "песн",
        "配乐",
        "音乐",
    ),
}
# Phrases that look like a request but ask for something new, not for this clip.
NOT_CLIP_INTENT: tuple[str, ...] = (
    "new video",
    "make me a",
    "generate an image",
    "new image",
    "another video",
    "from scratch",
    "новое видео",
    "новую картинку",
    "сгенерируй картинку",
    "сделай мне",
)


def clip_intent(text: str | None) -> str | None:
    """``extend``, ``music`` or None (ask) for what the user said about a clip."""
    words = " ".join((text or "").lower().split())
    if not words or any(phrase in words for phrase in NOT_CLIP_INTENT):
        return None
    return _first_match(words, CLIP_WORDS)


# Plain text that asks for a video made from words (text-to-video): a request verb followed by
# a video word ("make me a video of…", "сними ролик о…"), or a message that starts with a video
# word ("a TikTok about…", "видео про…"), with something to film after it. "I saw a video of
# you" has neither, so it stays chat.
VIDEO_NOUNS: tuple[str, ...] = (
    "video", "clip", "tiktok", "reel", "short film", "promo", "видео", "ролик", "клип",
    "тикток", "рилс",
)  # fmt: skip
# What ties the video word to its subject: "a video *of*…", "ролик *про*…". Without one ("video
# is not working", "видео не пришло") it is talk about a video, not a request for one.
SUBJECT_WORDS: tuple[str, ...] = (
    "of", "about", "with", "showing", "where", "in which", "featuring", "for",
    "про", "о", "об", "с", "со", "где", "как", "в котором", "для",
)  # fmt: skip
REQUEST_VERBS: tuple[str, ...] = (
    "make", "create", "generate", "render", "produce", "film", "shoot", "animate",
    "give me", "i want", "i'd like", "i would like",
    "сделай", "сделайте", "сними", "снимите", "создай", "создайте", "сгенерируй",
    "сгенерируйте", "смонтируй", "хочу",
)  # fmt: skip
# What may stand at the start before a video word: courtesy and articles.
_LEAD_INS = (
    r"(?:(?:please|pls|can you|could you|пожалуйста|a|an|one|my|new|short|quick|small|draft|"
    r"rough|cinematic|funny|cool|epic|vertical|square|короткое|короткий|быстрое)\s+)*"
)
# Words that ask for a still image (or something else) rather than a video keep today's hint.
NOT_VIDEO_REQUEST: tuple[str, ...] = (
    "an image",
    "a picture",
    "a photo of",
    "a drawing",
    "a logo",
    "картинк",
    "изображени",
    "фото ",
    "рисунок",
    "логотип",
)


def _alternatives(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_NOUN = rf"(?:{_alternatives(VIDEO_NOUNS)})"
# The subject after the video word: a linking word, then at least one word of letters.
_SUBJECT = rf"\W+(?:{_alternatives(SUBJECT_WORDS)})\W.*?[^\W\d_]{{2,}}"
_STARTS_WITH_VIDEO = re.compile(rf"^{_LEAD_INS}{_NOUN}\b{_SUBJECT}", re.IGNORECASE)
_VERB_THEN_VIDEO = re.compile(
    rf"(?:^|\W)(?:{_alternatives(REQUEST_VERBS)})\b(?:\W+\w+){{0,4}}?\W+{_NOUN}\b{_SUBJECT}",
    re.IGNORECASE,
)


def asks_for_video(words: str) -> bool:
    """Whether plain text asks for a video made from words."""
    text = " ".join(words.lower().split())
    if any(phrase in text + " " for phrase in NOT_VIDEO_REQUEST):
        return False
    return bool(_STARTS_WITH_VIDEO.search(text) or _VERB_THEN_VIDEO.search(text))


# --- stories ---------------------------------------------------------------------------------

_COUNT_WORDS: dict[str, int] = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "два": 2,
    "две": 2,
    "три": 3,
    "четыре": 4,
    "пять": 5,
    "шесть": 6,
    "семь": 7,
    "восемь": 8,
}
_COUNT = rf"(\d{{1,2}}|{'|'.join(_COUNT_WORDS)})"
# "a 3-shot story", "three scenes", "из 4 сцен", "5 кадров": how many shots the user wants.
_SHOT_COUNT = re.compile(
    rf"\b{_COUNT}[\s-]*(?:shots?|scenes?|parts?|сцен\w*|кадр\w*|част\w*|эпизод\w*)\b",
    re.IGNORECASE,
)
# A story request, not a platform: "a story about…", "a story video", "историю про…". An
# Instagram story or "for stories" is a shape (9:16), never a request for several shots.
STORY_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?<!instagram )(?<!insta )(?<!ig )\bstory\s+(?:video\s+|film\s+)?(?:about|of)\b"),
    re.compile(r"\bstory\s+(?:video|film)\b"),
    re.compile(r"\b(?:short film|multi[- ]shot|storyboard)\b"),
    re.compile(r"\bистори[юяи]\s+(?:про|о|об|с)\b"),
    re.compile(r"\b(?:короткометраж\w*|мини[- ]фильм\w*)\b"),
)
CONTINUITY_WORDS: tuple[str, ...] = (
    "continuous",
    "continuity",
    "one take",
    "single take",
    "seamless",
    "same character",
    "непрерывн",
    "одним кадром",
    "один дубль",
    "тот же персонаж",
    "бесшовн",
)
_SECONDS = re.compile(
    r"\b(\d{1,3})\s*-?\s*(s|sec|secs|seconds?|с|сек|секунд\w*)\b"
    r"|\b(\d)\s*-?\s*(min|mins|minutes?|мин|минут\w*)\b",
    re.IGNORECASE,
)
_STORY_CONTEXT = re.compile(rf"\b(?:{_NOUN}|story|stories|истори\w*|фильм\w*)\b")
MAX_STORY_SHOTS = 8  # a plan from words: longer ones cost too much to be what people mean


@dataclass(frozen=True)
class StoryAsk:
    """What words asking for a story say: how many shots (None: not said) and whether each
    shot should continue from the last frame of the one before."""

    shots: int | None
    continuity: bool


def asks_for_story(words: str) -> StoryAsk | None:
    """Whether plain text asks for a story of several shots, and what it says about them."""
    text = " ".join(words.lower().split())
    if any(phrase in text + " " for phrase in NOT_VIDEO_REQUEST):
        return None
    count = _SHOT_COUNT.search(text)
    story = any(p.search(text) for p in STORY_PATTERNS)
    # "Three shots" alone may be a round of drinks: a count needs a story or video word too.
    if not story and (count is None or not _STORY_CONTEXT.search(text)):
        return None
    shots = None
    if count is not None:
        raw = count.group(1)
        shots = max(2, min(MAX_STORY_SHOTS, _COUNT_WORDS.get(raw) or int(raw)))
    return StoryAsk(shots, any(w in text for w in CONTINUITY_WORDS))


def asked_seconds(words: str) -> int | None:
    """A length the words ask for, in seconds, whatever a model offers ("a 30 second video")."""
    found = _SECONDS.search(" ".join(words.lower().split()))
    if found is None:
        return None
    if found.group(1):
        return int(found.group(1))
    return int(found.group(3)) * 60
