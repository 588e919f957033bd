#!/usr/bin/env bash
# Set up and run Personae on its embedded default: SQLite in the user's data
# directory, the sample personas loaded, the API on http://127.0.0.1:8000.
# Extra arguments go to `personae serve` (e.g. --port 9000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! [[ -x .venv/bin/python ]]; then
    "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[embedded]'
.venv/bin/personae init
exec .venv/bin/personae serve "$@"
