"""The ``opchain`` command."""

from opchain.cli import health
from opchain.cli.app import app

app.command()(health.health)
app.command()(health.monitor)

__all__ = ["app"]
