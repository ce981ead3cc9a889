"""Telegram handlers: parse the update, call one service, render the answer."""

from __future__ import annotations

from typing import Any

from telegram import BotCommand, Message, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    PreCheckoutQueryHandler,
    TypeHandler,
    filters,
)

from handlers import buttons, commands, errors, guards, messages, payments
from services.telegram.inbound import worth_decoding

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "Welcome and examples"),
    ("help", "How it works"),
    ("status", "What is running"),
    ("history", "Your recent videos"),
    ("credits", "Credits left today"),
    ("models", "Models and prices"),
    ("settings", "Defaults and language"),
    ("cancel", "Stop what is waiting or running"),
)
# In the menu only while buying is on (STARS_PACKS).
BUYING_COMMANDS: tuple[tuple[str, str], ...] = (
    ("buy", "Buy credit packs with Stars"),
    ("paysupport", "Help with a payment"),
    ("terms", "Terms of purchase"),
)
# Not in the menu: only admins have them.
ADMIN_COMMANDS = ("stats", "refund")

# Only private chats and messages that are new (edits are not requests to do something again).
PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


class _MediaDocument(filters.MessageFilter):
    """A document that may hold a photo, clip or sound: a media MIME type, or one we can't trust
    (octet-stream, none at all). PDFs, archives and the like get the one-line hint instead."""

    def filter(self, message: Message) -> bool:
        return message.document is not None and worth_decoding(message.document.mime_type)


MEDIA_DOCUMENT = _MediaDocument(name="MediaDocument")


def register(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Attach every handler to the application."""
    application.add_handler(TypeHandler(Update, guards.before), group=-1)
    for name, callback in (
        ("start", commands.start),
        ("help", commands.help_command),
        ("cancel", commands.cancel),
        ("status", commands.status),
        ("history", commands.history),
        ("credits", commands.credits),
        ("models", commands.models),
        ("settings", commands.settings),
        ("stats", commands.stats),
        ("buy", payments.buy),
        ("paysupport", payments.paysupport),
        ("terms", payments.terms),
        ("refund", payments.refund),
    ):
        application.add_handler(CommandHandler(name, callback, filters=PRIVATE))
    # Payments come as service messages: before anything that answers messages.
    application.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT, payments.paid))
    application.add_handler(
        MessageHandler(filters.StatusUpdate.REFUNDED_PAYMENT, payments.refunded)
    )
    application.add_handler(PreCheckoutQueryHandler(payments.pre_checkout))
    application.add_handler(MessageHandler(PRIVATE & filters.PHOTO, messages.photo))
    application.add_handler(
        MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, messages.text)
    )
    # Telegram has already told these apart (a GIF's animation also carries a document).
    clips = filters.VIDEO | filters.ANIMATION | filters.VIDEO_NOTE
    application.add_handler(MessageHandler(PRIVATE & clips, messages.clip))
    application.add_handler(
        MessageHandler(PRIVATE & (filters.VOICE | filters.AUDIO), messages.sound)
    )
    # Files: any that may be media is fetched and decoded; the MIME type only orders the tries.
    application.add_handler(MessageHandler(PRIVATE & MEDIA_DOCUMENT, messages.document))
    application.add_handler(MessageHandler(PRIVATE & filters.COMMAND, messages.unknown_command))
    application.add_handler(MessageHandler(PRIVATE, messages.other))
    # In groups the bot speaks only when spoken to: a command or a mention gets one polite line.
    addressed = filters.COMMAND | filters.Entity("mention") | filters.REPLY
    application.add_handler(
        MessageHandler(
            filters.ChatType.GROUPS & filters.UpdateType.MESSAGE & addressed, messages.group
        )
    )
    application.add_handler(CallbackQueryHandler(buttons.job, pattern=r"^j:"))
    application.add_handler(CallbackQueryHandler(buttons.result, pattern=r"^r:"))
    application.add_handler(CallbackQueryHandler(buttons.setting, pattern=r"^s:"))
    application.add_handler(CallbackQueryHandler(payments.pack, pattern=r"^b:"))
    application.add_handler(CallbackQueryHandler(buttons.unknown))
    application.add_handler(TypeHandler(Update, guards.after), group=1)
    application.add_error_handler(errors.on_error)


def bot_commands(buying: bool = False) -> list[BotCommand]:
    """The command menu set with setMyCommands."""
    listed = COMMANDS + (BUYING_COMMANDS if buying else ())
    return [BotCommand(name, description) for name, description in listed]
