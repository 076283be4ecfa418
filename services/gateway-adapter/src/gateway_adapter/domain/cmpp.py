"""The industry gateway's CMPP 2.0 rules, pure: who may log in, what a submit is answered
before the block check, and the per-enterprise bounds (connections, messages per second)."""

from dataclasses import dataclass

from common.cmpp.codec import (
    VERSION,
    Connect,
    ConnectStatus,
    MsgFmt,
    Submit,
    SubmitResult,
    authenticator_source,
)

MAX_CONTENT = 140  # octets of one short message (Msg_Length, the standard's bound)
FORMATS = frozenset(int(f) for f in MsgFmt)


@dataclass(frozen=True)
class CmppAccount:
    """An enterprise's CMPP login at the gateway: its Source_Addr (企业代码, 6 characters),
    the shared secret, the MAS product whose block it is subject to, and its bounds."""

    source_addr: str
    shared_secret: str
    product_id: str
    max_connections: int = 4
    max_rate_per_s: float = 200.0


def judge_connect(pdu: Connect, account: CmppAccount | None, open_connections: int
                  ) -> ConnectStatus:
    """CMPP_CONNECT_RESP's Status for a login (before any state changes)."""
    if account is None:
        return ConnectStatus.BAD_SOURCE_ADDR
    if pdu.version > VERSION:
        return ConnectStatus.VERSION_TOO_HIGH
    expected = authenticator_source(account.source_addr, account.shared_secret, pdu.timestamp)
    if pdu.authenticator != expected:
        return ConnectStatus.AUTH_FAILED
    if open_connections >= account.max_connections:
        return ConnectStatus.TOO_MANY_CONNECTIONS
    return ConnectStatus.OK


def check_submit(pdu: Submit) -> SubmitResult:
    """What a submit is refused for on its own, before the rate and the block are looked at."""
    if pdu.msg_fmt not in FORMATS:
        return SubmitResult.BAD_STRUCTURE
    if len(pdu.content) > MAX_CONTENT:
        return SubmitResult.TOO_LONG
    if not 1 <= pdu.pk_number <= pdu.pk_total:
        return SubmitResult.BAD_STRUCTURE
    return SubmitResult.OK


class RateBucket:
    """A token bucket: `rate` messages a second after a burst of one second's worth. Time is
    passed in (monotonic seconds) so it is tested without sleeping."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self._capacity = max(rate, 1.0)
        self._tokens = self._capacity
        self._at = now

    def take(self, now: float, n: int = 1) -> bool:
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False
