"""Photos, image files, text and everything else a user can send."""

from __future__ import annotations

from telegram import Update

from handlers.context import StudioContext
from services.inbound import InboundImage


async def photo(update: Update, context: StudioContext) -> None:
    """A photo: animate it (the caption is the prompt)."""
    message = update.effective_message
    assert message is not None and message.photo
    largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
    image = InboundImage(
        file_id=largest.file_id,
        file_unique_id=largest.file_unique_id,
        size=largest.file_size,
        width=largest.width,
        height=largest.height,
        mime_type="image/jpeg",
    )
    await context.services.studio.receive_photo(
        context.user(update), message.message_id, image, message.caption
    )


async def image_document(update: Update, context: StudioContext) -> None:
    """An image sent as a file: same as a photo, without Telegram's recompression."""
    message = update.effective_message
    assert message is not None and message.document
    doc = message.document
    image = InboundImage(
        file_id=doc.file_id,
        file_unique_id=doc.file_unique_id,
        size=doc.file_size,
        width=None,
        height=None,
        mime_type=(doc.mime_type or "").lower(),
    )
    await context.services.studio.receive_photo(
        context.user(update), message.message_id, image, message.caption
    )


async def text(update: Update, context: StudioContext) -> None:
    """Plain text: a prompt for a photo waiting for one, else a short hint."""
    message = update.effective_message
    assert message is not None and message.text is not None
    user = context.user(update)
    reply_to = message.reply_to_message.message_id if message.reply_to_message else None
    if not await context.services.studio.describe(user, message.text, reply_to):
        await context.services.studio.say(user, "text_hint")


async def other(update: Update, context: StudioContext) -> None:
    """Stickers, locations, contacts, non-image files: a one-line hint."""
    await context.services.studio.say(context.user(update), "other_hint")


async def unknown_command(update: Update, context: StudioContext) -> None:
    """A command the bot does not have: point to /help."""
    await context.services.studio.say(context.user(update), "unknown_command")
