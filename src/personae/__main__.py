"""``python -m personae``: the same CLI as the ``personae`` command."""

from personae.cli.main import run

run()
