"""The instruction meter of the benches (bench/_callgrind.py): under callgrind it counts its
body's instructions and nothing outside it, so twice the work counts about twice."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

SCRIPT = """
import sys
sys.path.insert(0, {bench!r})
from _callgrind import Meter

def work(n):
    x = 0
    for i in range(n):
        x += i * i
    return x

counts = []
for n in (20_000, 40_000):
    work(100_000)  # outside the meter: not counted
    with Meter({out!r}) as meter:
        work(n)
    counts.append(meter.counted)
print(*counts)
"""


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_the_meter_counts_its_body_only(tmp_path: Path) -> None:
    out = tmp_path / "cg"
    script = tmp_path / "meter.py"
    script.write_text(SCRIPT.format(bench=str(BENCH), out=str(out)))
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         "-q", sys.executable, str(script)],
        capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    small, large = (int(c) for c in run.stdout.split())
    assert small > 20_000 * 20  # a loop's turn is tens of instructions at least
    assert 1.8 < large / small < 2.2  # the 100,000 turns outside were not counted
    assert not list(tmp_path.glob("cg.*"))  # the dumps read are removed
