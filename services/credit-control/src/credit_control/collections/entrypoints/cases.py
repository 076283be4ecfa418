"""Collections escalation over HTTP (docs/collections.md "Escalation"). Included by
`http.router` under its authenticated `/v1` prefix: reads are open to every role, the run
needs an operator, approving associated suspension a credit-admin."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from common.auth import Principal, Role, require
from common.http import IdPath

from ...service_layer.context import CreditContext
from ..domain.case_commands import ApproveAssociation, RunCollections
from ..domain.escalation import CaseStatus, Phase
from ..service_layer import escalation

CreditAdmin = Annotated[Principal, Depends(require(Role.CREDIT_ADMIN))]
Limit = Annotated[int, Query(ge=1, le=5000)]


def router(ctx: CreditContext) -> APIRouter:
    api = APIRouter(tags=["collections escalation"])

    @api.post("/collections/run", dependencies=[Depends(require(Role.OPERATOR))])
    async def run(cmd: RunCollections) -> dict[str, Any]:
        """Open cases for accounts in arrears past suspension, restore and close the paid
        ones, move the others into their phase as of `as_of` (idempotent)."""
        return await escalation.run(ctx, cmd.as_of, cmd.account_ids)

    @api.get("/collections/cases")
    async def cases(status: CaseStatus | None = None, phase: Phase | None = None,
                    account_id: str | None = None, customer_id: str | None = None,
                    limit: Limit = 500) -> list[dict[str, Any]]:
        """Collections cases (欠费清收), oldest first."""
        return await escalation.list_cases(ctx, {
            "status": status.value if status else None,
            "phase": int(phase) if phase else None, "account_id": account_id,
            "customer_id": customer_id}, limit)

    @api.get("/collections/cases/{case_id}")
    async def case(case_id: IdPath) -> dict[str, Any]:
        """One case with its steps (each a decision with its reason) and associations."""
        return await escalation.get_case(ctx, case_id)

    @api.post("/collections/cases/{case_id}/associated-suspension")
    async def associate(case_id: IdPath, cmd: ApproveAssociation,
                        caller: CreditAdmin) -> dict[str, Any]:
        """Approve associated suspension (关联停机) for this case (credit-admin) and carry
        it out, re-checked at execution; audited."""
        return await escalation.approve_association(ctx, case_id, cmd.note, caller.subject,
                                                    cmd.as_of)

    return api
