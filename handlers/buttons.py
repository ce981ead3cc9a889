"""Inline button presses, routed by the prefix of their callback data."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, Update
from telegram.error import BadRequest

from handlers.context import StudioContext
from services.telegram.messenger import stale_answer
from services.texts import text

log = logging.getLogger(__name__)


def _query(update: Update) -> tuple[CallbackQuery, str | None, int]:
    query = update.callback_query
    assert query is not None
    return query, query.data, query.message.message_id if query.message else 0


async def answer_press(query: CallbackQuery, answer: str | None) -> None:
    """Answer the press, quietly if Telegram takes no answer any more (a late or repeated one)."""
    try:
        await query.answer(answer)
    except BadRequest as exc:
        if not stale_answer(exc):
            raise
        log.info("button press %s not answered: %s", query.id, exc.message)


async def job(update: Update, context: StudioContext) -> None:
    """``j:`` — a job's card or status buttons."""
    query, data, message_id = _query(update)
    answer = await context.services.studio.press(context.user(update), message_id, data)
    await answer_press(query, answer)


async def result(update: Update, context: StudioContext) -> None:
    """``r:`` — a delivered result: send again, send as file."""
    query, data, _ = _query(update)
    await answer_press(
        query, await context.services.account.result_button(context.user(update), data)
    )


async def setting(update: Update, context: StudioContext) -> None:
    """``s:`` — a /settings button."""
    query, data, message_id = _query(update)
    name = (data or "").removeprefix("s:")
    user = context.user(update)
    await answer_press(query, await context.services.account.change_setting(user, message_id, name))


async def unknown(update: Update, context: StudioContext) -> None:
    """Anything else (forged or from an old version): say it has expired."""
    query, _, _ = _query(update)
    await answer_press(query, text(context.user(update).language, "button_expired"))
