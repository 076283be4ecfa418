"""creditctl freeze … against the running services: a credit-admin makes a freeze, lists and
shows it, sees what it held back, ends it; a freeze the caller approves alone is refused with a
one-line error and exit 1, and nothing is stored."""

import json
from datetime import datetime, timedelta

import httpx
import pytest

from common.clock import BUSINESS_TZ
from common.testing.processes import ServiceProcesses

from .test_collections_escalation import creditctl

pytestmark = [pytest.mark.e2e]


async def test_a_freeze_made_listed_shown_and_ended_from_the_terminal(
    services: ServiceProcesses, clients: dict[str, httpx.AsyncClient], uid: str,
) -> None:
    now = datetime.now(BUSINESS_TZ).replace(microsecond=0)
    until = (now + timedelta(days=2)).isoformat()
    made = creditctl(services, "freeze", "add", f"FC{uid}", "--scope", "vendor",
                     "--value", "jiaxun", "--reason", "嘉讯网关故障, 待核实",
                     "--approver", "主管李四", "--until", until, "-o", "json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["scope"] == "vendor"

    # in force a minute later (it started when the service took it, just after `now`)
    listed = creditctl(services, "freeze", "list", "--active-at",
                       (now + timedelta(minutes=1)).isoformat(), "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert f"FC{uid}" in {f["freeze_id"] for f in json.loads(listed.stdout)}
    shown = creditctl(services, "freeze", "show", f"FC{uid}", "-o", "json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["held"] == {}
    held = creditctl(services, "freeze", "holds", f"FC{uid}", "-o", "json")
    assert held.returncode == 0 and json.loads(held.stdout) == []
    table = creditctl(services, "freeze", "show", f"FC{uid}")
    assert table.returncode == 0 and "嘉讯网关故障" in table.stdout

    ended = creditctl(services, "freeze", "end", f"FC{uid}", "--reason", "故障已修复",
                      "-o", "json")
    assert ended.returncode == 0, ended.stderr
    assert json.loads(ended.stdout)["ended_at"] is not None

    alone = creditctl(services, "freeze", "add", f"FX{uid}", "--scope", "all",
                      "--reason", "网络故障造成欠费", "--approver", "zhang.wei",  # the caller
                      "--until", until)
    assert alone.returncode == 1 and "four eyes" in alone.stderr, alone.stderr
    missing = await clients["credit-control"].get(f"/v1/freezes/FX{uid}")
    assert missing.status_code == 404
