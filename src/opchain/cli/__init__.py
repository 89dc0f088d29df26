"""The ``opchain`` command."""

from opchain.cli.app import app

__all__ = ["app"]
