"""What the conversation shows before and around a job: its card, questions and /status lines.

The messages of a job that runs live in ``services.production.messages``.
"""

from __future__ import annotations

import html
from datetime import datetime
from zoneinfo import ZoneInfo

from services.model.jobs import Job, JobKind, JobState
from services.model.specs import story_of
from services.production import messages
from services.providers.catalogue import (
    MOTION_PRESETS,
    Model,
    get_model,
    models_for,
)
from services.telegram.messenger import Keyboard
from services.texts import text

ASPECT_CYCLE = ("16:9", "9:16", "1:1")


def maker(job: Job) -> Model:
    """The model that makes the job; for a story, the one that makes its shots (the joining
    is the studio's own)."""
    if job.kind == JobKind.STORY:
        return get_model(str(job.params.get("shot_model") or job.model))
    return get_model(job.model)


def card(job: Job, available: int) -> tuple[str, Keyboard]:
    """The confirm card: what will happen and what it costs, with its buttons."""
    model = maker(job)
    lang = job.language
    body = text(
        lang,
        "card",
        what=messages.what(job),
        model=html.escape(model.title),
        details=details(job),
        prompt=messages.user_text(job.prompt or messages.default_prompt(job)),
        cost=job.cost,
        available=available if available < 10**8 else "∞",
    )
    if job.kind == JobKind.STORY:
        return messages.clip(body, messages.TEXT_LIMIT), story_keyboard(job)
    # Only choices the model really offers get a button.
    options: list[tuple[str, str]] = []
    if len(models_for(model.provider, model.kind)) > 1:
        options.append((text(lang, "btn_model"), messages.button(job.id, "mdl")))
    if len(model.durations) > 1:
        options.append(
            (text(lang, "btn_duration", duration=job.duration), messages.button(job.id, "dur"))
        )
    if len(model.aspects) > 1:
        options.append(
            (text(lang, "btn_aspect", aspect=job.aspect), messages.button(job.id, "asp"))
        )
    keyboard: Keyboard = [[(text(lang, "btn_generate"), messages.button(job.id, "go"))]]
    if options:
        keyboard.append(options)
    if job.kind == JobKind.TEXT and job.params.get("crafted") != job.params.get("words"):
        # Either the crafted prompt or the user's own words, one press apart.
        mine = job.prompt == job.params.get("words")
        label = "btn_crafted" if mine else "btn_own_words"
        keyboard.append([(text(lang, label), messages.button(job.id, "own"))])
    keyboard.append([(text(lang, "btn_cancel"), messages.button(job.id, "x"))])
    return messages.clip(body, messages.TEXT_LIMIT), keyboard


def story_keyboard(job: Job) -> Keyboard:
    """A story card's buttons: Generate; cuts or crossfades; music or none; Cancel."""
    lang = job.language
    spec = story_of(job)
    transition = "btn_story_cuts" if spec.transition == "fade" else "btn_story_fades"
    music = "btn_story_no_music" if spec.music else "btn_story_music"
    rows: Keyboard = [[(text(lang, "btn_generate"), messages.button(job.id, "go"))]]
    if job.params.get("base"):
        # A story from words can grow or shrink; an album's shots are its photos and clips.
        rows.append(
            [
                (text(lang, "btn_story_less"), messages.button(job.id, "less")),
                (text(lang, "btn_story_more"), messages.button(job.id, "more")),
            ]
        )
    rows.append(
        [
            (text(lang, transition), messages.button(job.id, "tr")),
            (text(lang, music), messages.button(job.id, "snd")),
        ]
    )
    rows.append([(text(lang, "btn_cancel"), messages.button(job.id, "x"))])
    return rows


def story_details(job: Job) -> str:
    """A story card's middle lines: the shots, the length, the joins and the sound."""
    lang = job.language
    spec = story_of(job)
    lines = []
    for number, index in enumerate(spec.kept, start=1):
        shot = spec.shots[index]
        seconds = f"{shot.seconds:.0f}"
        if shot.source == "photo":
            motion = messages.motion_name(lang, shot.motion or "zoom_in")
            line = text(lang, "story_shot_photo", number=number, motion=motion, seconds=seconds)
        elif shot.source == "clip":
            line = text(lang, "story_shot_clip", number=number, seconds=seconds)
        else:
            prompt = messages.user_text(shot.prompt, 80)
            line = text(lang, "story_shot_words", number=number, prompt=prompt, seconds=seconds)
        lines.append(line)
    mood = text(lang, f"mood_{spec.music}") if spec.music else ""
    return text(
        lang,
        "details_story",
        count=len(spec.kept),
        seconds=f"{spec.seconds:.0f}",
        transition=text(lang, "story_fades" if spec.transition == "fade" else "story_cuts"),
        music=text(lang, "story_music", mood=mood) if spec.music else text(lang, "story_no_music"),
        shots="\n".join(lines),
    )


def details(job: Job) -> str:
    """The card's middle lines: what exactly this kind of job will do."""
    lang = job.language
    if job.kind == JobKind.STORY:
        return story_details(job)
    model = get_model(job.model)
    if job.kind == JobKind.ANIMATE:
        return text(
            lang,
            "details_animate",
            motion=messages.motion_name(lang, str(job.params.get("motion", "zoom_in"))),
            duration=job.duration,
            aspect=job.aspect if model.aspects else text(lang, "aspect_as_photo"),
        )
    if job.kind == JobKind.EXTEND:
        if job.params.get("source_request_id"):
            return text(lang, "details_extend_chained", duration=job.duration)
        effect = str(job.params.get("effect", "slow_tail"))
        return text(
            lang, "details_extend", duration=job.duration, effect=text(lang, f"effect_{effect}")
        )
    if job.kind == JobKind.MUSIC and model.provider == "local":
        return text(
            lang, "details_music", mood=text(lang, f"mood_{job.params.get('mood', 'calm')}")
        )
    if job.kind == JobKind.MUSIC:
        return text(lang, "details_music_ai")
    if job.kind == JobKind.TEXT:
        crafted = job.prompt == job.params.get("crafted") and job.prompt != job.params.get("words")
        key = "details_text_crafted" if crafted else "details_text"
        return text(lang, key, duration=job.duration, aspect=job.aspect)
    return text(lang, "details_mix")


def ask_clip(job: Job) -> tuple[str, Keyboard]:
    """For a clip without a caption: extend it or add music?"""
    lang = job.language
    return text(lang, "ask_clip"), [
        [
            (text(lang, "btn_extend"), messages.button(job.id, "k", "extend")),
            (text(lang, "btn_music"), messages.button(job.id, "k", "music")),
        ],
        [(text(lang, "btn_cancel"), messages.button(job.id, "x"))],
    ]


def ask_motion(job: Job) -> tuple[str, Keyboard]:
    """For a photo without a caption: motion presets as buttons."""
    lang = job.language
    names = [
        (messages.motion_name(lang, m), messages.button(job.id, "m", m)) for m in MOTION_PRESETS
    ]
    rows = [names[i : i + 2] for i in range(0, len(names), 2)]
    rows.append([(text(lang, "btn_cancel"), messages.button(job.id, "x"))])
    return text(lang, "ask_motion"), rows


def job_line(job: Job, now: float) -> str:
    """One line of /status: what, with which model, where it is."""
    lang = job.language
    model = html.escape(maker(job).title)
    started = job.submitted_at or job.updated_at
    if job.state == JobState.DRAFT:
        where = text(lang, "state_draft")
    elif job.progress is not None and job.state == JobState.RUNNING:
        where = f"{int(job.progress * 100)}%"
    elif job.queue_position is not None and job.state == JobState.RUNNING:
        where = text(lang, "state_queue", position=job.queue_position + 1)
    else:
        where = text(lang, f"state_{job.state.value}")
    return f"#{job.id} {messages.what(job)} · {model} · {where} · {messages.elapsed(now - started)}"


def reset_time(lang: str, resets_at: float, now: float, zone: ZoneInfo) -> dict[str, object]:
    """When the allowance resets, as clock time and as "in 5 h 12 min"."""
    left = max(0, int(resets_at - now))
    return {
        "reset_clock": f"{datetime.fromtimestamp(resets_at, zone):%H:%M}",
        "zone": str(zone),
        "reset_in": text(lang, "hours_minutes", hours=left // 3600, minutes=left % 3600 // 60),
    }
