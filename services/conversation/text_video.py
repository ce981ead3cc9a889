"""Text to video: words that ask for a video become a draft with a crafted prompt.

Everything this kind needs in one place: the length and shape read from the words (and the
user's settings), the draft it makes, and the prompt either crafted from the words or the words
themselves. The conversation (``studio``) asks the crafter and shows the card; the poller sends
the job like any other, with no input files.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.conversation.choices import first_offered
from services.conversation.intents import parse_animation, without_commands
from services.conversation.preferences import Preferences
from services.model.jobs import Job, JobKind, JobState
from services.providers.catalogue import Model

# A film's shape unless the words or the settings ask for another (models without an aspect
# field make 16:9 anyway).
DEFAULT_ASPECT = "16:9"


@dataclass(frozen=True)
class Shape:
    """Length and shape of a video made from words."""

    duration: int
    aspect: str


def shape_for(words: str, model: Model, prefs: Preferences) -> Shape:
    """What the words ask for ("10 seconds", "for TikTok"), else the settings, as offered."""
    wish = parse_animation(words)
    duration = first_offered(model.durations, [wish.duration, prefs.duration], model.durations[0])
    fallback = model.aspects[0] if model.aspects else DEFAULT_ASPECT
    aspect = first_offered(model.aspects, [wish.aspect, prefs.aspect], fallback)
    assert duration is not None and aspect is not None
    return Shape(duration, aspect)


def own_words(words: str) -> str:
    """The user's words as a prompt: without the phrases meant for the bot."""
    return without_commands(words)


def draft(
    *,
    user_id: int,
    chat_id: int,
    language: str,
    message_id: int,
    words: str,
    model: Model,
    shape: Shape,
    crafted: str,
    as_file: bool,
) -> Job:
    """The draft of a video from words; its prompt is the crafted one until the user swaps."""
    mine = own_words(words)
    params: dict[str, object] = {
        "duration": shape.duration,
        "aspect": shape.aspect,
        "as_file": as_file,
        "words": mine,
        "crafted": crafted,
    }
    return Job(
        id=0,
        user_id=user_id,
        chat_id=chat_id,
        kind=JobKind.TEXT,
        state=JobState.DRAFT,
        provider=model.provider,
        model=model.key,
        prompt=crafted or mine,
        params=params,
        cost=model.cost(shape.duration),
        language=language,
        source_message_id=message_id,
    )


def swapped_prompt(job: Job) -> str:
    """The other prompt of a draft: the user's words instead of the crafted one, or back."""
    words = str(job.params.get("words") or "")
    crafted = str(job.params.get("crafted") or "")
    return crafted if job.prompt == words and crafted else words or job.prompt
