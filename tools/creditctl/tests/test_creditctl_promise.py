"""creditctl promise … as a person runs it, against the running services: the commands reach
credit-control's promise routes and say clearly what went wrong. (Recording a promise for a
story is tested through the same routes in services/credit-control/tests/integration/
test_promises.py: the suite's business dates are years ahead of the services' clock.)"""

import json

import pytest

from common.testing.processes import ServiceProcesses

from .test_creditctl_e2e import creditctl, ok

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def test_promise_commands_list_show_and_refuse_clearly(services: ServiceProcesses,
                                                             uid: str) -> None:
    assert json.loads(ok(creditctl(services, "promise", "list", "--account-id", f"A{uid}",
                                   "--output", "json"))) == []
    unknown = creditctl(services, "promise", "show", f"PR{uid}")
    assert unknown.returncode == 1 and "404" in unknown.stderr and f"PR{uid}" in unknown.stderr
    no_entry = creditctl(services, "promise", "add", f"WL-{uid}", "--promise-id", f"PR{uid}",
                         "--date", "2026-12-10", "--amount-fen", "100", "--reason", "资金周转")
    assert no_entry.returncode == 1 and "404" in no_entry.stderr, no_entry.stderr
    bad = creditctl(services, "promise", "add", f"WL-{uid}", "--promise-id", f"PR{uid}",
                    "--date", "2026-12-10", "--amount-fen", "100", "--reason", "资金周转",
                    "--instalment", "2026-12-10:100")
    assert bad.returncode == 2 and "YYYY-MM-DD=FEN" in bad.stderr, bad.stderr
    refused = creditctl(services, "promise", "add", f"WL-{uid}", "--promise-id", f"PR{uid}",
                        "--date", "2026-12-10", "--amount-fen", "100", "--reason", "资金周转",
                        token="not-a-token")
    assert refused.returncode == 4 and "401" in refused.stderr
