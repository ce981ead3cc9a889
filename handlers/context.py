"""The typed context every handler gets, and turning an update into domain primitives."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot

from services.conversation.desk import ChatUser
from services.texts import language_for

if TYPE_CHECKING:
    from bot.container import Services


class StudioContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """``context.services`` instead of string keys in ``bot_data``."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)

    @property
    def services(self) -> Services:
        """The wired services of this process."""
        services: Services = self.application.bot_data["services"]
        return services

    def user(self, update: Update) -> ChatUser:
        """The sender, in the language of their /settings if they chose one."""
        user = require_user(update)
        chosen = self.user_data.get("language") if self.user_data is not None else None
        return replace(user, language=chosen) if chosen else user


def chat_user(update: Update) -> ChatUser | None:
    """Who sent this update, or None for updates without a user (channel posts)."""
    tg_user = update.effective_user
    chat = update.effective_chat
    if tg_user is None:
        return None
    if chat is None and update.pre_checkout_query is None:
        return None
    return ChatUser(
        id=tg_user.id,
        # A pre-checkout query has no chat; its invoice was sent in the private chat.
        chat_id=chat.id if chat is not None else tg_user.id,
        first_name=tg_user.first_name or "",
        username=tg_user.username,
        language=language_for(tg_user.language_code),
    )


def require_user(update: Update) -> ChatUser:
    """Like ``chat_user`` for handlers whose filters guarantee a user."""
    user = chat_user(update)
    if user is None:
        raise ValueError("update without a user")
    return user
