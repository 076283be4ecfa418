"""One serialisation style for every event (issue 20): the month-end sweep writes its
decisions, commands and state changes in SQL (adapters/sweep_sql.py, event_text.py); their
bytes are exactly msgspec's encoding of the contract they decode to — the same compact text,
field order and `Z`/offset datetimes as every event made in Python — also for a customer
whose names need escaping."""

from dataclasses import replace
from datetime import date
from typing import Any
from uuid import RFC_4122, UUID

import msgspec
import orjson
import pytest
from sqlalchemy import text

from common.contracts.credit_control import CreditDecisionMade, CreditStateChanged
from common.contracts.gateway import ProvisioningCommand
from common.contracts.snapshots import Person, ProductFamily, Tier
from common.envelope import EventDecoder, to_bytes

from .helpers import CreditApi, Ledger, at, ledger, new_uid

pytestmark = [pytest.mark.integration]

DECODERS = {
    "credit.decisions.v1": EventDecoder(CreditDecisionMade, CreditStateChanged),
    "provisioning.commands.v1": EventDecoder(ProvisioningCommand),
}


def awkward(lg: Ledger) -> Ledger:
    """Names PostgreSQL and msgspec must escape alike: quotes, a backslash, a tab, CJK."""
    customer = msgspec.structs.replace(
        lg.customer, name='集团 "引号" \\ 反斜杠\t制表', star_level=None,
        contacts=(Person(name="联系人'一'", phone="13800138001"),
                  Person(name="联系人/二", phone="13800138002")))
    return replace(lg, customer=customer)


async def _outbox(api: CreditApi, keys: list[str]) -> list[tuple[str, str, str]]:
    async with api.db.connect() as conn:
        rows = await conn.execute(text(
            "SELECT topic, event_type, payload FROM credit.outbox_messages WHERE key = ANY(:k) "
            "ORDER BY id, position"), {"k": keys})
        return [(r[0], r[1], r[2]) for r in rows]


async def test_sweep_made_events_are_msgspecs_bytes(api: CreditApi, test_year: int) -> None:
    y, uid = test_year + 15, new_uid()
    books = [awkward(ledger(uid, f"ev{f.value}", f, Tier.LOW))
             for f in (ProductFamily.MAS, ProductFamily.ADC, ProductFamily.WORK_ORDER)]
    await api.deliver(*((lg, lg.bill_run(f"{y}-03", 12_345, at(date(y, 4, 2), 9)))
                        for lg in books))
    await api.sweep(date(y, 4, 25), f"ev-{uid}-sw")
    await api.sweep(date(y, 4, 30), f"ev-{uid}")
    keys = [lg.account_id for lg in books] + [lg.product_id for lg in books]
    found = await _outbox(api, keys)
    kinds: dict[str, int] = {}
    for topic, event_type, payload in found:
        raw = payload.encode()
        envelope: Any = DECODERS[topic].decode(raw)
        assert to_bytes(envelope) == raw, (event_type, payload)
        if getattr(envelope.payload, "rule_id", "").startswith("bill") is False:
            kinds[event_type] = kinds.get(event_type, 0) + 1
    # The sweep's own: warnings and suspensions, the MAS product's command, the ADC's change.
    sweep_made = [p for _, t, p in found if '"decision":"suspend"' in p
                  or t in ("provisioning.command", "credit.state_changed")]
    assert {t for _, t, p in found if p in sweep_made} >= {
        "credit.decision_made", "provisioning.command"}, kinds
    assert all('"occurred_at":"' in p and '+00:00"' not in p for _, _, p in found)
    assert any('\\"引号\\" \\\\ 反斜杠\\t制表' in p for p in sweep_made)
    # Every event id is time-ordered (common.ids: the sweep's SQL and Python's `wrap` alike),
    # so the outbox's unique index and the consumers' inboxes grow at their right edge.
    for _, _, payload in found:
        event_id = UUID(orjson.loads(payload)["event_id"])
        assert (event_id.version, event_id.variant) == (7, RFC_4122), payload


async def test_the_sweeps_events_go_into_the_outbox_sixteen_to_a_row_of_mixed_keys(
    api: CreditApi, test_year: int
) -> None:
    """The sweep writes a topic's events in groups of consecutive ones (sweep_sql.OUTBOX_GROUP;
    common.outbox): fewer rows than events, a row's key empty when its events' keys differ,
    each event keyed as before (its account, a command its product) and each key's events in
    the order they were decided."""
    y, uid = test_year + 16, new_uid()
    books = [ledger(uid, f"grp{i:02d}", ProductFamily.MAS, Tier.LOW) for i in range(20)]
    await api.deliver(*((lg, lg.bill_run(f"{y}-03", 10_000 + i, at(date(y, 4, 2), 9)))
                        for i, lg in enumerate(books)))
    await api.sweep(date(y, 4, 25), f"grp-{uid}-sw")
    await api.sweep(date(y, 4, 30), f"grp-{uid}")
    accounts = [lg.account_id for lg in books]
    async with api.db.connect() as conn:
        mine = (await conn.execute(text(
            "SELECT m.id, m.key, m.topic, m.payload, (SELECT count(*) FROM "
            "credit.outbox_messages a WHERE a.id = m.id) AS in_row, o.key AS row_key "
            "FROM credit.outbox_messages m JOIN credit.outbox o USING (id) "
            "WHERE m.key = ANY(:k) ORDER BY m.id, m.position"),
            {"k": accounts + [lg.product_id for lg in books]})).all()
    decided = [r for r in mine if r.topic == "credit.decisions.v1"
               and orjson.loads(r.payload)["payload"]["decision"] in (
                   "suspension_warning", "suspend")]  # the sweeps' (a bill notice is not)
    assert len(decided) == 40  # a suspension warning, then a suspension, for each
    assert len({r.id for r in decided}) < len(decided) / 4  # together, not a row each
    assert max(r.in_row for r in mine) <= 16
    assert any(r.row_key == "" for r in mine)  # one row, several accounts
    for r in mine:
        payload = orjson.loads(r.payload)
        assert r.key == payload["key"] == (payload["payload"]["account_id"]
                                           if r.topic == "credit.decisions.v1"
                                           else payload["payload"]["product_id"])
    for account in accounts:  # warned on the 25th, suspended on the 30th, in that order
        assert [orjson.loads(r.payload)["payload"]["decision"] for r in decided
                if r.key == account] == ["suspension_warning", "suspend"], account
