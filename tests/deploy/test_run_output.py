"""`make run` prints the dashboard's sign-in address and a token per role, never a link that
carries a token (issue 20 point 7: the printed link carried the all-powerful service token)."""

import importlib.util
from pathlib import Path
from types import ModuleType

RUN = Path(__file__).resolve().parents[2] / "deploy" / "local" / "run.py"


def _run_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_local_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_run_prints_the_sign_in_address_and_the_role_tokens_not_a_token_link() -> None:
    run = _run_module()
    staff = {"viewer-abc": ("li.na", "ops-viewer"), "admin-xyz": ("zhang.wei", "credit-admin")}
    text = "\n".join(run.dashboard_lines("http://127.0.0.1:8102", staff))
    assert "http://127.0.0.1:8102/dashboard/signin" in text
    assert "token=" not in text and run.TOKEN not in text
    for token, (subject, role) in staff.items():
        assert any(token in line and subject in line and role in line
                   for line in text.splitlines())
    # main() prints these lines and nothing else about the dashboard.
    source = RUN.read_text()
    assert "dashboard?" not in source and "token={" not in source
