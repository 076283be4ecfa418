# TEMPORARY (dev only, delete before reporting): other services' migrations are mid-change.
from collections.abc import Iterator

import pytest

from common.testing.processes import ServiceProcesses


@pytest.fixture(scope="session")
def migrated(processes: ServiceProcesses) -> None:
    processes.migrate("billing-events")


@pytest.fixture(scope="session")
def services(processes: ServiceProcesses, migrated: None) -> Iterator[ServiceProcesses]:
    processes.start("billing-events")
    processes.wait_ready("billing-events")
    yield processes
    processes.stop_all()
