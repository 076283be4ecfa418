"""Bulk load and the synthetic base: billing's own loader, run as a child process.

Why not billing's HTTP API: a base is 10^5-10^6 rows, and billing's loader writes them set-wise
(5,000 rows a statement, references checked per chunk, one balance event per touched account),
where the API takes one row per request. Why not import `billing_events` here: the CLI would
then be a second writer of billing's schema with billing's code pinned into it. A child process
of the same workspace environment keeps billing the only code that writes its tables, and
creditctl only passes the database URL and shows what the loader prints (its progress bar and
its table of loaded / already there / rejected rows), and, when it fails, one line and an exit
code (3: the database is not reachable) instead of a traceback.
"""

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .client import CliError

BILLING_MODULE = "billing_events"


def billing_command(args: Sequence[str]) -> list[str]:
    if importlib.util.find_spec(BILLING_MODULE) is None:
        raise CliError(f"`{BILLING_MODULE}` is not installed in this environment: run creditctl "
                       "from the workspace (`uv run creditctl ...`).")
    # billing's command through a thin guard that turns a failure into one line and
    # creditctl's exit code (billing_child.py), still in the child process.
    return [sys.executable, "-m", "creditctl.billing_child", *args]


def run_billing(args: Sequence[str], database_url: str | None) -> int:
    """billing's command with its output passed through; returns its exit code."""
    env = dict(os.environ)
    if database_url:
        env["BILLING_DATABASE_URL"] = database_url
    return subprocess.run(billing_command(args), env=env, check=False).returncode


def import_args(files: Sequence[Path], rejected: Path | None) -> list[str]:
    args = ["import-csv", *(str(f) for f in files)]
    return [*args, "--rejected", str(rejected)] if rejected else args


def load_order(folder: Path) -> list[Path]:
    """The CSVs `generate` wrote, in the order they must load (1_customers … 5_payments)."""
    return sorted(folder.glob("[0-9]_*.csv"))
