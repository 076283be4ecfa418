"""notifier's HTTP API on real PostgreSQL (the router in an ASGI app, no Kafka): templates
refused with a clear body and nothing written, versions, preview, the log, the SMSC knobs."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import FixedClock
from common.contracts.credit_control import DecisionType
from common.http import create_app
from common.settings import DEV_TOKEN
from notifier.config import Settings
from notifier.domain.templates import SPECS, TemplateName
from notifier.entrypoints.http import router

from .notifier_fixtures import (
    collected,
    context_for,
    decision,
    drain,
    local,
    make_ctx,
    receive,
    suspended,
)

pytestmark = [pytest.mark.integration]


async def _ready() -> dict[str, Any]:
    return {}


@pytest.fixture
async def api(db: AsyncEngine, test_year: int) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    ctx = make_ctx(db, FixedClock(local(test_year, "11-25T10:00")))
    app: FastAPI = create_app(title="notifier", lifespan=_no_lifespan, readiness=_ready)
    app.include_router(router(ctx, Settings()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers={"Authorization": f"Bearer {DEV_TOKEN}"}) as client:
        yield client, ctx


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


async def _versions(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM notifier.templates")) or 0)


async def test_templates_list_every_template_with_its_version(
    api: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = api
    got = (await client.get("/v1/templates")).json()
    assert [t["name"] for t in got] == [n.value for n in TemplateName]
    assert all(t["version"] >= 1 for t in got)
    placeholders = (await client.get("/v1/templates/placeholders")).json()
    assert list(placeholders) == ["CPNAME", "CPNO", "XX", "ACCOUNTXX", "YYYY年MM月DD日",
                                  "MM月DD日", "KHJLNAME", "JTNAME"]


@pytest.mark.parametrize(("body", "problem"), [
    ({"templates": [{"name": "warning_2", "text": "您好CUSTNAME,请缴费XX元"}]},
     "unknown placeholders: CUSTNAME"),
    ({"templates": [{"name": "warning_2", "text": "尊敬的{name}"}]},
     "unknown placeholders: {name}"),
    ({"templates": [{"name": "warning_9", "text": "您好"}]}, "no such template"),
    ({"templates": [{"name": "warning_2", "text": " "}]}, "the text is empty"),
    ({"templates": [{"name": "warning_2", "text": "信" * 400}]}, "at most 300"),
])
async def test_bad_templates_are_refused_and_nothing_changes(
    api: tuple[httpx.AsyncClient, Any], db: AsyncEngine, body: dict[str, Any], problem: str,
) -> None:
    client, _ = api
    before = (await _versions(db), (await client.get("/v1/templates")).json())
    # A good template in the same request is refused with it: all or nothing.
    body["templates"].append({"name": "warning_3", "text": "CPNAME欠费XX元"})
    r = await client.put("/v1/templates", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_template"
    [name] = [t["name"] for t in body["templates"][:1]]
    assert any(problem in p for p in r.json()["problems"][name])
    assert (await _versions(db), (await client.get("/v1/templates")).json()) == before


async def test_put_makes_a_new_version_used_by_new_messages(
    api: tuple[httpx.AsyncClient, Any], db: AsyncEngine, uid: str, test_year: int,
) -> None:
    client, ctx = api
    name = TemplateName.WARNING_2
    current = {t["name"]: t for t in (await client.get("/v1/templates")).json()}[name]
    new_text = f"尊敬的中国移动客户,您好!您的集团产品CPNAME(产品编号:CPNO)仍欠XX元{uid}。"
    r = await client.put("/v1/templates", json={
        "templates": [{"name": name, "text": new_text}], "changed_by": "tester"})
    assert r.status_code == 200, r.text
    after = {t["name"]: t for t in r.json()}[name]
    assert (after["version"], after["text"]) == (current["version"] + 1, new_text)
    again = await client.put("/v1/templates", json={"templates": [{"name": name,
                                                                   "text": new_text}]})
    assert {t["name"]: t for t in again.json()}[name]["version"] == after["version"]  # unchanged
    versions = (await client.get(f"/v1/templates/{name}/versions")).json()
    assert versions[0] == {"name": "warning_2", "version": 1, "changed_by": "default",
                           "text": SPECS[name].default_text, "created_at": None}
    # the author is the caller's token subject (the service token here), not the body's word
    assert versions[-1]["text"] == new_text and versions[-1]["changed_by"] == "service"
    assert (await client.get("/v1/templates/nope/versions")).status_code == 404

    notice = context_for(uid, test_year)
    await receive(ctx, decision(notice, "warning", warning_level=2))
    [m] = (await client.get("/v1/messages", params={"product_id": f"P{uid}"})).json()
    assert m["template"] == "warning_2" and m["template_version"] == after["version"]
    assert m["text"] == (
        f"尊敬的中国移动客户,您好!您的集团产品企信通(产品编号:CP{uid})仍欠123.45元{uid}。")
    # Put the default back, so other tests see the documented text.
    await client.put("/v1/templates", json={"templates": [{"name": name,
                                                           "text": SPECS[name].default_text}]})


async def test_preview_renders_what_a_decision_would_send(
    api: tuple[httpx.AsyncClient, Any], uid: str, test_year: int,
) -> None:
    client, _ = api
    notice = context_for(uid, test_year, contacts=("13800000001", "bad"))
    event = msgspec.to_builtins(suspended(notice))
    r = await client.post("/v1/templates/preview", json={"state_change": event})
    assert r.status_code == 200, r.text
    got = [(p["template"], p["recipient"], p["undeliverable"], p["segments"]) for p in r.json()]
    assert got == [
        ("suspension_notice_contact", "13800000001", None, 2),
        ("suspension_notice_contact", "bad", "malformed phone number 'bad': expected 11 digits "
                                             "starting 13-19", 2),
        ("suspension_notice_manager", "13900000001", None, 2)]
    assert r.json()[2]["text"].startswith(
        f"张经理,您好!您看管集团某某科技有限公司{uid}的集团产品企信通")
    draft = await client.post("/v1/templates/preview", json={
        "decision": msgspec.to_builtins(decision(notice)), "template": "warning_3",
        "text": "CPNAME欠XX元,请于MM月DD日前缴费"})
    assert [p["text"] for p in draft.json()] == ["企信通欠123.45元,请于11月25日前缴费"] * 2
    refused = await client.post("/v1/templates/preview", json={
        "decision": msgspec.to_builtins(decision(notice)), "template": "warning_3",
        "text": "您好NAME"})
    assert refused.status_code == 422
    assert refused.json()["problems"]["warning_3"][0].startswith("unknown placeholders: NAME")
    both = await client.post("/v1/templates/preview", json={
        "decision": msgspec.to_builtins(decision(notice)), "state_change": event})
    assert both.status_code == 422
    # The deduction notice from what a deduction collected; the decision makes none.
    took = collected(notice, 1_234, local(test_year, "11-15T20:00"))
    deducted = await client.post("/v1/templates/preview", json={
        "deduction_collected": msgspec.to_builtins(took)})
    assert [(p["template"], p["recipient"]) for p in deducted.json()] == [
        ("deduction_notice", "13800000001"), ("deduction_notice", "bad")]
    assert f"于{test_year}年11月15日从您的预存款中划扣12.34元" in deducted.json()[0]["text"]
    asked = await client.post("/v1/templates/preview", json={"decision": msgspec.to_builtins(
        decision(notice, DecisionType.DEDUCTION, amount_fen=2_000))})
    assert asked.json() == []


async def test_message_log_filters_and_smsc_knobs(
    api: tuple[httpx.AsyncClient, Any], uid: str, test_year: int,
) -> None:
    client, ctx = api
    notice = context_for(uid, test_year)
    await receive(ctx, suspended(notice))
    r = await client.put("/v1/smsc/faults", json={"fail_recipients": ["13900000001"]})
    assert r.status_code == 200 and r.json()["fail_recipients"] == ["13900000001"]
    assert (await client.put("/v1/smsc/faults", json={"failure_rate": 2})).status_code == 422
    await drain(ctx)
    by_status = (await client.get("/v1/messages", params={
        "product_id": f"P{uid}", "status": "submitted"})).json()
    assert [m["template"] for m in by_status] == ["suspension_notice_contact"]
    pending = (await client.get("/v1/messages", params={
        "product_id": f"P{uid}", "type": "suspension_notice_manager"})).json()
    assert [(m["status"], m["attempts"]) for m in pending] == [("pending", 1)]
    await client.put("/v1/smsc/faults", json={})
    # Paged, oldest first: a page after its last message, or the last page (`newest`).
    mine = {"product_id": f"P{uid}"}
    every = [m["message_id"] for m in (await client.get("/v1/messages", params=mine)).json()]
    assert len(every) >= 2
    paged, after = [], None
    while True:
        page = (await client.get("/v1/messages", params={
            **mine, "limit": 1, **({"after": after} if after else {})})).json()
        if not page:
            break
        paged.append(page[0]["message_id"])
        after = page[0]["message_id"]
    assert paged == every
    last = (await client.get("/v1/messages", params={**mine, "limit": 1, "newest": "true"}))
    assert [m["message_id"] for m in last.json()] == every[-1:]
    r = await client.get("/v1/messages", params={**mine, "after": "no-such-message"})
    assert r.status_code == 404 and r.json()["field"] == "after", r.text
    r = await client.get("/v1/messages", params={**mine, "after": every[0], "newest": "true"})
    assert r.status_code == 422, r.text
    received = (await client.get("/v1/smsc/messages", params={"recipient": "13800000001"})).json()
    assert by_status[0]["text"] in [m["text"] for m in received]


async def test_receipts_webhook_and_timeliness_validation(
    api: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = api
    r = await client.post("/v1/receipts", json=[{
        "provider_message_id": "unknown-id", "status": "delivered",
        "at": "2026-11-25T10:00:00+08:00"}])
    assert r.json() == {"received": 1, "applied": 0}
    assert (await client.post("/v1/receipts", json=[{
        "provider_message_id": "x", "status": "lost", "at": "2026-11-25T10:00:00+08:00"}])
    ).status_code == 422
    bad = await client.get("/v1/kpis/reminder-timeliness", params={"bill_month": "2026-1"})
    assert bad.status_code == 422 and bad.json()["field"] == "bill_month"
