"""The global error handler: log with the traceback, tell the user without one."""

from __future__ import annotations

import contextlib
import logging

from telegram import Update

from handlers.context import StudioContext, chat_user

log = logging.getLogger(__name__)


async def on_error(update: object, context: StudioContext) -> None:
    """Log the failure and, where there is a user, say something went wrong."""
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
