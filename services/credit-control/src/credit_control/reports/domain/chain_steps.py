"""A product's chain steps for its timeline (pure): what became of each provisioning command
at each stage of the chain, BOSS → EMOS → industry gateway, from the gateway-adapter's view of
the product (`GET /v1/products/{id}/chain`: one row per command attempt, with the moment it
passed each stage and how it ended)."""

from typing import Any

# (the attempt's column, the stage it marks), in the order a command passes them.
STAGES = (("received_at", "received"), ("boss_at", "boss"), ("emos_at", "emos"),
          ("gateway_ack_at", "gateway_ack"), ("finished_at", "finished"))


def chain_steps(chain: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One step per stage an attempt reached, oldest attempt first. The last step of a
    finished attempt carries its outcome (applied, failed, timed_out, superseded) and the
    chain's detail (why it failed, "enterprise blocked")."""
    steps: list[dict[str, Any]] = []
    for a in (chain or {}).get("attempts", []):
        for column, stage in STAGES:
            at = a.get(column)
            if at is None:
                continue
            finished = stage == "finished"
            steps.append({
                "at": at, "command_id": a.get("command_id"), "attempt": a.get("attempt"),
                "action": a.get("action"), "sequence": a.get("sequence"), "stage": stage,
                "outcome": a.get("outcome") if finished else None,
                "detail": (a.get("detail") or "") if finished else "",
                "emos_order_id": a.get("emos_order_id") if stage == "boss" else None})
    return steps
