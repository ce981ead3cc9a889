"""What the user sees for a job: texts and buttons, built from the job and the text table.

Buttons carry compact callback data, ``j:<job id>:<action>[:<arg>]``; everything else is read
from the database when the button is pressed, so buttons survive restarts.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from services.catalogue import get_model, models_for
from services.intents import DEFAULT_MOTION, MOTION_PRESETS, MOTION_PROMPTS
from services.jobs import Job, JobKind, JobState
from services.telegram_edge import Keyboard
from services.texts import text

CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
ASPECT_CYCLE = ("16:9", "9:16", "1:1")


@dataclass(frozen=True)
class Press:
    """A decoded button press."""

    job_id: int
    action: str
    arg: str | None


def button(job_id: int, action: str, arg: str | None = None, prefix: str = "j") -> str:
    """Callback data for a job button (always well under 64 bytes)."""
    data = f"{prefix}:{job_id}:{action}" + (f":{arg}" if arg else "")
    assert len(data.encode()) <= 64
    return data


def parse_button(data: str | None, prefix: str = "j") -> Press | None:
    """Decode callback data; None for anything we did not make."""
    if not data:
        return None
    parts = data.split(":")
    if len(parts) not in (3, 4) or parts[0] != prefix or not parts[1].isdigit():
        return None
    if len(parts[1]) > 12 or not parts[2].isalpha():
        return None
    return Press(int(parts[1]), parts[2], parts[3] if len(parts) == 4 else None)


def clip(value: str, limit: int) -> str:
    """Cut ``value`` to ``limit`` characters, marking the cut."""
    return value if len(value) <= limit else value[: max(0, limit - 1)] + "…"


def user_text(value: str, limit: int = 300) -> str:
    """User-supplied text, cut and escaped for HTML."""
    return html.escape(clip(value.strip(), limit), quote=False)


def elapsed(seconds: float) -> str:
    """``0:42`` or ``1:05:09``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def human_size(size: int) -> str:
    """``12.3 MB`` (decimal megabytes, as Telegram counts them)."""
    return f"{size / 1_000_000:.1f} MB"


def what(job: Job) -> str:
    """``Animate photo`` etc."""
    return text(job.language, f"what_{job.kind.value}")


def motion_name(lang: str, motion: str) -> str:
    """A motion's display name."""
    return text(lang, f"motion_{motion}")


def card(job: Job, available: int) -> tuple[str, Keyboard]:
    """The confirm card: what will happen and what it costs, with its buttons."""
    model = get_model(job.model)
    lang = job.language
    body = text(
        lang,
        "card",
        what=what(job),
        model=html.escape(model.title),
        details=details(job),
        prompt=user_text(job.prompt or default_prompt(job)),
        cost=job.cost,
        available=available if available < 10**8 else "∞",
    )
    # Only choices the model really offers get a button.
    options: list[tuple[str, str]] = []
    if len(models_for(model.provider, model.kind)) > 1:
        options.append((text(lang, "btn_model"), button(job.id, "mdl")))
    if len(model.durations) > 1:
        options.append((text(lang, "btn_duration", duration=job.duration), button(job.id, "dur")))
    if len(model.aspects) > 1:
        options.append((text(lang, "btn_aspect", aspect=job.aspect), button(job.id, "asp")))
    keyboard: Keyboard = [[(text(lang, "btn_generate"), button(job.id, "go"))]]
    if options:
        keyboard.append(options)
    if job.kind == JobKind.TEXT and job.params.get("crafted") != job.params.get("words"):
        # Either the crafted prompt or the user's own words, one press apart.
        mine = job.prompt == job.params.get("words")
        label = "btn_crafted" if mine else "btn_own_words"
        keyboard.append([(text(lang, label), button(job.id, "own"))])
    keyboard.append([(text(lang, "btn_cancel"), button(job.id, "x"))])
    return clip(body, TEXT_LIMIT), keyboard


def details(job: Job) -> str:
    """The card's middle lines: what exactly this kind of job will do."""
    lang = job.language
    model = get_model(job.model)
    if job.kind == JobKind.ANIMATE:
        return text(
            lang,
            "details_animate",
            motion=motion_name(lang, str(job.params.get("motion", "zoom_in"))),
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


def default_prompt(job: Job) -> str:
    """What to show when the user gave no words: for a model, the prompt it will be sent."""
    motion = str(job.params.get("motion", DEFAULT_MOTION))
    if job.kind != JobKind.ANIMATE:
        return "—"
    if get_model(job.model).provider == "local":
        return motion_name(job.language, motion)
    return MOTION_PROMPTS.get(motion, MOTION_PROMPTS[DEFAULT_MOTION])


def ask_clip(job: Job) -> tuple[str, Keyboard]:
    """For a clip without a caption: extend it or add music?"""
    lang = job.language
    return text(lang, "ask_clip"), [
        [
            (text(lang, "btn_extend"), button(job.id, "k", "extend")),
            (text(lang, "btn_music"), button(job.id, "k", "music")),
        ],
        [(text(lang, "btn_cancel"), button(job.id, "x"))],
    ]


def ask_motion(job: Job) -> tuple[str, Keyboard]:
    """For a photo without a caption: motion presets as buttons."""
    lang = job.language
    names = [(motion_name(lang, m), button(job.id, "m", m)) for m in MOTION_PRESETS]
    rows = [names[i : i + 2] for i in range(0, len(names), 2)]
    rows.append([(text(lang, "btn_cancel"), button(job.id, "x"))])
    return text(lang, "ask_motion"), rows


def submitted(job: Job) -> tuple[str, Keyboard]:
    """The status message as first shown."""
    model = get_model(job.model)
    body = text(
        job.language, "submitted", model=html.escape(model.title), typical=model.typical_text()
    )
    return body, cancel_keyboard(job)


def cancel_keyboard(job: Job) -> Keyboard:
    """A Cancel button for a job that is waiting or running."""
    return [[(text(job.language, "btn_cancel"), button(job.id, "x"))]]


def status(job: Job, now: float) -> str:
    """The progress line of a running job; changes as the job moves."""
    lang = job.language
    model = html.escape(get_model(job.model).title)
    started = job.submitted_at or job.updated_at
    spent = now - started
    took = elapsed(spent)
    if job.state in (JobState.QUEUED, JobState.SUBMITTING):
        line = text(lang, "status_queued", elapsed=took)
    elif job.state == JobState.DOWNLOADING:
        line = text(lang, "status_downloading", elapsed=took)
    elif job.state == JobState.DELIVERING:
        line = text(lang, "status_delivering", elapsed=took)
    elif job.queue_position is None and (job.provider_status or "").startswith("queued:"):
        # Accepted but not started (the studio renders one job at a time): not "Rendering".
        line = text(lang, "status_waiting_turn", elapsed=took)
    elif job.queue_position is not None:
        line = text(lang, "status_queue_position", position=job.queue_position + 1, elapsed=took)
    elif job.progress is not None:
        line = text(
            lang, "status_running_pct", model=model, percent=int(job.progress * 100), elapsed=took
        )
    else:
        line = text(lang, "status_running", model=model, elapsed=took)
    head = submitted(job)[0]
    if spent >= 300:
        line += "\n" + text(lang, "status_very_slow")
    elif spent >= 120:
        line += "\n" + text(lang, "status_slow")
    return f"{head}\n\n{line}"


def caption(job: Job, note: str | None = None) -> str:
    """The delivered video's caption, within Telegram's 1024 characters."""
    model = get_model(job.model)
    lang = job.language
    prompt = job.prompt or default_prompt(job)
    tail = f"\n\n{note}" if note else ""
    length = text(lang, "caption_length", duration=job.duration) if job.duration else ""
    fixed = text(
        lang, "caption", what=what(job), model=html.escape(model.title), length=length, prompt=""
    )
    room = CAPTION_LIMIT - len(fixed) - len(tail) - 20
    body = text(
        lang,
        "caption",
        what=what(job),
        model=html.escape(model.title),
        length=length,
        prompt=user_text(prompt, max(20, min(room, 300))),
    )
    return clip(body + tail, CAPTION_LIMIT)


def failure(job: Job, reason_key: str, **params: object) -> tuple[str, Keyboard]:
    """The message after a job ends without a video, with a Try again button."""
    lang = job.language
    if job.state == JobState.TIMED_OUT:
        body = text(
            lang,
            "timed_out",
            elapsed=elapsed((job.finished_at or 0) - (job.submitted_at or job.created_at)),
        )
    elif job.state == JobState.STALLED:
        body = text(lang, "stalled")
    elif job.state == JobState.UNKNOWN:
        body = text(lang, "unknown")
    elif job.state == JobState.CANCELED:
        body = text(lang, "canceled")
    else:
        body = text(lang, "failed", reason=text(lang, reason_key, **params))
    keyboard: Keyboard = []
    if (job.input_path or job.kind == JobKind.TEXT) and job.state != JobState.CANCELED:
        keyboard = [[(text(lang, "btn_try_again"), button(job.id, "again"))]]
    return body, keyboard


def stopped(job: Job) -> str:
    """The status message's last words when a job did not finish."""
    lang = job.language
    return text(lang, "status_stopped", reason=job.state.value.replace("_", " "))


def resend(job: Job) -> Keyboard:
    """The one button under an upload Telegram never confirmed."""
    return [[(text(job.language, "btn_resend"), button(job.id, "send", prefix="r"))]]


def after_delivery(job: Job) -> Keyboard:
    """Buttons under a delivered video: do it again, or get the file without recompression."""
    lang = job.language
    return [
        [
            (text(lang, "btn_again"), button(job.id, "again")),
            (text(lang, "btn_extend"), button(job.id, "ext")),
        ],
        [
            (text(lang, "btn_music"), button(job.id, "mus")),
            (text(lang, "btn_as_file"), button(job.id, "file", prefix="r")),
        ],
    ]


def job_line(job: Job, now: float) -> str:
    """One line of /status: what, with which model, where it is."""
    lang = job.language
    model = html.escape(get_model(job.model).title)
    started = job.submitted_at or job.updated_at
    if job.state == JobState.DRAFT:
        where = text(lang, "state_draft")
    elif job.progress is not None and job.state == JobState.RUNNING:
        where = f"{int(job.progress * 100)}%"
    elif job.queue_position is not None and job.state == JobState.RUNNING:
        where = text(lang, "state_queue", position=job.queue_position + 1)
    else:
        where = text(lang, f"state_{job.state.value}")
    return f"#{job.id} {what(job)} · {model} · {where} · {elapsed(now - started)}"


def reset_time(lang: str, resets_at: float, now: float, zone: ZoneInfo) -> dict[str, object]:
    """When the allowance resets, as clock time and as "in 5 h 12 min"."""
    left = max(0, int(resets_at - now))
    return {
        "reset_clock": f"{datetime.fromtimestamp(resets_at, zone):%H:%M}",
        "zone": str(zone),
        "reset_in": text(lang, "hours_minutes", hours=left // 3600, minutes=left % 3600 // 60),
    }
