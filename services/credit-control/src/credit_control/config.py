from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from common.sending_hours import CUSTOMER_SENDING_HOURS, SendingWindow
from common.settings import DEV_TOKEN, ServiceSettings

from .credit.domain.ladder import NoticePolicy


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CREDIT_", extra="ignore")

    service_name: str = "credit-control"
    db_schema: str = "credit"
    http_port: int = 8102
    # Three balance batches in flight: the decision loop of one overlaps the others' database
    # work (docs/benchmarks.md: 3 lanes won each of four interleaved pairs against 2, by
    # 17 % on average, once the server's own work per event was cut; with both halves at
    # ~60 % of a core, a third batch fills the waits of the other two).
    consumer_lanes: int = Field(default=3, ge=1, le=8)
    # Closed loop with the chain: attempt + 1 after backoff × 2^(attempt−1); after
    # `loop_max_attempts` failed attempts a manual work order takes over.
    loop_max_attempts: int = Field(default=3, ge=1)
    loop_backoff_s: float = Field(default=60.0, ge=0)
    loop_timeout_s: float = Field(default=300.0, gt=0)  # no final result by then: a failure
    loop_tick_s: float = Field(default=5.0, gt=0)
    work_order_due_hours: float = Field(default=24.0, gt=0)
    # The in-process scheduler runs the daily sweep at this Asia/Shanghai time (off in tests).
    scheduler_enabled: bool = False
    scheduler_time: str = Field(default="20:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    # On start-up and every tick it also runs each scheduled day it missed (credit-control was
    # down at the time), oldest first, this many days back; a month's last day further back
    # (docs/credit-control.md, "Scheduler and catch-up"). A run later than the grace after
    # its time is labelled a catch-up.
    scheduler_catch_up_days: int = Field(default=7, ge=0, le=62)
    scheduler_month_end_catch_up_days: int = Field(default=31, ge=0, le=62)
    scheduler_grace_s: float = Field(default=300.0, ge=0)
    scheduler_tick_s: float = Field(default=60.0, gt=0)
    # With the scheduler on: the rating model's runs (docs/rating.md), and after each day's
    # sweep the collections cases' phases and the red-list lapse (docs/collections.md).
    # Each may be switched off on its own (a drill that must not re-rate or lapse anyone).
    rating_scheduler_enabled: bool = True
    collections_scheduled: bool = True
    # Sweeps left unfinished (a crash) are resumed on start-up and this often after.
    sweep_resume_interval_s: float = Field(default=30.0, gt=0)
    # A new sweep first waits, at most this long, until this service's consumer has applied
    # every balance event (and chain result, SMS outcome) published to Kafka before it began
    # (docs/credit-control.md "A sweep waits for the balance feed"); still behind, or Kafka
    # not answering, the sweep is not started: 503, and the scheduler retries. 0: no check.
    sweep_feed_wait_s: float = Field(default=60.0, ge=0, le=3600)
    # The service's clock runs this many seconds ahead of the system clock: for drills and
    # tests that run credit-control on another day (0 in production).
    clock_offset_s: float = 0.0
    # Mass-suspension guard defaults (staff change them through PUT /v1/guard).
    guard_max_share: float = Field(default=0.2, gt=0, le=1)
    guard_min_active: int = Field(default=1000, ge=0)
    # Products per chunk of a sweep (one statement and transaction each; docs/benchmarks.md).
    sweep_chunk: int = Field(default=50_000, ge=1)
    # A pass over at least this many products runs in `sweep_lanes` concurrent lanes, each
    # over its own range of product ids (one connection, hence one server core, each).
    sweep_lanes: int = Field(default=2, ge=1, le=8)
    sweep_lanes_min_products: int = Field(default=100_000, ge=0)
    # Notice before suspension (docs/rules.md): the suspension warning's SMS must have been
    # delivered (true: the SMSC returns receipts, as the simulated one does) or only sent
    # (false) a notice period before the suspension; after this many lost warnings in a row
    # the suspension goes ahead at the deadline as an exception.
    notice_requires_delivery: bool = True
    notice_max_warnings: int = Field(default=3, ge=1, le=10)
    # A suspension warning still unheard of (no receipt, no outcome) this many business days
    # after the deadline it named counts as lost: warned again, or an exception after
    # `notice_max_warnings` (docs/rules.md: why 2).
    notice_unheard_after_days: int = Field(default=2, ge=0, le=31)
    # The customers' SMS sending window (Asia/Shanghai; the notifier holds a customer's SMS
    # decided outside it until it opens): a suspension warning's notice counts from the day its
    # SMS can first leave (ladder.first_sending_day), so one decided at 23:00 names the next
    # day + the notice period. Must be the notifier's NOTIFIER_CUSTOMER_SENDING_HOURS: both
    # default to common/sending_hours.py's CUSTOMER_SENDING_HOURS (docs/operations.md).
    customer_sending_hours: str = CUSTOMER_SENDING_HOURS
    # Collections worklists (docs/collections.md): arrears above this go on the call list
    # (seed 001: 500元以上); two-month arrears become visit orders from this day of the month.
    worklist_call_threshold_fen: int = Field(default=50_000, ge=0)
    worklist_visit_from_day: int = Field(default=6, ge=1, le=28)
    # Collections escalation (docs/collections.md "Escalation"): the three phases' lengths in
    # days (seed 002: 10 each), and how often paid cases are settled (associations restored).
    collections_phase1_days: int = Field(default=10, ge=1, le=90)
    collections_phase2_days: int = Field(default=10, ge=1, le=90)
    collections_phase3_days: int = Field(default=10, ge=1, le=90)
    collections_settle_tick_s: float = Field(default=15.0, gt=0)
    # Promises to pay (docs/collections.md "Promises to pay"): how many days ahead staff may
    # promise, how far a credit-admin may approve, promises per account in 365 days.
    promise_max_days: int = Field(default=15, ge=0, le=90)
    promise_admin_max_days: int = Field(default=30, ge=0, le=180)
    promise_per_year: int = Field(default=2, ge=1, le=12)
    promise_max_instalments: int = Field(default=6, ge=1, le=24)
    # Red-list review: an entry is due this many months after it was added or renewed.
    redlist_review_months: int = Field(default=6, ge=1, le=36)
    # Reports and the dashboard read figures the other services own, over their HTTP APIs.
    billing_url: str = "http://127.0.0.1:8101"
    notifier_url: str = "http://127.0.0.1:8103"
    gateway_url: str = "http://127.0.0.1:8104"
    peer_token: SecretStr = SecretStr(DEV_TOKEN)
    peer_timeout_s: float = Field(default=30.0, gt=0)
    # How often the business gauges (KPIs, products per state, work orders; deploy/grafana)
    # are read from the database and the peers.
    business_metrics_interval_s: float = Field(default=60.0, gt=0)

    @field_validator("customer_sending_hours")
    @classmethod
    def _window(cls, value: str) -> str:
        SendingWindow.parse(value)
        return value

    @property
    def sending_window(self) -> SendingWindow:
        """The customers' SMS sending window (`customer_sending_hours`)."""
        return SendingWindow.parse(self.customer_sending_hours)

    @property
    def notice_policy(self) -> NoticePolicy:
        return NoticePolicy(self.notice_requires_delivery, self.notice_max_warnings,
                            self.notice_unheard_after_days)
