"""The messages a job sends as it runs: its status line, result caption, failure and buttons.

Buttons carry compact callback data, ``j:<job id>:<action>[:<arg>]``; everything else is read
from the database when the button is pressed, so buttons survive restarts.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from services.model.jobs import Job, JobKind, JobState
from services.model.specs import KINDS, story_of
from services.providers.catalogue import DEFAULT_MOTION, MOTION_PROMPTS, get_model
from services.telegram.messenger import Keyboard
from services.texts import text

CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096


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


def what(job: Job) -> str:
    """``Animate photo`` etc."""
    return text(job.language, f"what_{job.kind.value}")


def motion_name(lang: str, motion: str) -> str:
    """A motion's display name."""
    return text(lang, f"motion_{motion}")


def default_prompt(job: Job) -> str:
    """What to show when the user gave no words: for a model, the prompt it will be sent."""
    motion = str(job.params.get("motion", DEFAULT_MOTION))
    if job.kind != JobKind.ANIMATE:
        return "—"
    if get_model(job.model).provider == "local":
        return motion_name(job.language, motion)
    return MOTION_PROMPTS.get(motion, MOTION_PROMPTS[DEFAULT_MOTION])


def submitted(job: Job) -> tuple[str, Keyboard]:
    """The status message as first shown."""
    if job.kind == JobKind.STORY:
        shots = len(story_of(job).kept)
        model = get_model(str(job.params.get("shot_model") or job.model))
        body = text(job.language, "submitted_story", count=shots, model=html.escape(model.title))
        return body, cancel_keyboard(job)
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
    if job.kind == JobKind.STORY and job.state in (JobState.RUNNING, JobState.DOWNLOADING):
        line = story_status(job, took)
    elif job.state in (JobState.QUEUED, JobState.SUBMITTING):
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


# A story's status shows each shot: made, being made, waiting, failed (Stories' marks).
SHOT_MARKS = {"d": "✅", "r": "🎬", "q": "⏳", "f": "⚠️", "b": "⏸"}


def story_status(job: Job, took: str) -> str:
    """A story's progress, shot by shot: ``✅ ✅ 🎬 ⏳`` and how many are made."""
    lang = job.language
    if job.state == JobState.DOWNLOADING:
        return text(lang, "status_stitching", elapsed=took)
    marks = job.provider_status or ""
    if not marks:
        return text(lang, "status_queued", elapsed=took)
    shots = " ".join(SHOT_MARKS.get(mark, "·") for mark in marks)
    return text(
        lang, "status_story", shots=shots, done=marks.count("d"), total=len(marks), elapsed=took
    )


def shot_failed(story: Job, failed: list[int], total: int, offer: str) -> tuple[str, Keyboard]:
    """A story's shot could not be made: refunded; go on without it, or try it again. The
    buttons name the ``offer``, so a later offer's buttons are not pressed by an older one."""
    lang = story.language
    numbers = ", ".join(str(i + 1) for i in failed)
    body = text(lang, "shot_failed", numbers=numbers, count=len(failed))
    rows: Keyboard = [[(text(lang, "btn_shot_retry"), button(story.id, "retry", offer))]]
    if total > len(failed):
        rows.append([(text(lang, "btn_shot_skip"), button(story.id, "skip", offer))])
    rows.append([(text(lang, "btn_cancel"), button(story.id, "x"))])
    return body, rows


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
    kind = KINDS[job.kind]
    if kind.again and (job.input_path or not kind.inputs) and job.state != JobState.CANCELED:
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
    first = [(text(lang, "btn_extend"), button(job.id, "ext"))]
    if KINDS[job.kind].again:
        first.insert(0, (text(lang, "btn_again"), button(job.id, "again")))
    return [
        first,
        [
            (text(lang, "btn_music"), button(job.id, "mus")),
            (text(lang, "btn_as_file"), button(job.id, "file", prefix="r")),
        ],
    ]
