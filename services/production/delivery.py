"""Getting a finished video into the chat, within Telegram's size rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from services.errors import MediaError, MessengerError
from services.media import ffmpeg as media
from services.model.jobs import Job
from services.production.messages import caption
from services.telegram.messenger import (
    FIRST_ACTION_PATIENCE,
    SLOW_STEP,
    Keyboard,
    Messenger,
    SentMedia,
)
from services.texts import human_size, text

log = logging.getLogger(__name__)

STREAMABLE_LIMIT = 20_000_000  # above this, clients download before playing: say so
FIT_TARGET = 48_000_000  # re-encode goal for the 50 MB upload cap, with margin
SEND_RETRIES = 2
MAX_RETRY_WAIT = 60.0
QUICK_UPLOAD_BYTES = 5_000_000  # below this an upload takes about a second or less


@dataclass(frozen=True)
class Outcome:
    """How a delivery ended: a video/document in the chat, or a link, or nothing."""

    sent: SentMedia | None
    info: media.MediaInfo | None
    link_sent: bool = False
    path: Path | None = None  # the file that was sent
    unconfirmed: bool = False  # Telegram got the whole upload but never answered


class Delivery:
    """Routes a result by size and sends it, with retries and fallbacks."""

    def __init__(
        self,
        messenger: Messenger,
        *,
        upload_limit: int,
        local_mode: bool,
        retry_wait_cap: float = MAX_RETRY_WAIT,
    ) -> None:
        self.messenger = messenger
        self.upload_limit = upload_limit
        self.local_mode = local_mode
        self.retry_wait_cap = retry_wait_cap

    async def deliver(
        self,
        job: Job,
        path: Path,
        keyboard: Keyboard | None,
        *,
        as_document: bool = False,
        on_sent_whole: Callable[[], Awaitable[None]] | None = None,
    ) -> Outcome:
        """Send ``path`` to the job's chat; shrink it first if it is over the upload limit.
        ``on_sent_whole`` runs when an upload has gone out whole (see Messenger.send_video)."""
        info = await media.probe(path)
        # The poller fails (and refunds) a job whose result is no video a person could watch.
        if not info.has_video or not info.duration:
            raise MediaError("the result has no video stream")
        if await media.looks_blank(path, info.duration):
            raise MediaError("the result is one flat colour")
        if info.size > self.upload_limit:
            fitted = path.with_name("fitted.mp4")
            fits = False
            if not self.local_mode:
                try:
                    fits = await media.reencode_to_fit(
                        path, fitted, max_bytes=FIT_TARGET, info=info
                    )
                except MediaError as exc:
                    log.warning("job %s: re-encode failed: %s", job.id, exc)
            if not fits:
                reason = text(job.language, "reason_too_big", size=human_size(info.size))
                return await self.send_link_or_apology(job, reason, info)
            path, info = fitted, await media.probe(fitted)
        note = (
            text(job.language, "large_note", size=human_size(info.size))
            if info.size > STREAMABLE_LIMIT
            else None
        )
        try:
            sent = await self._send_with_retries(
                job, path, info, caption(job, note), keyboard, as_document, on_sent_whole
            )
            if sent is None and not as_document:
                # Some videos are refused as videos but accepted as plain files.
                sent = await self._send_with_retries(
                    job, path, info, caption(job, note), keyboard, True, on_sent_whole
                )
        except MessengerError as exc:
            if exc.kind == "unclear":
                # Resending could post it twice; the user gets a "Send again" button instead.
                return Outcome(sent=None, info=info, path=path, unconfirmed=True)
            sent = None  # too large: a document of the same size would fail the same way
        if sent is None:
            return await self.send_link_or_apology(
                job, text(job.language, "reason_send_failed"), info
            )
        return Outcome(sent=sent, info=info, path=path)

    async def _send_with_retries(
        self,
        job: Job,
        path: Path,
        info: media.MediaInfo,
        text_caption: str,
        keyboard: Keyboard | None,
        as_document: bool,
        on_sent_whole: Callable[[], Awaitable[None]] | None = None,
    ) -> SentMedia | None:
        for attempt in range(SEND_RETRIES + 1):
            try:
                # A small file is usually up before "uploading video…" could be read: it shows
                # only if the upload lasts, and never takes the slot the video and "Done" need.
                quick = info.size < QUICK_UPLOAD_BYTES
                action = self.messenger.chat_action(
                    job.chat_id, patience=FIRST_ACTION_PATIENCE, after=SLOW_STEP if quick else 0.0
                )
                async with action:
                    return await self.messenger.send_video(
                        job.chat_id,
                        path,
                        caption=text_caption,
                        width=info.width,
                        height=info.height,
                        duration=info.duration,
                        keyboard=keyboard,
                        as_document=as_document,
                        on_sent_whole=on_sent_whole,
                    )
            except MessengerError as exc:
                log.warning(
                    "job %s: send attempt %d failed: %s (%s)", job.id, attempt + 1, exc.kind, exc
                )
                if exc.kind == "retry_after" and (exc.retry_after or 0) <= self.retry_wait_cap:
                    await asyncio.sleep(exc.retry_after or 1)
                elif exc.kind in ("timeout", "network"):
                    await asyncio.sleep(min(2.0 * (attempt + 1), self.retry_wait_cap))
                elif exc.kind in ("too_large", "unclear"):
                    raise
                else:
                    return None
        return None

    async def send_link_or_apology(
        self, job: Job, reason: str, info: media.MediaInfo | None = None
    ) -> Outcome:
        """When the video cannot be put in the chat: the provider's link if there is one."""
        url = job.output_url if (job.output_url or "").startswith("https://") else None
        if url:
            body = text(job.language, "link_fallback", reason=reason, url=url)
        else:
            body = text(job.language, "no_link_fallback", reason=reason)
        await self.messenger.send_text(job.chat_id, body)
        return Outcome(sent=None, info=info, link_sent=url is not None)
