"""Buying credit packs with Telegram Stars on the fake Bot API: the invoice, the pre-checkout
answer, the payment credited once whatever redelivers it, refunds that reconcile, and the
one offer a day on running out. With no packs configured, no trace of buying."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.conversation.desk import ChatUser
from services.model.jobs import JobState as S
from services.storage.db import Database
from services.storage.payments import PaymentRepository
from services.storage.repositories import JobRepository, LedgerRepository, Reservation
from tests.conftest import (
    OTHER_USER,
    USER,
    buttons_of,
    data_for,
    db_rows,
    make_settings,
    reply_to,
    running_bot,
    services_of,
)
from tests.fakes.telegram import FakeTelegram
from tests.test_jobs import draft

ADMIN = 4242
PACKS = "100:50,500:200"


def buying(tg: FakeTelegram, tmp_path: Path, **extra: Any) -> Any:
    values: dict[str, Any] = {"stars_packs": PACKS, "admin_user_ids": [ADMIN], "daily_credits": 10}
    return make_settings(tg, tmp_path, **{**values, **extra})


def texts(tg: FakeTelegram, chat: int = USER) -> list[str]:
    return [m.text_plain or "" for m in tg.messages(chat)]


def last(tg: FakeTelegram, chat: int = USER) -> str:
    said = texts(tg, chat)
    return said[-1] if said else ""


async def buy(tg: FakeTelegram, label: str = "500 credits — 200 ⭐", user: int = USER) -> Any:
    """/buy, a pack's button, and the invoice it brings."""
    before = len(tg.stars.invoices(user))
    command = tg.user_message(user, text="/buy")
    offer = await reply_to_command(tg, user, command)
    tg.press_button(user, offer, buttons_of(tg, user, offer)[label])
    await tg.wait_for(lambda: len(tg.stars.invoices(user)) > before)
    return tg.stars.invoices(user)[-1]


async def reply_to_command(tg: FakeTelegram, user: int, command: dict[str, Any]) -> int:
    """The bot's next message after a command (commands are answered without a reply)."""
    after = command["message_id"]

    def found() -> int | None:
        for m in tg.messages(user):
            if m.message_id > after and m.buttons:
                return m.message_id
        return None

    result: int = await tg.wait_for(found)
    return result


async def approved(tg: FakeTelegram, query_id: str) -> bool:
    checkout = await tg.wait_for(lambda: tg.stars.checkouts[query_id].answered and [1])
    assert checkout
    return bool(tg.stars.checkouts[query_id].ok)


async def test_a_pack_is_bought_and_its_credits_added_once(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with running_bot(buying(tg, tmp_path)) as app:
        assert {"buy", "paysupport", "terms"} <= {c["command"] for c in tg.commands}
        invoice = await buy(tg)
        # An invoice in Stars for the pack: XTR, no provider, one price, the pack's amount.
        assert invoice.media["currency"] == "XTR" and invoice.media["total_amount"] == 200
        assert invoice.media["title"] == "500 credits"
        assert not invoice.params.get("provider_token")

        query = tg.stars.check_out(USER, invoice)
        assert await approved(tg, query)
        charge = tg.stars.pay(query)
        await tg.wait_for(lambda: any("Thank you" in t for t in texts(tg)))
        assert "500 credits" in last(tg) and "500 bought credits" in last(tg)

        # Telegram delivers the payment again: the same update, and as a new update.
        again = tg.stars.deliver_payment(tg.stars.charges[charge])
        tg.redeliver(again)
        await tg.wait_for(lambda: tg.pending_updates == 0)
        tg.user_message(USER, text="/credits")
        await tg.wait_for(lambda: "Bought credits" in last(tg))
        assert "Bought credits: 500." in last(tg)
        assert sum("Thank you" in t for t in texts(tg)) == 1
        allowance = await services_of(app).studio.credits.allowance(USER)
        assert (allowance.today, allowance.bought) == (10, 500)
    grants = db_rows(tmp_path, "SELECT amount, reason FROM ledger WHERE entry = 'grant'")
    assert grants == [(500, f"stars:{charge}")]
    assert db_rows(tmp_path, "SELECT state FROM orders") == [("paid",)]
    assert db_rows(tmp_path, "SELECT charge_id, stars, credits FROM payments") == [
        (charge, 200, 500)
    ]


async def test_pre_checkout_refuses_a_paid_a_foreign_and_an_unknown_order(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with running_bot(buying(tg, tmp_path)):
        invoice = await buy(tg, "100 credits — 50 ⭐")
        # Someone else pays with this person's invoice (a forwarded invoice).
        foreign = tg.stars.check_out(OTHER_USER, invoice)
        assert not await approved(tg, foreign)
        assert "someone else" in (tg.stars.checkouts[foreign].error or "")
        paid = tg.stars.check_out(USER, invoice)
        assert await approved(tg, paid)
        tg.stars.pay(paid)
        await tg.wait_for(lambda: any("Thank you" in t for t in texts(tg)))
        # The same invoice once more: already paid.
        twice = tg.stars.check_out(USER, invoice)
        assert not await approved(tg, twice)
        assert "already been paid" in (tg.stars.checkouts[twice].error or "")
        # An invoice whose payload names no order of ours.
        invoice.params["payload"] = "order:999999"
        unknown = tg.stars.check_out(USER, invoice)
        assert not await approved(tg, unknown)
        assert "no longer valid" in (tg.stars.checkouts[unknown].error or "")
    # All answered well inside Telegram's 10 seconds.
    assert not any(c.late for c in tg.stars.checkouts.values())


async def test_an_admin_refund_takes_back_what_is_unspent_and_a_second_is_reconciled(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(buying(tg, tmp_path, daily_credits=0)):
        invoice = await buy(tg, "100 credits — 50 ⭐")
        query = tg.stars.check_out(USER, invoice)
        assert await approved(tg, query)
        charge = tg.stars.pay(query)
        await tg.wait_for(lambda: any("Thank you" in t for t in texts(tg)))
        # 10 of the pack's 100 credits are spent on a video (no free credits today).
        card_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: tg.videos(USER), timeout=60)

        tg.user_message(ADMIN, text=f"/refund {charge}")
        await tg.wait_for(lambda: any("Refunded" in t for t in texts(tg, ADMIN)))
        assert "Took back 90 credits; 10 of the pack's 100 had been spent" in last(tg, ADMIN)
        assert tg.stars.charges[charge].refunded
        # Asked again: Telegram answers CHARGE_ALREADY_REFUNDED, and that is done, not failed.
        tg.user_message(ADMIN, text=f"/refund {charge}")
        await tg.wait_for(lambda: "refunded already" in last(tg, ADMIN))
        # Not for anyone else.
        tg.user_message(USER, text=f"/refund {charge}")
        await tg.wait_for(lambda: "don't know that command" in last(tg))
    assert db_rows(tmp_path, "SELECT amount FROM ledger WHERE entry = 'grant' ORDER BY id") == [
        (100,),
        (-90,),
    ]
    assert len(tg.calls_to("refundStarPayment")) == 2


async def test_a_refund_from_telegrams_side_is_reconciled_the_same_way(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    async with running_bot(buying(tg, tmp_path)) as app:
        invoice = await buy(tg)
        query = tg.stars.check_out(USER, invoice)
        assert await approved(tg, query)
        charge = tg.stars.pay(query)
        await tg.wait_for(lambda: any("Thank you" in t for t in texts(tg)))
        update = tg.stars.refund_from_telegram(charge)
        await tg.wait_for(lambda: "was refunded" in last(tg))
        tg.redeliver(update)
        await tg.wait_for(lambda: tg.pending_updates == 0)
        assert (await services_of(app).studio.credits.allowance(USER)).bought == 0
        tg.user_message(ADMIN, text="/stats")
        await tg.wait_for(lambda: "Stars:" in last(tg, ADMIN))
        assert "Stars: 0 today, 0 in all (200 refunded)" in last(tg, ADMIN)
    assert sum("was refunded" in t for t in texts(tg)) == 1


async def test_running_out_leads_with_the_reset_and_offers_packs_once_a_day(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(buying(tg, tmp_path, daily_credits=0)):
        for attempt in (1, 2):
            card_id = await reply_to(
                tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in")
            )
            tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
            await tg.wait_for(
                lambda n=attempt: sum(t.startswith("Your credits reset") for t in texts(tg)) == n
            )
            await tg.wait_for(lambda: tg.pending_updates == 0)
        tg.user_message(ADMIN, text="/stats")
        await tg.wait_for(lambda: "Packs sold" in last(tg, ADMIN))
    said = texts(tg)
    reset = [i for i, t in enumerate(said) if t.startswith("Your credits reset")]
    offers = [i for i, t in enumerate(said) if "credit pack is an option" in t]
    # The reset time first, then the packs as an option: once, not on every refusal.
    assert len(reset) == 2 and len(offers) == 1 and reset[0] < offers[0] < reset[1]
    assert tg.messages(USER)[offers[0]].buttons


async def test_admins_are_never_offered_packs(tg: FakeTelegram, tmp_path: Path) -> None:
    async with running_bot(buying(tg, tmp_path, daily_credits=0)) as app:
        admin = ChatUser(id=ADMIN, chat_id=ADMIN, first_name="A", username=None, language="en")
        await services_of(app).shop.offer_once_a_day(admin)
        tg.user_message(ADMIN, text="/credits")
        await tg.wait_for(lambda: "unlimited" in last(tg, ADMIN))
    assert not any("credit pack" in t for t in texts(tg, ADMIN))


async def test_with_buying_off_there_is_no_trace_of_it(
    tg: FakeTelegram, tmp_path: Path, photo_bytes: bytes
) -> None:
    async with running_bot(make_settings(tg, tmp_path, daily_credits=0)):
        assert not {"buy", "paysupport", "terms"} & {c["command"] for c in tg.commands}
        for command in ("/buy", "/paysupport", "/terms"):
            tg.user_message(USER, text=command)
            await tg.wait_for(lambda: "don't know that command" in last(tg))
        card_id = await reply_to(tg, tg.user_message(USER, photo=photo_bytes, caption="zoom in"))
        tg.press_button(USER, card_id, data_for(tg, USER, card_id, "go"))
        await tg.wait_for(lambda: last(tg).startswith("Your credits reset"))
        await tg.wait_for(lambda: tg.pending_updates == 0)
    assert not any("⭐" in t or "pack" in t for t in texts(tg))
    assert tg.stars.invoices(USER) == []


async def test_paysupport_and_terms_answer_and_support_reaches_the_admins(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    tg.add_chat(ADMIN)  # the operator has talked to the bot: it may write to them
    async with running_bot(buying(tg, tmp_path)):
        tg.user_message(USER, text="/terms")
        await tg.wait_for(lambda: "Terms of purchase" in last(tg))
        tg.user_message(USER, text="/paysupport")
        await tg.wait_for(lambda: "Help with a payment" in last(tg))
        tg.user_message(USER, text="/paysupport I paid twice <b>yesterday</b>")
        await tg.wait_for(lambda: any("Payment help" in t for t in texts(tg, ADMIN)))
        assert "I paid twice <b>yesterday</b>" in last(tg, ADMIN)  # shown, not markup
        tg.user_message(OTHER_USER, text="/terms", language_code="ru")
        await tg.wait_for(lambda: "Условия покупки" in last(tg, OTHER_USER))


async def test_bought_credits_are_spent_after_the_days_and_refunds_go_back_where_they_came(
    database: Database,
) -> None:
    now = [1_000_000.0]
    ledger, jobs = (
        LedgerRepository(database, lambda: now[0]),
        JobRepository(database, lambda: now[0]),
    )
    payments = PaymentRepository(database, lambda: now[0])
    assert await payments.record("charge-1", None, 1, 50, 100)
    assert not await payments.record("charge-1", None, 1, 50, 100)  # once per charge
    day = Reservation(1, 30, since=0.0, limit=20, resets_at=2e6)
    first, _ = await jobs.create(draft(1))
    assert await jobs.transition(first.id, S.DRAFT, S.QUEUED, reserve=day)
    # 20 from today's allowance, 10 from the pack.
    assert (await ledger.spent_since(1, 0.0), await ledger.bought(1)) == (20, 90)
    assert await jobs.transition(first.id, S.QUEUED, S.CANCELED, settle="refund")
    assert (await ledger.spent_since(1, 0.0), await ledger.bought(1)) == (0, 100)
    # A refund takes back only what is unspent, once.
    second, _ = await jobs.create(draft(2))
    assert await jobs.transition(second.id, S.DRAFT, S.QUEUED, reserve=day)
    assert await jobs.transition(second.id, S.QUEUED, S.CANCELED, settle="keep")
    done = await payments.refund("charge-1")
    assert done is not None and (done.taken_back, done.spent, done.already) == (90, 10, False)
    again = await payments.refund("charge-1")
    assert again is not None and again.already and await ledger.bought(1) == 0


async def test_a_pack_is_bought_behind_the_webhook_too(tg: FakeTelegram, tmp_path: Path) -> None:
    from tests.test_webhook import webhook_bot, webhook_settings

    settings = webhook_settings(tg, tmp_path, stars_packs=PACKS, daily_credits=10)
    async with webhook_bot(settings) as app:
        invoice = await buy(tg, "100 credits — 50 ⭐")
        query = tg.stars.check_out(USER, invoice)
        assert await approved(tg, query)  # the webhook asked Telegram for pre-checkout queries
        tg.stars.pay(query)
        await tg.wait_for(lambda: any("Thank you" in t for t in texts(tg)))
        assert (await services_of(app).studio.credits.allowance(USER)).bought == 100
    assert "pre_checkout_query" in (tg.allowed_updates or [])


async def test_two_processes_seeing_one_payment_credit_it_once(pg_url: str) -> None:
    import asyncio

    from services.storage.postgres import PostgresDatabase

    processes = [PostgresDatabase(pg_url) for _ in range(2)]
    for db in processes:
        await db.open()
    try:
        now = lambda: 1000.0  # noqa: E731
        first, second = (PaymentRepository(db, now) for db in processes)
        order = await first.open_order(USER, USER, 100, 50)
        results = await asyncio.gather(
            *(repo.record("charge-x", order, USER, 50, 100) for repo in (first, second, first))
        )
        assert sorted(results) == [False, False, True]
        assert await LedgerRepository(processes[1], now).bought(USER) == 100
        assert (await second.order(order.id)).state == "paid"  # type: ignore[union-attr]
    finally:
        for db in processes:
            await db.close()


async def test_a_payment_credited_just_before_a_stop_is_thanked_once_when_it_comes_again(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    from tests.fakes.telegram_stars import Charge

    async with running_bot(buying(tg, tmp_path)) as app:
        invoice = await buy(tg)
        assert await approved(tg, tg.stars.check_out(USER, invoice))
        # The last run wrote the payment and its credits, then stopped before the thank-you
        # and before the update was marked done: Telegram delivers the payment again.
        payments = services_of(app).shop.payments
        order = await payments.order(int(invoice.params["payload"].split(":")[1]))
        charge = Charge("stxCreditedBeforeTheStop", USER, 200, invoice.params["payload"])
        assert await payments.record(charge.charge_id, order, USER, 200, 500)
        tg.stars.charges[charge.charge_id] = charge
        update = tg.stars.deliver_payment(charge)
        await tg.wait_for(lambda: any("Thank you" in t for t in texts(tg)))
        tg.redeliver(update)
        tg.stars.deliver_payment(charge)
        await tg.wait_for(lambda: tg.pending_updates == 0)
        tg.user_message(USER, text="/credits")
        await tg.wait_for(lambda: "Bought credits" in last(tg))
    assert sum("Thank you" in t for t in texts(tg)) == 1
    assert "Bought credits: 500." in last(tg)


async def test_a_payment_that_matches_no_order_is_kept_and_the_admins_can_refund_it(
    tg: FakeTelegram, tmp_path: Path
) -> None:
    from tests.fakes.telegram_stars import Charge

    tg.add_chat(ADMIN)
    async with running_bot(buying(tg, tmp_path)) as app:
        # Paid for an order this bot never made (its database was replaced, say).
        charge = Charge("stxForNoOrder", USER, 50, "order:424242")
        tg.stars.charges[charge.charge_id] = charge
        tg.stars.deliver_payment(charge)
        await tg.wait_for(lambda: "could not match it" in last(tg))
        await tg.wait_for(lambda: "matches no order" in last(tg, ADMIN))
        assert "/refund stxForNoOrder" in last(tg, ADMIN)
        assert (await services_of(app).studio.credits.allowance(USER)).bought == 0
        tg.user_message(ADMIN, text="/refund stxForNoOrder")
        await tg.wait_for(lambda: "Refunded 50 ⭐" in last(tg, ADMIN))
    assert tg.stars.charges["stxForNoOrder"].refunded
