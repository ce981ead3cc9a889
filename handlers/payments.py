"""Buying credit packs with Telegram Stars: /buy, /paysupport, /terms, admin /refund, the
pack buttons, the pre-checkout query and the payment messages."""

from __future__ import annotations

from telegram import RefundedPayment, SuccessfulPayment, Update

from handlers.buttons import answer_press
from handlers.context import StudioContext
from services.conversation.shop import Checkout, PaidStars


async def buy(update: Update, context: StudioContext) -> None:
    """The packs as buttons; with buying off, the command does not exist."""
    user = context.user(update)
    if not await context.services.shop.show(user):
        await context.services.studio.say(user, "unknown_command")


async def paysupport(update: Update, context: StudioContext) -> None:
    """How to get help with a payment; words after the command go to the operators."""
    user = context.user(update)
    if not context.services.shop.open:
        await context.services.studio.say(user, "unknown_command")
        return
    await context.services.shop.support(user, " ".join(context.args or []))


async def terms(update: Update, context: StudioContext) -> None:
    """The terms of purchase."""
    user = context.user(update)
    if not context.services.shop.open:
        await context.services.studio.say(user, "unknown_command")
        return
    await context.services.shop.terms(user)


async def refund(update: Update, context: StudioContext) -> None:
    """Admins: /refund <charge id>; anyone else hears that there is no such command."""
    user = context.user(update)
    if not await context.services.shop.refund(user, " ".join(context.args or [])):
        await context.services.studio.say(user, "unknown_command")


async def pack(update: Update, context: StudioContext) -> None:
    """``b:`` — a pack's button: its invoice."""
    query = update.callback_query
    assert query is not None
    answer = await context.services.shop.choose(context.user(update), query.data)
    await answer_press(query, answer)


async def pre_checkout(update: Update, context: StudioContext) -> None:
    """Telegram's question before taking the Stars (answered within its 10 seconds)."""
    query = update.pre_checkout_query
    assert query is not None
    checkout = Checkout(
        query_id=query.id,
        user_id=query.from_user.id,
        currency=query.currency,
        total=query.total_amount,
        payload=query.invoice_payload,
    )
    await context.services.shop.pre_checkout(context.user(update), checkout)


def _reported(payment: SuccessfulPayment | RefundedPayment) -> PaidStars:
    return PaidStars(
        charge_id=payment.telegram_payment_charge_id,
        currency=payment.currency,
        total=payment.total_amount,
        payload=payment.invoice_payload,
    )


async def paid(update: Update, context: StudioContext) -> None:
    """``successful_payment``: the pack's credits, once per charge."""
    message = update.effective_message
    assert message is not None and message.successful_payment is not None
    await context.services.shop.paid(context.user(update), _reported(message.successful_payment))


async def refunded(update: Update, context: StudioContext) -> None:
    """``refunded_payment``: Telegram gave the Stars back; the unspent credits go too."""
    message = update.effective_message
    assert message is not None and message.refunded_payment is not None
    await context.services.shop.refunded(context.user(update), _reported(message.refunded_payment))
