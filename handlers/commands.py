"""Commands: /start, /help, /cancel, /status, /history, /credits, /models, /settings, /stats."""

from __future__ import annotations

import html

from telegram import Update

from handlers.context import StudioContext


async def start(update: Update, context: StudioContext) -> None:
    """Welcome with examples."""
    user = context.user(update)
    await context.services.studio.say(
        user, "start", params={"name": html.escape(user.first_name or "there")}
    )


async def help_command(update: Update, context: StudioContext) -> None:
    """How the bot works."""
    await context.services.studio.say(context.user(update), "help")


async def cancel(update: Update, context: StudioContext) -> None:
    """Stop the newest draft or running job, with a refund."""
    await context.services.studio.cancel_latest(context.user(update))


async def status(update: Update, context: StudioContext) -> None:
    """Drafts and running jobs with their progress."""
    await context.services.account.status(context.user(update))


async def history(update: Update, context: StudioContext) -> None:
    """Recent results, each re-sendable."""
    await context.services.account.history(context.user(update))


async def credits(update: Update, context: StudioContext) -> None:
    """Allowance left and reset time."""
    await context.services.account.credits_left(context.user(update))


async def models(update: Update, context: StudioContext) -> None:
    """The model catalogue with costs."""
    await context.services.account.models(context.user(update))


async def settings(update: Update, context: StudioContext) -> None:
    """The user's settings as buttons."""
    await context.services.account.settings(context.user(update))


async def stats(update: Update, context: StudioContext) -> None:
    """Admins only; anyone else hears that there is no such command."""
    user = context.user(update)
    if not await context.services.account.stats(user):
        await context.services.studio.say(user, "unknown_command")
