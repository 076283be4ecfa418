"""notifier's HTTP API: the message log, the templates, receipts, reminder timeliness, and the
simulated SMSC (what it received, its fault knobs)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, PlainValidator, WithJsonSchema, model_validator

from common.auth import Principal, Role, authenticate, require
from common.clock import BusinessTime
from common.contracts.credit_control import (
    CreditDecisionMade,
    CreditStateChanged,
    DeductionCollected,
)
from common.envelope import Contract, convert
from common.errors import NotFound
from common.http import MonthQuery

from ..adapters.providers import Receipt
from ..adapters.smsc import SimulatedSmsc, SmscFaults
from ..config import Settings
from ..service_layer import handlers
from ..service_layer.context import NotifierContext
from ..service_layer.templates import placeholders

Limit = Annotated[int, Query(ge=1, le=10_000)]
# The statuses a message can be in (docs/notifier.md); an unknown one is a 422, not an empty
# list that reads as "none". `cancelled`: a held reminder whose reason went before it left.
MessageStatus = Literal["held", "pending", "sending", "submitted", "delivered", "rejected",
                        "undeliverable", "dead_lettered", "cancelled"]
# Template texts are business wording (credit admins'); fault knobs change what customers get.
CreditAdmin = Annotated[Principal, Depends(require(Role.CREDIT_ADMIN))]
ADMIN_ONLY = [Depends(require(Role.CREDIT_ADMIN))]
SERVICE_ONLY = [Depends(require(Role.SERVICE))]  # the SMS provider's receipt callback


class TemplateText(BaseModel):
    name: str = Field(max_length=64)
    text: str = Field(max_length=2000)  # longer than allowed: refused with a clear reason


class TemplatesChange(BaseModel):
    templates: list[TemplateText] = Field(min_length=1, max_length=100)
    # ignored: the bearer token's subject is recorded as the author of the change
    changed_by: str | None = Field(default=None, max_length=64)


def _contract_body(contract: type[Contract]) -> Any:
    """A contract (a msgspec Struct) inside a pydantic body: read by the contract's own
    codec with its bounds; a refusal is a ValueError, so FastAPI answers 422."""
    def read(value: Any) -> Any:
        return None if value is None else convert(value, contract)

    return Annotated[Any, PlainValidator(read), WithJsonSchema(
        {"type": "object", "description": f"{contract.__name__}: the event's payload "
         f"(JSON Schema: libs/common/schemas/{contract.topic}/{contract.__name__}.json)"})]


class PreviewRequest(BaseModel):
    decision: _contract_body(CreditDecisionMade) = None  # type: ignore[valid-type]
    state_change: _contract_body(CreditStateChanged) = None  # type: ignore[valid-type]
    # what a deduction collected: the deduction notice is made from it, not from a decision
    deduction_collected: _contract_body(DeductionCollected) = None  # type: ignore[valid-type]
    template: str | None = Field(default=None, max_length=64)
    text: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one_event(self) -> "PreviewRequest":
        given = [e for e in (self.decision, self.state_change, self.deduction_collected)
                 if e is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of decision, state_change or "
                             "deduction_collected")
        return self


class ReceiptIn(BaseModel):
    provider_message_id: str = Field(min_length=1, max_length=128)
    status: Literal["delivered", "rejected"]
    at: BusinessTime
    error: str | None = Field(default=None, max_length=500)


def router(ctx: NotifierContext, settings: Settings) -> APIRouter:
    api = APIRouter(prefix="/v1", dependencies=[Depends(authenticate(settings.token_table()))])
    _messages(api, ctx)
    _templates(api, ctx)
    _smsc(api, ctx)
    return api


def _messages(api: APIRouter, ctx: NotifierContext) -> None:
    @api.get("/messages", responses={
        404: {"description": "`after` names no message"}})
    async def messages(
        product_id: Annotated[str | None, Query(max_length=64)] = None,
        recipient: Annotated[str | None, Query(max_length=32)] = None,
        type: Annotated[str | None, Query(max_length=64)] = None,
        status: MessageStatus | None = None,
        trigger: Annotated[str | None, Query(max_length=64)] = None,
        decision_id: Annotated[str | None, Query(max_length=128)] = None,
        limit: Limit = 1000,
        after: Annotated[str | None, Query(min_length=1, max_length=128, description=(
            "the next page: the messages after this one (the last of the page before)"))] = None,
        newest: Annotated[bool, Query(description="the last page instead of the first")] = False,
    ) -> list[dict[str, Any]]:
        """SMS made, filtered by product, recipient, type, status, trigger or decision;
        oldest first, a page of `limit` at a time (`after`, or `newest` for the last)."""
        # decision_id: the messages a decision made (e.g. was that suspension warning sent
        # and delivered, the notice before suspension).
        return await handlers.list_messages(
            ctx, {"product_id": product_id, "recipient": recipient, "type": type,
                  "status": status, "trigger": trigger,
                  "source_id": f"decision:{decision_id}" if decision_id else None}, limit,
            after, newest)

    @api.post("/receipts", dependencies=SERVICE_ONLY)
    async def receipts(body: list[ReceiptIn]) -> dict[str, int]:
        """Delivery receipts from an SMS provider (its webhook)."""
        applied = await handlers.apply_receipts(
            ctx, [Receipt(r.provider_message_id, r.status, r.at, r.error) for r in body])
        return {"received": len(body), "applied": applied}

    @api.get("/kpis/reminder-timeliness")
    async def reminder_timeliness(
        bill_month: MonthQuery,
    ) -> dict[str, Any]:
        """Reminder timeliness (费用提醒及时率) of a bill month's notices."""
        return await handlers.reminder_timeliness(ctx, bill_month)


def _templates(api: APIRouter, ctx: NotifierContext) -> None:
    @api.get("/templates")
    async def templates() -> list[dict[str, Any]]:
        """The SMS templates in force."""
        return await handlers.list_templates(ctx)

    @api.put("/templates")
    async def change_templates(body: TemplatesChange, caller: CreditAdmin) -> list[dict[str, Any]]:
        """Change SMS templates: each change is a new version."""
        return await handlers.put_templates(
            ctx, [(t.name, t.text) for t in body.templates], caller.subject)

    @api.get("/templates/placeholders")
    async def template_placeholders() -> dict[str, str]:
        """The placeholders a template may use, with their meaning."""
        return placeholders()

    @api.get("/templates/{name}/versions")
    async def versions(name: str) -> list[dict[str, Any]]:
        """Every version of one template, newest first."""
        return await handlers.template_versions(ctx, name)

    @api.post("/templates/preview", dependencies=ADMIN_ONLY)
    async def preview(body: PreviewRequest) -> list[dict[str, Any]]:
        """Render a template for a decision, a state change or what a deduction collected,
        without sending anything."""
        event = body.decision or body.state_change or body.deduction_collected
        assert event is not None  # the validator saw to it
        return await handlers.preview(ctx, event, body.template, body.text)


def _smsc(api: APIRouter, ctx: NotifierContext) -> None:
    @api.get("/smsc/messages")
    async def smsc(
        recipient: Annotated[str | None, Query(max_length=32)] = None, limit: Limit = 1000,
    ) -> list[dict[str, Any]]:
        """What the simulated SMSC received."""
        return await handlers.smsc_received(ctx, recipient, limit)

    @api.get("/smsc/faults")
    async def faults() -> SmscFaults:
        """The simulated SMSC's injected faults."""
        return _simulated(ctx).faults

    @api.put("/smsc/faults", dependencies=ADMIN_ONLY)
    async def set_faults(body: SmscFaults) -> SmscFaults:
        """Inject faults into the simulated SMSC (for tests and drills)."""
        _simulated(ctx).faults = body
        return body


def _simulated(ctx: NotifierContext) -> SimulatedSmsc:
    if ctx.smsc is None:
        raise NotFound("the simulated SMSC is not in use (NOTIFIER_PROVIDER=http)")
    return ctx.smsc
