"""Instructions counted by valgrind's callgrind around a part of a bench, for the benches'
`--instructions` (scripts/instructions.sh runs them under callgrind).

Why: on this 2-core VM the same CPU-per-event run varies by ±15 % (a plain Python loop's CPU
time does too), so a change worth a few per cent cannot be told apart by timing. An
instruction count is the same from run to run (±0.02 % here) and measures what the change
does to the work; the timings stay the figures the targets are about.

The process runs with instrumentation off (`--instr-atstart=no`); `Meter` zeroes the
counters and switches it on around the part, then dumps them to a file of its own and reads
the total back. Each switch is `callgrind_control` talking to the running process.
"""

import os
import re
import subprocess
from pathlib import Path
from types import TracebackType

_TOTALS = re.compile(rb"^totals: (\d+)$", re.MULTILINE)


def _control(*args: str) -> None:
    done = subprocess.run(["callgrind_control", *args, str(os.getpid())],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"callgrind_control {' '.join(args)} failed (is this process "
                           f"running under valgrind --tool=callgrind?): {done.stdout}"
                           f"{done.stderr}")


class Meter:
    """`with meter:` counts the instructions of its body into `meter.counted`."""

    def __init__(self, out_file: str) -> None:
        self.out_file = out_file  # callgrind's --callgrind-out-file; dumps are <it>.<n>
        self.counted = 0

    def __enter__(self) -> "Meter":
        _control("-z")
        _control("-i", "on")
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _control("-i", "off")
        before = self._dumps()
        _control("-d")
        (new,) = self._dumps() - before
        found = _TOTALS.search(new.read_bytes())
        if found is None:
            raise RuntimeError(f"callgrind's dump {new} has no totals line")
        self.counted += int(found.group(1))
        if os.environ.get("CALLGRIND_KEEP"):  # for callgrind_annotate: where they went
            print(f"callgrind: the counts by function are in {new}")
        else:
            new.unlink()

    def _dumps(self) -> set[Path]:
        out = Path(self.out_file)
        return set(out.parent.glob(out.name + ".*"))
