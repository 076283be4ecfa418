"""Event contracts: the only thing services share. Fields are only ever added.

Each contract is a msgspec Struct defined once here; `registry(...)` gives the decoder a
consumer reads its contracts with (common.envelope.EventDecoder), `wrap` + `to_bytes` encode
them, and `python -m common.contracts.schemas` writes their JSON Schemas (libs/common/schemas).
"""

from common.envelope import Contract, EventDecoder

from .billing import BALANCE_TOPIC, BalanceChanged
from .clock import CLOCK_TOPIC, SimulatedClockMoved
from .credit_control import (
    DECISIONS_TOPIC,
    CreditDecisionMade,
    CreditStateChanged,
    DeductionCollected,
    ExemptionChanged,
    ProductAmountChanged,
    SuspensionDeferred,
)
from .gateway import COMMANDS_TOPIC, RESULTS_TOPIC, ProvisioningCommand, ProvisioningResult
from .notifier import NOTICES_TOPIC, NoticeOutcome


def registry(*contracts: type[Contract]) -> EventDecoder:
    """The one-pass decoder of these contracts, built once per consumer."""
    return EventDecoder(*contracts)


ALL_TOPICS = (BALANCE_TOPIC, DECISIONS_TOPIC, COMMANDS_TOPIC, RESULTS_TOPIC, NOTICES_TOPIC,
              CLOCK_TOPIC)
# Every event contract (each has a JSON Schema under libs/common/schemas).
ALL_CONTRACTS: tuple[type[Contract], ...] = (
    BalanceChanged, CreditDecisionMade, CreditStateChanged, ProductAmountChanged,
    DeductionCollected, ExemptionChanged, SuspensionDeferred,
    ProvisioningCommand, ProvisioningResult, NoticeOutcome, SimulatedClockMoved)

__all__ = [
    "ALL_CONTRACTS",
    "ALL_TOPICS",
    "BALANCE_TOPIC",
    "CLOCK_TOPIC",
    "COMMANDS_TOPIC",
    "DECISIONS_TOPIC",
    "NOTICES_TOPIC",
    "RESULTS_TOPIC",
    "BalanceChanged",
    "CreditDecisionMade",
    "CreditStateChanged",
    "DeductionCollected",
    "ExemptionChanged",
    "NoticeOutcome",
    "ProductAmountChanged",
    "ProvisioningCommand",
    "ProvisioningResult",
    "SimulatedClockMoved",
    "SuspensionDeferred",
    "registry",
]
