"""What every gateway-adapter use case needs, built once by bootstrap()."""

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import Clock
from common.contracts import RESULTS_TOPIC
from common.outbox import Outbox

from ..adapters.credit_control import DesiredChainSource
from ..adapters.submits import SubmitJudge
from ..domain.faults import Faults


@dataclass
class GatewayContext:
    engine: AsyncEngine
    outbox: Outbox
    clock: Clock
    source: str = "gateway-adapter"
    default_faults: Faults = field(default_factory=Faults)
    desired: DesiredChainSource | None = None
    stuck_after: timedelta = timedelta(hours=1)
    # Stored reconciliation runs repair settled differences (GATEWAY_RECONCILIATION_REPAIR).
    repair: bool = True
    worker_batch: int = 500
    # Where results go: the contract's topic; a bench sends them to a topic of its own so
    # the credit-control of the same stack does not wade through them afterwards.
    results_topic: str = RESULTS_TOPIC
    # Set when the consumer accepted a command, so the stage worker looks at once.
    worker_wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Submits (HTTP and CMPP) judged in groups: one statement for those that arrive together.
    submit_judge: SubmitJudge = field(init=False)

    def __post_init__(self) -> None:
        self.submit_judge = SubmitJudge(self.engine, self.clock.now)
