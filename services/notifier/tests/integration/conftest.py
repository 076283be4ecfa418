"""Fixtures of the notifier's integration tests that run a notifier process of their own."""

from collections.abc import Iterator

import pytest

from common.testing.processes import ServiceProcesses


@pytest.fixture
def shared_notifier_paused(processes: ServiceProcesses) -> Iterator[None]:
    """The session's notifier (if the services fixture started one) consumes the same topic
    with its own settings: left running, it could write these messages first (held by its
    quiet hours, say) and this test would watch the wrong process. Pause it meanwhile."""
    was_running = processes.running("notifier")
    if was_running:
        processes.stop("notifier")
    yield
    if was_running:
        processes.start("notifier")
        processes.wait_ready("notifier")
