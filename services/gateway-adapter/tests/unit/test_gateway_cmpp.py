"""The gateway's CMPP rules, pure: logins, a submit's own checks, the rate bucket."""

from common.cmpp.codec import (
    Connect,
    ConnectStatus,
    MsgFmt,
    Submit,
    SubmitResult,
    authenticator_source,
)
from gateway_adapter.domain.cmpp import CmppAccount, RateBucket, check_submit, judge_connect

ACCOUNT = CmppAccount("901234", "s3cret", "P1", max_connections=2, max_rate_per_s=10)


def login(secret: str = "s3cret", source: str = "901234", version: int = 0x20) -> Connect:
    return Connect(source, authenticator_source(source, secret, 1203040506), 1203040506,
                   version)


def test_logins() -> None:
    assert judge_connect(login(), ACCOUNT, 0) is ConnectStatus.OK
    assert judge_connect(login("wrong"), ACCOUNT, 0) is ConnectStatus.AUTH_FAILED
    assert judge_connect(login(), None, 0) is ConnectStatus.BAD_SOURCE_ADDR
    assert judge_connect(login(version=0x30), ACCOUNT, 0) is ConnectStatus.VERSION_TOO_HIGH
    assert judge_connect(login(), ACCOUNT, 2) is ConnectStatus.TOO_MANY_CONNECTIONS
    # a wrong secret is refused as such even at the bound: nothing about the bound leaks
    assert judge_connect(login("wrong"), ACCOUNT, 2) is ConnectStatus.AUTH_FAILED


def test_submit_checks() -> None:
    ok = Submit(("13800138000",), b"x" * 140, MsgFmt.UCS2)
    assert check_submit(ok) is SubmitResult.OK
    assert check_submit(Submit(("1",), b"x" * 141)) is SubmitResult.TOO_LONG
    assert check_submit(Submit(("1",), b"x", msg_fmt=3)) is SubmitResult.BAD_STRUCTURE
    assert check_submit(Submit(("1",), b"x", pk_total=2, pk_number=3)) \
        is SubmitResult.BAD_STRUCTURE


def test_rate_bucket() -> None:
    bucket = RateBucket(10, now=0.0)
    assert all(bucket.take(0.0) for _ in range(10))  # a second's burst
    assert not bucket.take(0.0)
    assert bucket.take(0.1)  # a tenth of a second later: one more
    assert not bucket.take(0.1)
    assert not bucket.take(0.2, n=5) and bucket.take(0.6, n=5)
