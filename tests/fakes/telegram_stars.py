"""Telegram Stars in the fake Bot API: invoices, the pre-checkout question, payments and
refunds, with Telegram's rules for them (core.telegram.org/bots/api#payments and
core.telegram.org/bots/payments-stars):

- ``sendInvoice``: title 1–32 characters, description 1–255, payload 1–128 bytes; in Stars
  (``XTR``) the provider token is empty and ``prices`` holds exactly one positive amount.
- ``answerPreCheckoutQuery`` within 10 seconds of the query, once; ``ok=false`` needs an
  ``error_message``. Telegram takes the Stars only after ``ok=true``.
- ``refundStarPayment(user_id, telegram_payment_charge_id)``: a charge is refunded once;
  again → ``CHARGE_ALREADY_REFUNDED``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.fakes.telegram_store import QUERY_TOO_OLD, FileInfo, JsonDict, SentMessage, bad_request

if TYPE_CHECKING:
    from tests.fakes.telegram import FakeTelegram

CHECKOUT_TIMEOUT = 10.0
Handler = Callable[[JsonDict, dict[str, FileInfo]], Awaitable[Any]]


@dataclass
class Checkout:
    """A pre-checkout query and how the bot answered it."""

    query_id: str
    user_id: int
    invoice: SentMessage
    asked_at: float
    answered: bool = False
    ok: bool | None = None
    error: str | None = None
    late: bool = False


@dataclass
class Charge:
    """Stars Telegram took from a user."""

    charge_id: str
    user_id: int
    stars: int
    payload: str
    refunded: bool = False


class FakeStars:
    """The Stars side of one fake Bot API server."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.checkouts: dict[str, Checkout] = {}
        self.charges: dict[str, Charge] = {}
        self._ids = itertools.count(1)

    def handlers(self) -> dict[str, Handler]:
        return {
            "sendInvoice": self._send_invoice,
            "answerPreCheckoutQuery": self._answer_pre_checkout_query,
            "refundStarPayment": self._refund_star_payment,
        }

    # ------------------------------------------------------------------ what the user does

    def invoices(self, chat_id: int) -> list[SentMessage]:
        """The invoices the bot sent to a chat, oldest first."""
        return [m for m in self.fake.messages(chat_id) if m.kind == "invoice"]

    def check_out(self, user_id: int, invoice: SentMessage) -> str:
        """The user presses Pay on an invoice: Telegram asks the bot first. Returns the id."""
        query_id = f"{next(self._ids) + 7_000_000_000_000_000}"
        self.checkouts[query_id] = Checkout(query_id, user_id, invoice, time.monotonic())
        data = invoice.media
        self.fake.push_update(
            {
                "pre_checkout_query": {
                    "id": query_id,
                    "from": self._user(user_id),
                    "currency": data["currency"],
                    "total_amount": data["total_amount"],
                    "invoice_payload": invoice.params["payload"],
                }
            }
        )
        return query_id

    def pay(self, query_id: str) -> str:
        """Telegram takes the Stars after an ``ok`` answer and tells the bot; returns the
        charge id."""
        checkout = self.checkouts[query_id]
        if not (checkout.answered and checkout.ok and not checkout.late):
            raise ValueError(f"pre-checkout {query_id} was not approved: {checkout}")
        charge_id = f"stxTestCharge{next(self._ids):06d}"
        invoice = checkout.invoice.media
        charge = Charge(
            charge_id, checkout.user_id, invoice["total_amount"], checkout.invoice.params["payload"]
        )
        self.charges[charge_id] = charge
        self.deliver_payment(charge)
        return charge_id

    def deliver_payment(self, charge: Charge) -> int:
        """(Again) the ``successful_payment`` message of a charge; returns the update id."""
        return self._service_message(
            charge.user_id,
            "successful_payment",
            {
                "currency": "XTR",
                "total_amount": charge.stars,
                "invoice_payload": charge.payload,
                "telegram_payment_charge_id": charge.charge_id,
                "provider_payment_charge_id": "",
            },
        )

    def refund_from_telegram(self, charge_id: str) -> int:
        """Telegram refunds a charge on its own (a dispute): the bot hears of it."""
        charge = self.charges[charge_id]
        charge.refunded = True
        return self._service_message(
            charge.user_id,
            "refunded_payment",
            {
                "currency": "XTR",
                "total_amount": charge.stars,
                "invoice_payload": charge.payload,
                "telegram_payment_charge_id": charge.charge_id,
            },
        )

    def _service_message(self, user_id: int, field: str, content: JsonDict) -> int:
        chat = self.fake.state.chats.get(user_id) or self.fake.add_chat(user_id)
        message = {
            "message_id": self.fake.state.next_message_id(user_id),
            "from": self._user(user_id),
            "chat": chat,
            "date": int(time.time()),
            field: content,
        }
        return self.fake.push_update({"message": message})

    def _user(self, user_id: int) -> JsonDict:
        return self.fake.state.users.get(user_id) or {
            "id": user_id,
            "is_bot": False,
            "first_name": "Ann",
            "language_code": "en",
        }

    # ------------------------------------------------------------------ the Bot API

    async def _send_invoice(self, params: JsonDict, files: dict[str, FileInfo]) -> JsonDict:
        title = str(params.get("title") or "")
        description = str(params.get("description") or "")
        payload = str(params.get("payload") or "")
        currency = str(params.get("currency") or "")
        prices = params.get("prices")
        if isinstance(prices, str):
            prices = json.loads(prices)
        if not 1 <= len(title) <= 32:
            raise bad_request("INVOICE_TITLE_INVALID")
        if not 1 <= len(description) <= 255:
            raise bad_request("INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(payload.encode()) <= 128:
            raise bad_request("INVOICE_PAYLOAD_INVALID")
        if currency != "XTR":
            raise bad_request("CURRENCY_INVALID")  # this bot sells digital goods: Stars only
        if params.get("provider_token"):
            raise bad_request("PAYMENT_PROVIDER_INVALID")
        if not isinstance(prices, list) or len(prices) != 1:
            raise bad_request("STARS_INVOICE_INVALID")
        amount = prices[0].get("amount") if isinstance(prices[0], dict) else None
        if not isinstance(amount, int) or amount < 1:
            raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
        chat = self.fake._chat(params)
        invoice = {
            "title": title,
            "description": description,
            "start_parameter": str(params.get("start_parameter") or ""),
            "currency": currency,
            "total_amount": amount,
        }
        msg = self.fake._new_message(chat, "invoice", params, media=invoice)
        return msg.to_api()

    async def _answer_pre_checkout_query(
        self, params: JsonDict, files: dict[str, FileInfo]
    ) -> bool:
        checkout = self.checkouts.get(str(params.get("pre_checkout_query_id") or ""))
        if checkout is None or checkout.answered:
            raise bad_request(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        ok = params.get("ok")
        ok = ok if isinstance(ok, bool) else str(ok).lower() == "true"
        if not ok and not params.get("error_message"):
            raise bad_request("ERROR_MESSAGE_EMPTY")
        checkout.answered = True
        checkout.ok = ok
        checkout.error = None if ok else str(params["error_message"])
        checkout.late = time.monotonic() - checkout.asked_at > CHECKOUT_TIMEOUT
        if checkout.late:
            raise bad_request(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        return True

    async def _refund_star_payment(self, params: JsonDict, files: dict[str, FileInfo]) -> bool:
        charge = self.charges.get(str(params.get("telegram_payment_charge_id") or ""))
        if charge is None:
            raise bad_request("CHARGE_NOT_FOUND")
        if int(params.get("user_id") or 0) != charge.user_id:
            raise bad_request("USER_ID_INVALID")
        if charge.refunded:
            raise bad_request("CHARGE_ALREADY_REFUNDED")
        charge.refunded = True
        return True
