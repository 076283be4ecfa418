"""deploy/prometheus: the alert rules are loaded (prometheus.yml's rule_files, mounted in
compose), and every rule queries a metric the services really export, so an alert cannot
silently watch nothing (issue 14: a stalled consumer must page someone)."""

import re
from pathlib import Path

import pytest

from tests.deploy.test_compose import registered_metric_names

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
    exported = registered_metric_names()
    for rule in _rules():
        names = set(re.findall(r"\bcreditctl_[a-z_]+", rule["expr"]))
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)


def test_a_stalled_consumer_is_alerted_on() -> None:
    stalled = [r for r in _rules() if "creditctl_consumer_stalled_partitions" in r["expr"]]
    assert [r["alert"] for r in stalled] == ["CreditctlConsumerStalled"]
