"""Inline button presses, routed by the prefix of their callback data."""

from __future__ import annotations

from telegram import CallbackQuery, Update

from handlers.context import StudioContext
from services.texts import text


def _query(update: Update) -> tuple[CallbackQuery, str | None, int]:
    query = update.callback_query
    assert query is not None
    return query, query.data, query.message.message_id if query.message else 0


async def job(update: Update, context: StudioContext) -> None:
    """``j:`` — a job's card or status buttons."""
    query, data, message_id = _query(update)
    await query.answer(await context.services.studio.press(context.user(update), message_id, data))


async def result(update: Update, context: StudioContext) -> None:
    """``r:`` — a delivered result: send again, send as file."""
    query, data, _ = _query(update)
    await query.answer(await context.services.account.result_button(context.user(update), data))


async def setting(update: Update, context: StudioContext) -> None:
    """``s:`` — a /settings button."""
    query, data, message_id = _query(update)
    name = (data or "").removeprefix("s:")
    user = context.user(update)
    await query.answer(await context.services.account.change_setting(user, message_id, name))


async def unknown(update: Update, context: StudioContext) -> None:
    """Anything else (forged or from an old version): say it has expired."""
    query, _, _ = _query(update)
    await query.answer(text(context.user(update).language, "button_expired"))
