"""deploy/docker-compose.yml must parse and describe the whole stack.

No Docker daemon is needed: `config` only reads, interpolates and validates the file. The
parser is Compose v2 (`docker compose`) when present, else v1 (`docker-compose`, Debian's
package); with neither the tests skip rather than fail, since that is a missing tool, not a
broken file.
"""

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = "deploy/docker-compose.yml"
APP_SERVICES = ("billing-events", "credit-control", "notifier", "gateway-adapter")
INFRA = ("kafka", "postgres")
TIMEOUT_S = 60


@functools.cache
def compose_command() -> tuple[str, ...] | None:
    """The command prefix of the first Compose that works here, or None."""
    if shutil.which("docker"):
        try:
            probe = subprocess.run(["docker", "compose", "version"], capture_output=True,
                                   timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            probe = None
        # A docker CLI without the compose plugin answers "unknown command" and non-zero.
        if probe is not None and probe.returncode == 0:
            return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    return None


def run_compose(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = compose_command()
    if cmd is None:
        pytest.skip("no Compose parser: neither `docker compose` (v2 plugin) nor "
                    "`docker-compose` works here; install one, e.g. "
                    "`apt-get install -y docker-compose`")
    return subprocess.run([*cmd, "-f", COMPOSE_FILE, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT_S, check=False)


def load_config() -> dict[str, Any]:
    """The file as Compose resolves it (anchors merged, variables interpolated)."""
    if compose_command() == ("docker", "compose"):
        result = run_compose("config", "--format", "json")
        assert result.returncode == 0, result.stderr
        config: dict[str, Any] = json.loads(result.stdout)
        return config
    # Compose v1 prints YAML only. PyYAML comes in with uvicorn[standard]; skip, not fail,
    # if a slimmer environment lacks it.
    yaml = pytest.importorskip("yaml")
    result = run_compose("config")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_compose_file_is_valid() -> None:
    result = run_compose("config", "-q")
    assert result.returncode == 0, (
        f"`{' '.join(result.args)}` exited {result.returncode}:\n{result.stderr}"
    )


def test_compose_defines_the_stack_and_its_startup_order() -> None:
    services = load_config()["services"]

    missing = {*APP_SERVICES, *INFRA, "prometheus"} - services.keys()
    assert not missing, f"services missing from {COMPOSE_FILE}: {sorted(missing)}"

    for name in APP_SERVICES:
        depends_on = services[name].get("depends_on", {})
        # Normalised output is a mapping with conditions; a bare list would mean "started",
        # which is too early for migrations and topic creation.
        assert isinstance(depends_on, dict), f"{name}: depends_on has no conditions"
        for infra in INFRA:
            assert infra in depends_on, f"{name} does not depend on {infra}"
            assert depends_on[infra].get("condition") == "service_healthy", (
                f"{name} starts before {infra} is healthy"
            )
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
