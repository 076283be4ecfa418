"""What the command modules share: `main_module()`, creditctl.main imported when a command
runs (main imports the command modules to register their apps, so they cannot import it at
their own import time)."""

from typing import Any


def main_module() -> Any:
    from . import main

    return main
