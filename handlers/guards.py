"""Cross-cutting work before and after the handlers: duplicates, users, access."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.ext import ApplicationHandlerStop

from handlers.context import StudioContext, chat_user
from services import log_context

log = logging.getLogger(__name__)


async def before(update: Update, context: StudioContext) -> None:
    """Group -1: drop repeated updates and updates from users who may not use the bot."""
    log_context.update_id.set(update.update_id)  # every line logged for this update names it
    services = context.services
    if await services.updates.seen(update.update_id):
        log.info("update %s seen before; ignored", update.update_id)
        raise ApplicationHandlerStop
    user = chat_user(update)
    if user is None:
        await services.updates.mark(update.update_id)
        raise ApplicationHandlerStop
    # Stars already taken are credited whoever sent them and however fast they write.
    payment = _is_payment(update)
    allowed = services.settings.allowed_user_ids
    admins = services.settings.admin_user_ids
    if allowed and not payment and user.id not in allowed and user.id not in admins:
        await services.updates.mark(update.update_id)
        if update.callback_query:
            await update.callback_query.answer()
        if update.effective_chat and update.effective_chat.type == "private":
            await services.studio.say(user, "not_allowed")
        raise ApplicationHandlerStop
    message = update.message
    if message is not None and not payment and services.flood.too_many(user.id, _sent_at(message)):
        # Told once per burst; the rest of the burst is dropped without an answer.
        if services.flood.first_refusal(user.id):
            await services.studio.say(user, "slow_down")
        await services.updates.mark(update.update_id)
        raise ApplicationHandlerStop
    prefs = await services.studio.seen(user)
    if context.user_data is not None:
        # Read from the database on every update, so it is never stale after a restart.
        context.user_data["language"] = prefs.language


async def after(update: Update, context: StudioContext) -> None:
    """Last group: the update is handled; a redelivery of it will be ignored."""
    await context.services.updates.mark(update.update_id)


def _is_payment(update: Update) -> bool:
    message = update.message
    return message is not None and (
        message.successful_payment is not None or message.refunded_payment is not None
    )


def _sent_at(message: Message) -> float | None:
    """When Telegram received the message (seconds), if it says."""
    return message.date.timestamp() if message.date is not None else None
