"""Inline button presses, routed by the prefix of their callback data."""

from __future__ import annotations

from telegram import Update

from handlers.context import StudioContext
from services.texts import text


def _query(update: Update) -> tuple[str | None, int]:
    query = update.callback_query
    assert query is not None
    return query.data, query.message.message_id if query.message else 0


async def job(update: Update, context: StudioContext) -> None:
    """``j:`` — a job's card or status buttons."""
    data, message_id = _query(update)
    answer = await context.services.studio.press(context.user(update), message_id, data)
    await update.callback_query.answer(answer)  # type: ignore[union-attr]


async def result(update: Update, context: StudioContext) -> None:
    """``r:`` — a delivered result: send again, send as file."""
    data, _ = _query(update)
    answer = await context.services.account.result_button(context.user(update), data)
    await update.callback_query.answer(answer)  # type: ignore[union-attr]


async def setting(update: Update, context: StudioContext) -> None:
    """``s:`` — a /settings button."""
    data, message_id = _query(update)
    name = (data or "").removeprefix("s:")
    answer = await context.services.account.change_setting(context.user(update), message_id, name)
    await update.callback_query.answer(answer)  # type: ignore[union-attr]


async def unknown(update: Update, context: StudioContext) -> None:
    """Anything else (forged or from an old version): say it has expired."""
    user = context.user(update)
    await update.callback_query.answer(text(user.language, "button_expired"))  # type: ignore[union-attr]
