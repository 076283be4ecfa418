"""adapters/sweep_sql: the envelopes the sweep builds inside PostgreSQL take their topics,
event types and schema version from the contracts (bind parameters), never from literals
written in the SQL (one contract, one codec: docs/architecture.md)."""

from datetime import UTC, date, datetime

import pytest

from common.contracts import CreditDecisionMade, CreditStateChanged, ProvisioningCommand
from common.envelope import SCHEMA_VERSION
from credit_control.credit.adapters import sweep_sql
from credit_control.credit.domain.rule_table import DEFAULT_RULES
from credit_control.credit.domain.rules import SweepStep, sweep_plan

# Days of a month on which the default table's calendar steps come due, so every kind of
# step (warnings, suspension warnings, suspensions with chain commands, pre-cancel) is seen.
STEPS = {(s.row.rule_id, s.row.decision): s for day in range(1, 29)
         for s in sweep_plan(DEFAULT_RULES, date(2026, 11, day))}


def _steps() -> list[SweepStep]:
    return list(STEPS.values())


def test_the_plan_has_steps_of_every_kind() -> None:
    kinds = {decision.value for _, decision in STEPS}
    assert {"warning", "suspend", "pre_cancel"} <= kinds, kinds


def test_no_topic_event_type_or_schema_version_is_written_in_the_sql() -> None:
    sql = sweep_sql.STATEMENT  # the one-pass statement: every step of a day at once
    for literal in (CreditDecisionMade.topic, ProvisioningCommand.topic,
                    CreditDecisionMade.event_type, CreditStateChanged.event_type,
                    ProvisioningCommand.event_type, "'schema_version', 1"):
        assert literal not in sql, literal
    assert "CAST(:schema_version AS integer)" in sql
    assert "CAST(:decisions_topic AS text)" in sql and "CAST(:decision_made AS text)" in sql


@pytest.mark.parametrize("step", _steps(), ids=lambda s: s.row.rule_id)
def test_the_statements_parameters_come_from_the_contracts(step: SweepStep) -> None:
    at = datetime(2026, 11, 25, 2, tzinfo=UTC)
    params = sweep_sql.params([(1, step)], at, at, 1, "", 100, "credit-control", None, at,
                              date(2026, 11, 25))
    assert params["schema_version"] == SCHEMA_VERSION
    assert (params["decisions_topic"], params["decision_made"], params["state_changed"]) \
        == (CreditDecisionMade.topic, CreditDecisionMade.event_type,
            CreditStateChanged.event_type)
    assert (params["commands_topic"], params["command_type"]) == (
        ProvisioningCommand.topic, ProvisioningCommand.event_type)
    # The notice policy is the step's (the sweep's settings), bound once per statement.
    assert (params["requires_delivery"], params["max_warnings"]) == (
        step.notice_policy.requires_delivery, step.notice_policy.max_warnings)


@pytest.mark.parametrize("sql", [sweep_sql.STATEMENT, sweep_sql.STATEMENT_UPTO])
def test_what_a_chunk_locks_is_in_the_text_staff_see(sql: str) -> None:
    """pg_stat_activity shows a query's first 1,024 bytes (track_activity_query_size): a
    chunk waiting for row locks names the table it locks there (staff, and the lock tests,
    look for it). Counted with the parameters' names, longer than the `$n` sent."""
    assert "credit.product_credit" in sql[:1024]


def test_a_range_takes_the_products_after_its_start_up_to_and_with_its_end() -> None:
    """sweeps._Ranges: range i is (start[i], start[i + 1]], the next one starts after that
    same id: a `<` here would skip every split point's product, a `>=` take it twice."""
    after, upto = "pc.product_id > CAST(:after AS text)", "pc.product_id <= CAST(:upto AS text)"
    assert f"WHERE {after} AND {upto}" in sweep_sql.STATEMENT_UPTO
    assert f"WHERE {after}" in sweep_sql.STATEMENT and ":upto" not in sweep_sql.STATEMENT
