"""`python -m creditctl.billing_child ARGS…`: billing's own command line (`python -m
billing_events ARGS…`), run in the child process bulk.py starts, with one difference: a
failure ends in one line on stderr and creditctl's exit code, not a traceback of hundreds of
lines. The database (or Kafka) away is exit 3, "unreachable", as for an HTTP service; any other
failure is exit 1. `CREDITCTL_DEBUG=1` shows the traceback as well.

It runs in the child only: creditctl itself never imports billing's code (bulk.py says why).
"""

import os
import runpy
import sys
import traceback

from common.db import is_infrastructure_error

from .client import EXIT_REJECTED, EXIT_UNAVAILABLE

BILLING_MODULE = "billing_events"
MAX_MESSAGE = 300


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside an exception group (a TaskGroup's), or the exception itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def verdict(exc: BaseException) -> tuple[str, int]:
    """The line to print and the exit code for a failure of billing's command."""
    found = leaves(exc)
    unreachable = next((e for e in found if is_infrastructure_error(e)), None)
    if unreachable is not None:
        return (f"billing's database (or Kafka) is not reachable: {one_line(unreachable)}. "
                "Is the stack running (`make run`)? Set the database with --database-url or "
                "CREDITCTL_BILLING_DATABASE_URL.", EXIT_UNAVAILABLE)
    return f"billing's loader failed: {one_line(found[0])}", EXIT_REJECTED


def main(args: list[str]) -> int:
    sys.argv = [BILLING_MODULE, *args]
    try:
        runpy.run_module(BILLING_MODULE, run_name="__main__", alter_sys=True)
    except SystemExit as done:  # typer's own exit: its code stands (2: rows rejected)
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("CREDITCTL_DEBUG"):
            traceback.print_exc()
        message, code = verdict(exc)
        print(f"error: {message}", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
