"""A synthetic customer base for the rating model (tests, demos, calibration of the defaults).

The shapes are what a province's group-customer base looks like, not data from the seeds
(which give only the resulting star shares): most customers small (value class D), spend
log-normal around a class-dependent median, a few recent customers, a few blacklisted, most
never suspended. Deterministic for a seed."""

import math
import random
from datetime import date, timedelta

from .domain.model import RatingInputs

# value class: (share, median monthly spend in yuan)
CLASSES = {"A": (0.03, 3000), "B": (0.12, 800), "C": (0.35, 200), "D": (0.50, 60)}
NEW_SHARE = 0.08  # opened less than six months ago
BLACKLIST_SHARE = 0.02
SUSPENSIONS = ((0, 0.70), (1, 0.15), (2, 0.08), (3, 0.04), (4, 0.03))


def base(n: int, as_of: date, seed: int = 4) -> list[RatingInputs]:
    rnd = random.Random(seed)
    classes = list(CLASSES)
    weights = [CLASSES[c][0] for c in classes]
    out = []
    for i in range(n):
        klass = rnd.choices(classes, weights)[0]
        new = rnd.random() < NEW_SHARE
        months = rnd.randint(0, 5) if new else 6 + int(rnd.expovariate(1 / 40))
        opened = as_of - timedelta(days=months * 30 + rnd.randint(0, 29))
        spend = int(CLASSES[klass][1] * 100 * math.exp(rnd.gauss(0, 0.9)))
        n_susp = rnd.choices([s for s, _ in SUSPENSIONS], [w for _, w in SUSPENSIONS])[0]
        black = rnd.random() < BLACKLIST_SHARE
        out.append(RatingInputs(
            customer_id=f"SYN{i:07d}", brand=klass, opened_on=opened,
            avg_monthly_spend_fen=spend, suspensions=n_susp,
            suspensions_period=min(n_susp, rnd.randint(0, n_susp)),
            blacklisted=black, blacklist_reason="bad debt written off" if black else None))
    return out
