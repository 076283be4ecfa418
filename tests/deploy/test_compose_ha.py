"""docker-compose.yml's `ha` profile: the shape of docs/scaling.md (three KRaft brokers with
three copies of every topic and two in sync for a write, a pg_auto_failover monitor and two
PostgreSQL nodes), opt-in, and the services pointed at it by deploy/ha.env. Docker cannot run
here: Compose's own `config` validates the file (skipped when no Compose is installed,
tests/deploy/test_compose.py), and the shape is read from what it resolves."""

from typing import Any

import pytest

from tests.deploy.test_compose import APP_SERVICES, run_compose

HA_INFRA = ("kafka-1", "kafka-2", "kafka-3", "pg-monitor", "pg-node-a", "pg-node-b")


def ha_config() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    result = run_compose("--env-file", "deploy/ha.env", "--profile", "ha", "config")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


def test_the_ha_profile_is_opt_in() -> None:
    """Compose starts a service with `profiles` only when one of them is asked for (the
    listing of `config` shows every service, whatever the profile)."""
    services = ha_config()["services"]
    for name in HA_INFRA:
        assert services[name].get("profiles") == ["ha"], name
    for name in (*APP_SERVICES, "kafka", "postgres"):
        assert not services[name].get("profiles"), f"{name} would need a profile"


def test_three_brokers_replicate_every_write_to_two() -> None:
    services = ha_config()["services"]
    voters = set()
    for n in (1, 2, 3):
        env = services[f"kafka-{n}"]["environment"]
        assert str(env["KAFKA_NODE_ID"]) == str(n)
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # combined, as ha.sh
        assert str(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == "3"
        assert str(env["KAFKA_MIN_INSYNC_REPLICAS"]) == "2"
        assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "3"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] in ("false", False)
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://kafka-{n}:9092"
        voters.add(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}


def test_postgres_is_a_monitor_a_primary_and_a_synchronous_standby() -> None:
    services = ha_config()["services"]
    assert services["pg-monitor"]["command"][:3] == ["pg_autoctl", "create", "monitor"]
    for node in ("pg-node-a", "pg-node-b"):
        command = services[node]["command"]
        assert command[:3] == ["pg_autoctl", "create", "postgres"]
        assert command[command.index("--replication-quorum") + 1] == "true"
        assert "pg-monitor" in command[command.index("--monitor") + 1]
        assert "healthcheck" in services[node]


def test_the_services_use_every_broker_and_the_read_write_node() -> None:
    services = ha_config()["services"]
    prefixes = {"billing-events": "BILLING", "credit-control": "CREDIT",
                "notifier": "NOTIFIER", "gateway-adapter": "GATEWAY"}
    for name in APP_SERVICES:
        env = services[name]["environment"]
        url = env[f"{prefixes[name]}_DATABASE_URL"]
        assert "host=pg-node-a:5432" in url and "host=pg-node-b:5432" in url, url
        assert "target_session_attrs=read-write" in url, url
        assert env[f"{prefixes[name]}_KAFKA_BOOTSTRAP"] == (
            "kafka-1:9092,kafka-2:9092,kafka-3:9092")
        assert str(env["CREDITCTL_TOPIC_REPLICATION_FACTOR"]) == "3"
