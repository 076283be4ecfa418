"""Event contracts: the only thing services share. Fields are only ever added."""

from common.envelope import Contract

from .billing import BALANCE_TOPIC, BalanceChanged
from .credit_control import DECISIONS_TOPIC, CreditDecisionMade, CreditStateChanged
from .gateway import COMMANDS_TOPIC, RESULTS_TOPIC, ProvisioningCommand, ProvisioningResult
from .notifier import NOTICES_TOPIC, NoticeOutcome


def registry(*contracts: type[Contract]) -> dict[str, type[Contract]]:
    return {c.event_type: c for c in contracts}


ALL_TOPICS = (BALANCE_TOPIC, DECISIONS_TOPIC, COMMANDS_TOPIC, RESULTS_TOPIC, NOTICES_TOPIC)

__all__ = [
    "ALL_TOPICS",
    "BALANCE_TOPIC",
    "COMMANDS_TOPIC",
    "DECISIONS_TOPIC",
    "NOTICES_TOPIC",
    "RESULTS_TOPIC",
    "BalanceChanged",
    "CreditDecisionMade",
    "CreditStateChanged",
    "NoticeOutcome",
    "ProvisioningCommand",
    "ProvisioningResult",
    "registry",
]
