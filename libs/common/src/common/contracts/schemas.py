"""The JSON Schema of each event contract, generated from its struct (never written by hand).

One file per contract: `libs/common/schemas/<topic>/<Contract>.json`, the schema of the
whole message on the topic (the envelope, tagged with the event type, and its payload), with
every bound of `contracts.bounds`. Checked in, so a consumer outside this repository can
read the contracts; a unit test fails when the files differ from the structs.

    uv run python -m common.contracts.schemas          # rewrite the files
    uv run python -m common.contracts.schemas --check  # exit 1 if they differ
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from common.envelope import Contract, envelope_type

from . import ALL_CONTRACTS

# libs/common/schemas (this file is libs/common/src/common/contracts/schemas.py)
SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


def schema_of(contract: type[Contract]) -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(envelope_type(contract))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{contract.__name__} on {contract.topic}",
        "description": f"Event type {contract.event_type!r} in its envelope. Generated from "
                       f"common.contracts by `python -m common.contracts.schemas`.",
        **schema,
    }


def path_of(contract: type[Contract], root: Path = SCHEMA_DIR) -> Path:
    return root / contract.topic / f"{contract.__name__}.json"


def rendered(contract: type[Contract]) -> str:
    return json.dumps(schema_of(contract), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def expected_files(root: Path = SCHEMA_DIR) -> dict[Path, str]:
    return {path_of(c, root): rendered(c) for c in ALL_CONTRACTS}


def differences(root: Path = SCHEMA_DIR) -> list[str]:
    """What differs between the files under `root` and the structs (empty: in step)."""
    wanted = expected_files(root)
    found = set(root.rglob("*.json")) if root.exists() else set()
    problems = [f"missing or stale: {p.relative_to(root)}" for p, text in wanted.items()
                if not p.exists() or p.read_text(encoding="utf-8") != text]
    problems += [f"no contract for: {p.relative_to(root)}" for p in sorted(found - set(wanted))]
    return problems


def write(root: Path = SCHEMA_DIR) -> None:
    for p in (set(root.rglob("*.json")) if root.exists() else set()) - set(expected_files(root)):
        p.unlink()
    for p, text in expected_files(root).items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="only compare the files with the structs; exit 1 if they differ")
    args = parser.parse_args()
    if args.check:
        problems = differences()
        for p in problems:
            print(p, file=sys.stderr)
        sys.exit(1 if problems else 0)
    write()
    print(f"wrote {len(ALL_CONTRACTS)} schemas under {SCHEMA_DIR}")


if __name__ == "__main__":
    main()
