"""/start, /help, /cancel."""

from __future__ import annotations

import html

from telegram import Update

from handlers.context import StudioContext, require_user


async def start(update: Update, context: StudioContext) -> None:
    """Welcome with examples."""
    user = require_user(update)
    await context.services.studio.say(
        user, "start", params={"name": html.escape(user.first_name or "there")}
    )


async def help_command(update: Update, context: StudioContext) -> None:
    """How the bot works."""
    await context.services.studio.say(require_user(update), "help")


async def cancel(update: Update, context: StudioContext) -> None:
    """Stop the newest draft or running job, with a refund."""
    await context.services.studio.cancel_latest(require_user(update))
