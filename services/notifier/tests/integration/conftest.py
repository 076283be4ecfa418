"""notifier's integration tests need only their own schema (and billing's, for `test_year`):
migrating just those keeps them independent of the other services' migrations."""

import pytest

from common.testing.processes import ServiceProcesses


@pytest.fixture(scope="session")
def migrated(processes: ServiceProcesses) -> None:
    for name in ("billing-events", "notifier"):
        processes.migrate(name)
