"""The ``volsurf`` command line: entry point in :mod:`volsurf.cli.main`, one module per command group."""

from volsurf.cli.main import cli, main

__all__ = ["cli", "main"]
