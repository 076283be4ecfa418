from pathlib import Path

from common.app import service_cli

from .bootstrap import bootstrap
from .cli import add_commands
from .config import Settings

app = service_cli(Settings, bootstrap, Path(__file__).parent / "adapters" / "migrations")
add_commands(app)

if __name__ == "__main__":
    app()
