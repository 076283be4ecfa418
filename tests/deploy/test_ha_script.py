"""deploy/local/ha.sh without starting anything: `stack.sh` hands STACK=ha over to it, and its
`env` gives the services every broker, the multi-host read-write URL and three copies per
topic, on ports that move together with HA_PORT_BASE."""

import os
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]


def env_of(script: str, **extra: str) -> dict[str, str]:
    out = subprocess.run(["bash", f"deploy/local/{script}", "env"], cwd=ROOT, check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "STACK": "ha", **extra}).stdout
    pairs = (line.removeprefix("export ").split("=", 1) for line in out.splitlines())
    return {name: value.strip("'") for name, value in pairs}


def test_stack_sh_hands_the_ha_stack_to_ha_sh() -> None:
    assert env_of("stack.sh") == env_of("ha.sh")


def test_the_services_get_three_brokers_two_hosts_and_three_copies() -> None:
    env = env_of("ha.sh")
    assert env["KAFKA_BOOTSTRAP"] == "127.0.0.1:35092,127.0.0.1:35192,127.0.0.1:35292"
    assert env["CREDITCTL_TOPIC_REPLICATION_FACTOR"] == "3"
    url = make_url(env["DATABASE_URL"])
    assert url.drivername == "postgresql+asyncpg"
    assert url.query["host"] == ("127.0.0.1:35433", "127.0.0.1:35434")
    assert url.query["target_session_attrs"] == "read-write"


def test_the_ports_move_with_the_base() -> None:
    env = env_of("ha.sh", HA_PORT_BASE="36000")
    assert env["KAFKA_BOOTSTRAP"] == "127.0.0.1:36092,127.0.0.1:36192,127.0.0.1:36292"
    assert "host=127.0.0.1:36433&host=127.0.0.1:36434" in env["DATABASE_URL"]
