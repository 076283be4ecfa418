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


# --- Prometheus and Grafana --------------------------------------------------------------

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "creditctl.json"
# Every module that defines creditctl_* metrics: importing them registers them.
METRIC_MODULES = ("common.metrics", "credit_control.metrics", "notifier.metrics",
                  "gateway_adapter.metrics")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum"),
            "gauge": ("",), "summary": ("_count", "_sum")}


def registered_metric_names() -> set[str]:
    """The names a query can use: each family's samples as Prometheus stores them."""
    import importlib

    from prometheus_client import REGISTRY

    for module in METRIC_MODULES:
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(panel["title"], target["expr"])
            for panel in dashboard["panels"] for target in panel.get("targets", [])]


# Series Prometheus makes itself (per scrape target), with the labels it gives them.
BUILT_IN = {"up": {"job", "instance", "service"}}
# Labels every scraped series gets from prometheus.yml (job, instance, the target's service).
TARGET_LABELS = {"job", "instance", "service"}


def registered_metric_labels() -> dict[str, set[str]]:
    """Each exported sample name → the label names a selector may use on it."""
    from prometheus_client import REGISTRY

    registered_metric_names()  # imports the metric modules
    labels: dict[str, set[str]] = {n: set(ls) for n, ls in BUILT_IN.items()}
    for name, collector in REGISTRY._names_to_collectors.items():
        own = set(getattr(collector, "_labelnames", ()))
        extra = {"le"} if name.endswith("_bucket") else set()
        labels[name] = own | extra | TARGET_LABELS
    return labels


def check_query(where: str, expr: str) -> None:
    """Every metric the query names is exported (or one of Prometheus's own), and every label
    a selector filters on is one that metric has: a typo'd label matches nothing, silently."""
    import re

    known = registered_metric_labels()
    used = set(re.findall(r"\b(creditctl_[a-z_]+|up)\b(?=\s*[{\[)\s]|$)", expr))
    assert used, f"{where} queries no known metric: {expr}"
    unknown = used - known.keys()
    assert not unknown, f"{where}: unknown metric(s) {sorted(unknown)} in {expr}"
    for name, selector in re.findall(r"\b(creditctl_[a-z_]+|up)\{([^}]*)\}", expr):
        for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", selector):
            assert label in known[name], f"{where}: {name} has no label {label!r}: {expr}"


def test_every_dashboard_query_names_a_metric_the_services_export() -> None:
    queries = dashboard_queries()
    assert len(queries) >= 7
    for title, expr in queries:
        check_query(f"panel {title!r}", expr)


def test_the_query_check_catches_an_unknown_metric_or_label() -> None:
    with pytest.raises(AssertionError, match="unknown metric"):
        check_query("p", "sum(rate(creditctl_events_consumd_total[5m]))")
    with pytest.raises(AssertionError, match="no label 'parttion'"):
        check_query("p", 'max(creditctl_consumer_lag{parttion="1"})')
    check_query("p", 'max by (partition) (creditctl_consumer_lag{partition="1"})')


def test_the_dashboard_has_a_service_variable_an_up_panel_and_business_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "service"]
    assert variable["includeAll"] and "label_values(up" in variable["definition"]
    exprs = dict(dashboard_queries())
    by_title = {title: " ".join(e for t, e in dashboard_queries() if t == title)
                for title in exprs}
    assert any(e.startswith("up{") for e in by_title.values()), "no `up` panel"
    for metric in ('creditctl_kpi{kpi="arrears_rate"}', "creditctl_products",
                   "creditctl_work_orders_overdue", "creditctl_kpi_target"):
        assert any(metric in e for e in by_title.values()), f"no panel shows {metric}"
    # Per-service panels honour the variable (the business ones are credit-control's alone).
    for title, expr in by_title.items():
        if "creditctl_kpi" in expr or "creditctl_products" in expr or "work_orders" in expr:
            continue
        assert '$service' in expr, f"panel {title!r} ignores the service variable"
    lag = next(e for e in by_title.values() if "creditctl_consumer_lag" in e)
    assert "partition" in lag, "the lag panel hides the partition"


def test_the_dashboard_covers_what_operations_watch() -> None:
    exprs = " ".join(expr for _, expr in dashboard_queries())
    for metric in ("creditctl_events_consumed_total", "creditctl_consumer_lag",
                   "creditctl_decisions_total", "creditctl_sms_total",
                   "creditctl_chain_results_total", "creditctl_outbox_backlog",
                   "creditctl_http_request_duration_seconds_bucket"):
        assert metric in exprs, f"no panel shows {metric}"


def test_prometheus_scrapes_every_service_and_grafana_is_provisioned() -> None:
    yaml = pytest.importorskip("yaml")
    services = load_config()["services"]
    assert {"prometheus", "grafana"} <= services.keys()
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for group in job["static_configs"]
               for t in group["targets"]}
    for name in APP_SERVICES:
        env = services[name]["environment"]
        port = next(str(v) for k, v in env.items() if k.endswith("_HTTP_PORT"))
        assert f"{name}:{port}" in targets, f"Prometheus does not scrape {name}"
    mounts = " ".join(str(v) for v in services["grafana"].get("volumes", []))
    for folder in ("provisioning", "dashboards"):
        assert (DEPLOY / "grafana" / folder).is_dir()
        assert f"grafana/{folder}" in mounts, f"grafana does not mount deploy/grafana/{folder}"
    for image_of in ("prometheus", "grafana"):
        image = services[image_of]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{image_of} is not pinned"


def test_kafka_and_postgres_are_reachable_from_the_host_on_loopback_only() -> None:
    """Issue 20: tools on the host reach Kafka through a listener advertised with the
    published loopback port, and PostgreSQL through a loopback port."""
    services = load_config()["services"]

    def published(name: str) -> list[tuple[str, str, str]]:
        out = []
        for port in services[name].get("ports", []):
            if isinstance(port, dict):
                out.append((port.get("host_ip", ""), str(port["published"]),
                            str(port["target"])))
            else:  # Compose v1: "127.0.0.1:29092:29092"
                ip, host, target = str(port).split("/")[0].rsplit(":", 2)
                out.append((ip, host, target))
        return out

    [(ip, host, target)] = published("kafka")
    assert ip == "127.0.0.1" and target == "29092"
    env = services["kafka"]["environment"]
    assert "HOST://:29092" in env["KAFKA_LISTENERS"]
    assert f"HOST://127.0.0.1:{host}" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]  # the services'
    assert "HOST:PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    [(ip, _, target)] = published("postgres")
    assert ip == "127.0.0.1" and target == "5432"
