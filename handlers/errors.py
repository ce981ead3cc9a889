"""The global error handler: log with the traceback, tell the user without one."""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.error import BadRequest

from handlers.context import StudioContext, chat_user
from services.telegram.messenger import stale_answer

log = logging.getLogger(__name__)


async def on_error(update: object, context: StudioContext) -> None:
    """Log the failure and, where there is a user, say something went wrong."""
    error = context.error
    stale = next((e for e in (error, getattr(error, "__cause__", None)) if stale_answer(e)), None)
    if isinstance(stale, BadRequest):
        # A late or repeated press, an edit of a message that is gone or unchanged: the user
        # already has what they asked for, so there is nothing to log loudly or to apologise for.
        log.info("stale Telegram answer ignored: %s", stale.message)
        return
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    user = chat_user(update)
    if user is None:
        return
    with contextlib.suppress(Exception):
        if update.callback_query:
            await update.callback_query.answer()
        await context.services.studio.say(user, "error_generic")
