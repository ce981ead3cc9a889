"""Buying credit packs with Telegram Stars: /buy, the invoice, the pre-checkout answer, the
payment, refunds, and the one offer a day when someone runs out.

Telegram confirms a payment with a ``successful_payment`` message that may come more than
once; the credits are added once per charge id (PaymentRepository.record). With no packs
configured, buying is off and none of this shows.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass

from services.conversation.desk import ChatUser
from services.errors import MessengerError
from services.model.packs import Pack
from services.production import messages
from services.production.credits import Credits
from services.storage.payments import Order, PaymentRepository
from services.telegram.messenger import Keyboard, Messenger
from services.texts import text

log = logging.getLogger(__name__)

# An invoice's payload names its order; nothing else is in it (Telegram shows it to no one,
# but it comes back in the pre-checkout query and the payment).
_PAYLOAD = re.compile(r"^order:(\d{1,12})$")
_BUTTON = re.compile(r"^b:(\d{1,9}):(\d{1,6})$")


def payload_of(order: Order) -> str:
    return f"order:{order.id}"


def order_id_of(payload: str) -> int | None:
    match = _PAYLOAD.match(payload or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Checkout:
    """A pre-checkout query, as Telegram asks it."""

    query_id: str
    user_id: int
    currency: str
    total: int
    payload: str


@dataclass(frozen=True)
class PaidStars:
    """A ``successful_payment``, or a ``refunded_payment``, as Telegram reports it."""

    charge_id: str
    currency: str
    total: int
    payload: str


class Shop:
    """Credit packs for Stars."""

    def __init__(
        self,
        *,
        packs: tuple[Pack, ...],
        payments: PaymentRepository,
        credits: Credits,
        messenger: Messenger,
        admins: frozenset[int],
    ) -> None:
        self.packs = packs
        self.payments = payments
        self.credits = credits
        self.messenger = messenger
        self.admins = admins

    @property
    def open(self) -> bool:
        """Whether buying is on (packs are configured)."""
        return bool(self.packs)

    def _keyboard(self, lang: str) -> Keyboard:
        return [
            [(text(lang, "btn_pack", credits=p.credits, stars=p.stars), f"b:{p.credits}:{p.stars}")]
            for p in self.packs
        ]

    async def show(self, user: ChatUser) -> bool:
        """/buy: the packs as buttons; False (nothing sent) when buying is off."""
        if not self.open:
            return False
        await self.messenger.send_text(
            user.chat_id,
            text(user.language, "buy_head", daily=self.credits.daily),
            self._keyboard(user.language),
        )
        return True

    async def offer_once_a_day(self, user: ChatUser) -> None:
        """After "no credits" (which leads with when they come back): the packs, as an option,
        at most once a day, and never to admins."""
        if not self.open or user.id in self.admins:
            return
        if not await self.payments.claim_offer(user.id, self.credits.day_bounds()[0]):
            return
        await self.messenger.send_text(
            user.chat_id, text(user.language, "buy_offer"), self._keyboard(user.language)
        )

    async def choose(self, user: ChatUser, data: str | None) -> str | None:
        """A pack's button: an order and its invoice. Returns the button's answer, if any."""
        match = _BUTTON.match(data or "")
        pack = Pack(int(match.group(1)), int(match.group(2))) if match else None
        if pack is None or pack not in self.packs:
            return text(user.language, "pack_gone")
        order = await self.payments.open_order(user.id, user.chat_id, pack.credits, pack.stars)
        try:
            await self.messenger.send_invoice(
                user.chat_id,
                title=text(user.language, "invoice_title", credits=pack.credits),
                description=text(user.language, "invoice_description", credits=pack.credits),
                payload=payload_of(order),
                stars=pack.stars,
            )
        except MessengerError as exc:
            log.warning("order %s: invoice not sent: %s", order.id, exc.kind)
            return text(user.language, "buy_failed")
        return None

    async def pre_checkout(self, user: ChatUser, query: Checkout) -> None:
        """Answer Telegram's last question before the payment (it allows 10 seconds): yes
        when the order exists, is unpaid, is this person's and its price is unchanged."""
        reason = await self._refusal(user, query)
        if reason is not None:
            log.info("pre-checkout %s refused: %s", query.query_id, reason)
        await self.messenger.answer_pre_checkout(
            query.query_id, None if reason is None else text(user.language, reason)
        )

    async def _refusal(self, user: ChatUser, query: Checkout) -> str | None:
        order_id = order_id_of(query.payload)
        order = await self.payments.order(order_id) if order_id is not None else None
        if order is None:
            return "checkout_unknown"
        if order.user_id != query.user_id:
            return "checkout_foreign"
        if order.state != "open":
            return "checkout_paid"
        if query.currency != "XTR" or query.total != order.stars:
            return "checkout_changed"
        return None

    async def paid(self, user: ChatUser, payment: PaidStars) -> None:
        """``successful_payment``: the pack's credits, once per charge id, and a thank-you."""
        order_id = order_id_of(payment.payload)
        order = await self.payments.order(order_id) if order_id is not None else None
        credits = order.credits if order is not None and order.user_id == user.id else 0
        if credits == 0:
            # Telegram took the Stars for something we cannot match: recorded (so an admin
            # can refund it) and the admins are told; the person is never left unanswered.
            log.error("payment %s matches no order of user %s", payment.charge_id, user.id)
        added = await self.payments.record(
            payment.charge_id, order, user.id, payment.total, credits
        )
        if not added:
            log.info("payment %s seen before; nothing added", payment.charge_id)
        if not await self.payments.to_thank(payment.charge_id):
            return
        if credits == 0:
            await self._tell_admins(
                "payment_unmatched_admin",
                stars=payment.total,
                user=html.escape(user.first_name or str(user.id)),
                user_id=user.id,
                charge=html.escape(payment.charge_id),
            )
            await self.messenger.send_text(
                user.chat_id, text(user.language, "payment_unmatched", stars=payment.total)
            )
            return
        allowance = await self.credits.allowance(user.id)
        await self.messenger.send_text(
            user.chat_id,
            text(
                user.language,
                "paid_thanks",
                credits=credits,
                bought=allowance.bought,
                today=allowance.today,
                daily=allowance.daily,
            ),
        )

    async def refund(self, admin: ChatUser, argument: str) -> bool:
        """Admin /refund <charge id>: give the Stars back through Telegram and take back the
        pack's unspent credits. False (nothing sent) for anyone but an admin."""
        if admin.id not in self.admins:
            return False
        charge_id = argument.strip()
        lang = admin.language
        if not charge_id:
            await self.messenger.send_text(admin.chat_id, text(lang, "refund_usage"))
            return True
        payment = await self.payments.payment(charge_id)
        if payment is None:
            await self.messenger.send_text(admin.chat_id, text(lang, "refund_unknown"))
            return True
        try:
            # False: refunded before (CHARGE_ALREADY_REFUNDED); reconciled all the same.
            await self.messenger.refund_stars(payment.user_id, charge_id)
        except MessengerError as exc:
            reason = html.escape(str(exc))
            await self.messenger.send_text(
                admin.chat_id, text(lang, "refund_failed", reason=reason)
            )
            return True
        done = await self.payments.refund(charge_id)
        assert done is not None
        if done.already:
            body = text(lang, "refund_already", taken=done.taken_back)
        else:
            body = text(
                lang,
                "refund_done",
                stars=payment.stars,
                user_id=payment.user_id,
                taken=done.taken_back,
                spent=done.spent,
                credits=payment.credits,
            )
        await self.messenger.send_text(admin.chat_id, body)
        return True

    async def refunded(self, user: ChatUser, payment: PaidStars) -> None:
        """``refunded_payment``: Telegram gave the Stars back; take back what is unspent."""
        done = await self.payments.refund(payment.charge_id)
        if done is None or done.already:
            return
        await self.messenger.send_text(
            user.chat_id,
            text(user.language, "refunded_user", stars=done.payment.stars, taken=done.taken_back),
        )

    async def support(self, user: ChatUser, message: str) -> None:
        """/paysupport: how to get help; with words after it, they go to the admins."""
        words = message.strip()
        if not words:
            await self.messenger.send_text(user.chat_id, text(user.language, "paysupport"))
            return
        await self._tell_admins(
            "paysupport_admin",
            user=html.escape(user.first_name or str(user.id)),
            user_id=user.id,
            message=html.escape(messages.clip(words, 3000)),
        )
        await self.messenger.send_text(user.chat_id, text(user.language, "paysupport_sent"))

    async def terms(self, user: ChatUser) -> None:
        await self.messenger.send_text(user.chat_id, text(user.language, "terms"))

    async def sales_line(self, lang: str) -> str:
        """The Stars part of /stats ("" when buying was never on)."""
        sales = await self.payments.sales(self.credits.day_bounds()[0])
        if not self.open and not sales.packs_total and not sales.refunded_total:
            return ""
        return text(
            lang,
            "stats_sales",
            stars_today=sales.stars_today,
            stars_total=sales.stars_total,
            refunded=sales.refunded_total,
            packs_today=sales.packs_today,
            packs_total=sales.packs_total,
        )

    async def _tell_admins(self, key: str, **params: object) -> None:
        for admin in sorted(self.admins):
            try:
                await self.messenger.send_text(admin, text("en", key, **params))
            except MessengerError as exc:
                log.warning("admin %s not told: %s", admin, exc.kind)
