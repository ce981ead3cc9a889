"""Inline button presses."""

from __future__ import annotations

from telegram import Update

from handlers.context import StudioContext, require_user


async def press(update: Update, context: StudioContext) -> None:
    """Resolve the button from the database, act, and always answer the query."""
    query = update.callback_query
    assert query is not None
    message_id = query.message.message_id if query.message else 0
    answer = await context.services.studio.press(require_user(update), message_id, query.data)
    await query.answer(answer)
