"""deploy/prometheus: the alert rules are loaded (prometheus.yml's rule_files, mounted in
compose), and every rule queries a metric the services really export, so an alert cannot
silently watch nothing (issue 14: a stalled consumer must page someone)."""

from pathlib import Path

import pytest

from tests.deploy.test_compose import check_query, load_config

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
COMPOSE = PROMETHEUS.parent / "docker-compose.yml"


def _rules() -> list[dict[str, str]]:
    yaml = pytest.importorskip("yaml")
    return [rule for path in sorted((PROMETHEUS / "rules").glob("*.yml"))
            for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"]]


def test_the_rules_folder_is_loaded_and_mounted() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert "/etc/prometheus/rules/*.yml" in config["rule_files"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in COMPOSE.read_text(encoding="utf-8")
    assert _rules()


def test_every_alert_queries_an_exported_metric() -> None:
    rules = _rules()
    assert len(rules) >= 15
    for rule in rules:
        check_query(f"alert {rule['alert']}", rule["expr"])


def test_every_alert_is_complete_and_named_once() -> None:
    names = [r["alert"] for r in _rules()]
    assert len(names) == len(set(names)), names
    for rule in _rules():
        assert rule["labels"]["severity"] in {"page", "critical", "warning", "info"}, rule
        assert rule["annotations"]["summary"], rule["alert"]


def test_the_documented_alerts_have_rules() -> None:
    """docs/operations.md's "What to alert on": each expression has a rule, and the rules the
    issue asks for (a stalled consumer, an unfinished sweep, lag growing) exist."""
    exprs = " ".join(r["expr"] for r in _rules())
    for documented in ('creditctl_events_consumed_total{outcome="dead_lettered"}',
                       "creditctl_consumer_stalled_partitions",
                       'creditctl_consumer_batch_failures_total{kind="infrastructure"}',
                       "max_over_time(creditctl_consumer_lag[10m]) > 10000",
                       "min_over_time(creditctl_outbox_backlog[10m])",
                       'creditctl_sms_total{status=~"dead_lettered|undeliverable"}',
                       'creditctl_chain_results_total{outcome=~"failed|timed_out"}',
                       'creditctl_decisions_total{decision="suspend"}',
                       "creditctl_http_request_duration_seconds_bucket",
                       'creditctl_http_requests_total{status=~"5.."}',
                       'creditctl_sweeps_unfinished{status="running"}',
                       'up{job="creditctl"}', 'creditctl_kpi{kpi="arrears_rate"}',
                       "creditctl_work_orders_overdue"):
        assert documented in exprs, f"no rule for {documented}"
    doc = (PROMETHEUS.parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    for rule in _rules():
        assert rule["alert"] in doc, f"{rule['alert']} is not in docs/operations.md"


def test_alertmanager_receives_the_alerts_and_every_port_is_loopback_only() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    targets = [t for am in config["alerting"]["alertmanagers"]
               for group in am["static_configs"] for t in group["targets"]]
    assert targets == ["alertmanager:9093"]
    services = load_config()["services"]
    manager = services["alertmanager"]
    assert ":" in manager["image"] and not manager["image"].endswith(":latest")
    mounted = " ".join(str(v) for v in manager.get("volumes", []))
    assert "alertmanager.yml" in mounted
    am = yaml.safe_load((PROMETHEUS.parent / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in am["receivers"]}
    routes = [am["route"], *am["route"].get("routes", [])]
    assert all(r["receiver"] in receivers for r in routes)
    for name, service in services.items():
        for port in service.get("ports", []):
            published = port if isinstance(port, dict) else {"host_ip": str(port)}
            host_ip = published.get("host_ip", "")
            assert host_ip == "127.0.0.1" or str(port).startswith("127.0.0.1:"), (name, port)


def test_a_stalled_consumer_is_alerted_on() -> None:
    stalled = [r for r in _rules() if "creditctl_consumer_stalled_partitions" in r["expr"]]
    assert [r["alert"] for r in stalled] == ["CreditctlConsumerStalled"]
