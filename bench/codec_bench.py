"""CPU cost of the event codec, no Kafka, no database: µs per BalanceChanged envelope to decode
(what a consumer does per record: envelope + typed payload, bounds checked) and to encode
(wrap + to_bytes). Prints one line per figure.

The event is a realistic balance event (~1.5 KB: a customer with contacts, several products,
dues per month and per product). The same script runs against an older libs/common (the
pydantic contracts) when that is first on PYTHONPATH, e.g. for a before/after:

    git archive <ref> libs/common | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/libs/common/src uv run python bench/codec_bench.py
    uv run python bench/codec_bench.py
"""

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from common.contracts import BalanceChanged, registry
from common.envelope import parse, to_bytes, wrap

AT = "2026-11-25T09:00:00+08:00"


def _event(products: int) -> dict[str, Any]:
    person = {"name": "赵经理", "phone": "13900000001"}
    return {
        "account_id": "A-000123", "sequence": 42, "cause": "bill_run", "as_of": AT,
        "balance_fen": -123_456, "amount_due_fen": 123_456,
        "dues": [{"bill_month": "2026-09", "amount_due_fen": 23_456},
                 {"bill_month": "2026-10", "amount_due_fen": 100_000}],
        "unbilled_fen": 700, "closed_bill_month": "2026-10",
        "customer": {"customer_id": "G-000123", "name": "东莞某某科技有限公司", "tier": "mid",
                     "star_level": 3, "account_manager": person,
                     "contacts": [person, {"name": "李娜", "phone": "13800000001"}]},
        "products": [{"product_id": f"P-000123-{i}", "cpno": f"CP2026{i:04d}",
                      "name": "华为CRM-MAS", "family": "MAS", "vendor": "huawei",
                      "channel": "东莞政企"} for i in range(products)],
        "deposit_fen": 5_000, "last_payment_at": AT,
        "product_dues": [{"product_id": f"P-000123-{i}", "amount_due_fen": 123_456 // products,
                          "dues": [{"bill_month": "2026-10",
                                    "amount_due_fen": 123_456 // products}],
                          "unbilled_fen": 0} for i in range(products)],
    }


def _contract(data: dict[str, Any]) -> Any:
    if hasattr(BalanceChanged, "model_validate"):  # the pydantic contracts
        return BalanceChanged.model_validate(data)  # type: ignore[attr-defined]
    from common.envelope import convert
    return convert(data, BalanceChanged)


def _per_call_us(fn: Callable[[], Any], n: int, rounds: int) -> float:
    """Median over `rounds` of the CPU time per call, in µs."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            fn()
        times.append((time.process_time() - start) / n * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the median is printed)")
    parser.add_argument("--products", type=int, default=3, help="products in the event")
    args = parser.parse_args()

    event = _contract(_event(args.products))
    now = datetime.now(UTC)
    raw = to_bytes(wrap(event, key="A-000123", source="bench", occurred_at=now))
    decoder = registry(BalanceChanged)
    envelope, payload = parse(raw, decoder)
    assert payload == event and envelope.key == "A-000123"

    decode = _per_call_us(lambda: parse(raw, decoder), args.n, args.rounds)
    encode = _per_call_us(
        lambda: to_bytes(wrap(event, key="A-000123", source="bench", occurred_at=now)),
        args.n, args.rounds)
    codec = "pydantic" if hasattr(BalanceChanged, "model_validate") else "msgspec"
    print(f"codec: {codec}; BalanceChanged envelope of {len(raw)} bytes "
          f"({args.products} products)")
    print(f"decode (envelope + typed payload, bounds checked): {decode:.2f} µs/event")
    print(f"encode (wrap + to_bytes): {encode:.2f} µs/event")


if __name__ == "__main__":
    main()
