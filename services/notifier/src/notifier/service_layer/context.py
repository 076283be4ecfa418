"""What every notifier use case needs, wired once by bootstrap()."""

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import Clock
from common.outbox import Outbox
from common.sending_hours import CUSTOMER_SENDING_HOURS, MANAGER_SENDING_HOURS

from ..adapters.providers import SmsProvider
from ..adapters.smsc import SimulatedSmsc
from ..domain.pacing import TokenBucket
from ..domain.quiet_hours import SendingWindow
from ..domain.templates import Role


def default_windows() -> dict[Role, SendingWindow]:
    return {Role.GROUP_CONTACT: SendingWindow.parse(CUSTOMER_SENDING_HOURS),
            Role.ACCOUNT_MANAGER: SendingWindow.parse(MANAGER_SENDING_HOURS)}


@dataclass
class NotifierContext:
    engine: AsyncEngine
    provider: SmsProvider
    clock: Clock
    send_batch_size: int = 500
    wake: asyncio.Event | None = None
    send_max_attempts: int = 5
    send_claim_timeout_s: float = 60.0
    send_backoff_base_s: float = 1.0
    windows: dict[Role, SendingWindow] = field(default_factory=default_windows)
    smsc: SimulatedSmsc | None = None  # set when the simulated SMSC is the provider
    reminder_deadline: timedelta = timedelta(hours=24)
    # Pacing (domain/pacing.py): held messages released per second (0: no limit) and the
    # minimum gap between two messages to one number (0: none).
    release_pacer: TokenBucket = field(default_factory=lambda: TokenBucket(0, 0))
    recipient_gap_s: float = 0.0
    # Notice outcomes (service_layer/outcomes.py): published through this outbox for these
    # templates; no outbox, none published.
    outbox: Outbox | None = None
    outcome_templates: frozenset[str] = frozenset({"suspension_warning"})
    # A notice accepted by the SMSC and not delivered this long after (business time) is
    # published `failed` (service_layer/receipts.py `time_out_receipts`); None: never.
    receipt_timeout: timedelta | None = timedelta(hours=24)
    source: str = "notifier"
