"""Start the services as real processes (uvicorn, consumers, relay), kill and restart them."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .stack import Stack


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # billing-events
    module: str  # billing_events
    env_prefix: str  # BILLING_
    port: int
    extra_env: tuple[tuple[str, str], ...] = ()  # e.g. where to find another service

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# The launcher's switch for simulation mode (business time ahead of the clock): set, it turns
# `<PREFIX>SIMULATION_MODE` on in every service started; the test suite sets it (its months
# are in year 2200 and later), `make demo` too. Off by default, as in production.
SIMULATION_ENV = "CREDITCTL_SIMULATION_MODE"


def simulation_from_env() -> bool:
    return os.environ.get(SIMULATION_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on the port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ServiceProcesses:
    def __init__(
        self, specs: list[ServiceSpec], stack: Stack, log_dir: Path, token: str,
        detach: bool = False, staff_tokens: dict[str, tuple[str, str]] | None = None,
        simulation_mode: bool | None = None,
    ) -> None:
        self.specs = {s.name: s for s in specs}
        # None: as CREDITCTL_SIMULATION_MODE says; a test proving the refusal passes False.
        self._simulation = simulation_from_env() if simulation_mode is None else simulation_mode
        self._stack = stack
        self._log_dir = log_dir
        self._token = token
        # token -> (subject, role): staff callers accepted besides the service token
        self._staff = {t: {"subject": s, "role": r} for t, (s, r) in (staff_tokens or {}).items()}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._detach = detach  # own session: the services outlive the launcher
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def log_dir(self) -> Path:
        """Where each service's stdout and stderr go (`<name>.log`, appended)."""
        return self._log_dir

    def env_for(self, spec: ServiceSpec) -> dict[str, str]:
        p = spec.env_prefix
        return {
            **os.environ,
            f"{p}DATABASE_URL": self._stack.database_url,
            f"{p}KAFKA_BOOTSTRAP": self._stack.kafka_bootstrap,
            f"{p}HTTP_PORT": str(spec.port),
            f"{p}API_TOKEN": self._token,
            f"{p}API_TOKENS": json.dumps(self._staff),
            f"{p}CONSUMER_POLL_MS": "50",
            f"{p}SIMULATION_MODE": "true" if self._simulation else "false",
            **dict(spec.extra_env),
        }

    def migrate(self, name: str) -> None:
        spec = self.specs[name]
        subprocess.run([sys.executable, "-m", spec.module, "migrate"], env=self.env_for(spec),
                       check=True, capture_output=True)

    def start(self, name: str) -> None:
        spec = self.specs[name]
        # A service still on the port (left by a killed earlier run: services run in their
        # own session) would answer /readyz for the new one, which then dies unseen (uvicorn's
        # exit 3): the tests would run against the old process and the old code.
        if port_in_use(spec.port):
            raise RuntimeError(
                f"port {spec.port} for {name} is already in use (a service left running by an "
                f"earlier test run? `ss -ltnp 'sport = :{spec.port}'` names it)")
        log = (self._log_dir / f"{name}.log").open("ab")
        self._procs[name] = subprocess.Popen(
            [sys.executable, "-m", spec.module, "serve"], env=self.env_for(spec),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=self._detach,
        )

    def start_all(self) -> None:
        try:
            for name in self.specs:
                self.start(name)
            for name in self.specs:
                self.wait_ready(name)
        except BaseException:
            self.stop_all()  # a half-started set must not outlive the run
            raise

    def wait_ready(self, name: str, timeout: float = 90.0) -> None:
        # A machine shared by many test runs can take longer to start four Pythons:
        # CREDITCTL_READY_TIMEOUT_S raises the floor (never lowers a caller's timeout).
        timeout = max(timeout, float(os.environ.get("CREDITCTL_READY_TIMEOUT_S", "0") or 0))
        spec = self.specs[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self._procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self._log_dir}")
            try:
                if httpx.get(f"{spec.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{name} not ready after {timeout}s; see {self._log_dir}")

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self._procs.items()}

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hooks, no flush, no offset commit: a real crash."""
        proc = self._procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, name: str) -> None:
        """SIGTERM and wait: a clean shutdown of one service."""
        proc = self._procs.pop(name)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

    def running(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.poll() is None

    def stop_all(self) -> None:
        for proc in self._procs.values():
            proc.terminate()
        for proc in self._procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._procs.clear()
