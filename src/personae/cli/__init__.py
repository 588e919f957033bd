"""The ``personae`` command line: a thin Typer adapter over the core services."""
