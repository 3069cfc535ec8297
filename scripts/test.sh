#!/usr/bin/env bash
# The whole bindproxy test suite, from a fresh Debian 12 machine or from one where everything is already set up.
#
#   ./scripts/test.sh
#
# 1. Installs, only when missing, from Debian's packages: PostgreSQL (server, contrib, client: psql, pgbench),
#    MariaDB (server, client), python3 + python3-venv, libclang-dev + clang (pg_query's build), a JDK and
#    libpostgresql-jdbc-java (pgjdbc), nodejs + npm (node-postgres, installed into tests/node by `npm ci`).
# 2. Starts PostgreSQL on 127.0.0.1:5432 (trust auth for local TCP, user postgres, max_prepared_transactions > 0
#    for two-phase commit, restarting it once if it must change) and MariaDB on
#    127.0.0.1:3306 (root, empty password) without systemd, and waits until both answer.
# 3. Creates/reuses the venv .venv with tests/python/requirements.txt (re-installed only when that file changes),
#    and tests/node/node_modules with `npm ci` (only when package-lock.json changes).
# 4. cargo build (debug, with the failpoints feature), cargo test, then .venv/bin/pytest -q tests/python against target/debug/bindproxy
#    (or $BINDPROXY_BIN).
# Exits non-zero if any step or any test fails. A missing backend is a failure, never a skip.
#
# Environment knobs (all optional):
#   BINDPROXY_BIN       binary the Python tests run (default: <target dir>/debug/bindproxy)
#   SKIP_SETUP=1        skip steps 1-2 (servers are yours to provide)
#   SETUP_ONLY=1        stop after step 2 (install and start PostgreSQL and MariaDB, e.g. before bench/run.sh)
#   SKIP_CARGO_TEST=1   skip `cargo test` (Python tests only)
#   PYTEST_ARGS         extra arguments for pytest (e.g. "-k cancel -x")
#   CARGO_TEST_TIMEOUT, PYTEST_TIMEOUT   seconds before a hung step is killed (default 1500 each);
#                       each Python test also fails after 120 s (tests/python/pytest.ini)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    SUDO=()   # not root and no sudo: installing/starting services will fail with a clear message
fi
as_root() { "${SUDO[@]}" "$@"; }
as_postgres() { # run a command as the OS user postgres (peer auth on the local socket)
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

PG_HOST=127.0.0.1
PG_PORT=5432
MY_HOST=127.0.0.1
MY_PORT=3306

# ---------------------------------------------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------------------------------------------
pg_server_bin() { ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n1; }

install_missing_packages() {
    local pkgs=()
    if [ -z "$(pg_server_bin)" ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
        pkgs+=(postgresql postgresql-contrib postgresql-client)
    fi
    if ! command -v psql >/dev/null 2>&1 || ! command -v pgbench >/dev/null 2>&1; then
        pkgs+=(postgresql-client postgresql-contrib)
    fi
    if [ ! -x /usr/sbin/mariadbd ] && [ ! -x /usr/sbin/mysqld ]; then
        pkgs+=(mariadb-server mariadb-client)
    fi
    if ! command -v mariadb >/dev/null 2>&1 && ! command -v mysql >/dev/null 2>&1; then
        pkgs+=(mariadb-client)
    fi
    # pg_query (PostgreSQL's parser, used for routing) generates its bindings with libclang
    if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
        pkgs+=(libclang-dev clang)
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        pkgs+=(python3 python3-venv)
    elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        pkgs+=(python3-venv)
    fi
    # clients of the catalog tests (tests/python/test_catalog.py): pgjdbc with a JDK, node-postgres with Node
    if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
        pkgs+=(default-jdk-headless)
    fi
    if [ ! -f /usr/share/java/postgresql.jar ]; then
        pkgs+=(libpostgresql-jdbc-java)
    fi
    if ! command -v node >/dev/null 2>&1; then
        pkgs+=(nodejs)
    fi
    if ! command -v npm >/dev/null 2>&1; then
        pkgs+=(npm)
    fi
    if [ "${#pkgs[@]}" -eq 0 ]; then
        log "packages: everything already installed"
        return
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing ${pkgs[*]} and no apt-get to install them"
    if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
        die "missing ${pkgs[*]}: run as root or with passwordless sudo"
    fi
    log "installing: ${pkgs[*]}"
    # C.UTF-8 so that the cluster Debian creates at install time is UTF8, not SQL_ASCII.
    as_root env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8 apt-get update -q \
        || log "apt-get update failed; trying to install from the current package lists"
    as_root env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8 \
        apt-get install -y -q --no-install-recommends "${pkgs[@]}"
}

# ---------------------------------------------------------------------------------------------------------------
# 2. Services
# ---------------------------------------------------------------------------------------------------------------
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local secs=$1 what=$2; shift 2
    local i
    for ((i = 0; i < secs * 4; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    return 1
}

pg_answers() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2; }
pg_login_ok() { psql -X -w -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; }

start_postgres() {
    if pg_answers; then
        log "postgresql: already answering on $PG_HOST:$PG_PORT"
    else
        # The cluster listening on 5432 (Debian gives the first cluster 5432); create one if there is none.
        local ver cluster
        read -r ver cluster < <(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print $1, $2; exit}') || true
        if [ -z "${ver:-}" ]; then
            ver=$(basename "$(dirname "$(dirname "$(pg_server_bin)")")")
            cluster=main
            if pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$ver/$cluster"; then
                die "cluster $ver/$cluster exists but does not use port $PG_PORT"
            fi
            log "postgresql: creating cluster $ver/$cluster on port $PG_PORT"
            as_root env LANG=C.UTF-8 LC_ALL=C.UTF-8 pg_createcluster --port "$PG_PORT" --locale C.UTF-8 "$ver" "$cluster"
        fi
        log "postgresql: starting cluster $ver/$cluster"
        as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start \
            || as_root pg_ctlcluster "$ver" "$cluster" start \
            || true
        wait_for 60 postgresql pg_answers || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT (see /var/log/postgresql/)"
    fi
    if ! pg_login_ok; then
        # A fresh Debian cluster asks for scram-sha-256 on TCP: put trust for loopback first in pg_hba.conf.
        local hba
        hba=$(as_postgres psql -X -Atq -p "$PG_PORT" -c 'show hba_file' 2>/dev/null) || true
        [ -n "$hba" ] || die "cannot find pg_hba.conf (is the local socket usable by user postgres?)"
        log "postgresql: enabling trust for 127.0.0.1 and ::1 in $hba"
        as_root cp "$hba" "$hba.bindproxy-orig"
        {
            printf '# added by bindproxy scripts/test.sh: trust for local TCP connections\n'
            printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'
            as_root cat "$hba.bindproxy-orig"
        } | as_root tee "$hba" >/dev/null
        as_postgres psql -X -Atq -p "$PG_PORT" -c 'select pg_reload_conf()' >/dev/null
        wait_for 10 "postgresql login" pg_login_ok || die "cannot log in as postgres on $PG_HOST:$PG_PORT"
    fi
    enable_prepared_transactions
}

# Two-phase commit across binds needs PREPARE TRANSACTION, which PostgreSQL refuses while
# max_prepared_transactions is 0 (its default). The setting only takes effect after a restart.
enable_prepared_transactions() {
    local n
    n=$(psql -X -w -Atq -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -c 'show max_prepared_transactions') \
        || die "cannot read max_prepared_transactions"
    if [ "$n" -gt 0 ]; then
        log "postgresql: max_prepared_transactions = $n"
        return
    fi
    log "postgresql: setting max_prepared_transactions = 64 and restarting (two-phase commit)"
    psql -X -w -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres \
        -c 'ALTER SYSTEM SET max_prepared_transactions = 64' || die "ALTER SYSTEM failed"
    local ver cluster
    read -r ver cluster < <(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print $1, $2; exit}') || true
    [ -n "${ver:-}" ] || die "no Debian cluster on port $PG_PORT to restart: set max_prepared_transactions > 0 yourself"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" restart \
        || as_root pg_ctlcluster "$ver" "$cluster" restart \
        || die "could not restart PostgreSQL cluster $ver/$cluster"
    wait_for 60 "postgresql login" pg_login_ok || die "PostgreSQL did not come back after the restart"
    n=$(psql -X -w -Atq -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -c 'show max_prepared_transactions')
    [ "$n" -gt 0 ] || die "max_prepared_transactions is still $n after the restart"
}

mysql_cli() { if command -v mariadb >/dev/null 2>&1; then mariadb "$@"; else mysql "$@"; fi; }
mysql_admin() { if command -v mariadb-admin >/dev/null 2>&1; then mariadb-admin "$@"; else mysqladmin "$@"; fi; }
# `ping` exits 0 whenever the server runs, even on "access denied".
my_answers() { mysql_admin --protocol=tcp -h "$MY_HOST" -P "$MY_PORT" -uroot --connect-timeout=2 ping; }
my_login_ok() { mysql_cli --protocol=tcp -h "$MY_HOST" -P "$MY_PORT" -uroot --connect-timeout=2 -e 'select 1'; }

start_mariadb() {
    if my_answers >/dev/null 2>&1; then
        log "mariadb: already answering on $MY_HOST:$MY_PORT"
    else
        local daemon=/usr/sbin/mariadbd
        [ -x "$daemon" ] || daemon=/usr/sbin/mysqld
        as_root install -d -o mysql -g mysql -m 0755 /run/mysqld
        if [ ! -d /var/lib/mysql/mysql ]; then
            log "mariadb: initialising /var/lib/mysql"
            as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
        fi
        log "mariadb: starting $daemon"
        # No systemd in containers: start the daemon directly, as user mysql, detached.
        as_root start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid \
            --exec "$daemon" -- --user=mysql
        wait_for 60 mariadb my_answers || die "MariaDB does not answer on $MY_HOST:$MY_PORT (see /var/lib/mysql/*.err, /var/log/mysql/)"
    fi
    if ! my_login_ok >/dev/null 2>&1; then
        # Fresh Debian install: root@localhost is unix_socket only. Let root in from loopback TCP with an empty
        # password, keeping socket auth for the system root.
        log "mariadb: allowing root with an empty password on loopback TCP"
        as_root "$(command -v mariadb || command -v mysql)" -uroot <<'SQL'
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
        wait_for 10 "mariadb login" my_login_ok || die "cannot log in to MariaDB as root with an empty password on $MY_HOST:$MY_PORT"
    fi
}

if [ "${SKIP_SETUP:-0}" != 1 ]; then
    install_missing_packages
    start_postgres
    start_mariadb
else
    log "SKIP_SETUP=1: not installing or starting anything"
fi
if [ "${SETUP_ONLY:-0}" = 1 ]; then
    log "SETUP_ONLY=1: PostgreSQL on $PG_HOST:$PG_PORT and MariaDB on $MY_HOST:$MY_PORT are up"
    exit 0
fi

# ---------------------------------------------------------------------------------------------------------------
# 3. Python venv
# ---------------------------------------------------------------------------------------------------------------
REQ=tests/python/requirements.txt
VENV=.venv
req_hash=$( (cat "$REQ"; python3 --version 2>&1) | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1 \
    && [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" = "$req_hash" ]; then
    log "venv: $VENV is up to date"
else
    log "venv: creating $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    "$VENV/bin/python" -m pip install -q -r "$REQ"
    echo "$req_hash" >"$VENV/.requirements.sha256"
fi

# node-postgres for the catalog tests (tests/node: package.json + package-lock.json)
if [ "$(cat tests/node/node_modules/.bindproxy-lock.sha256 2>/dev/null)" = "$(sha256sum <tests/node/package-lock.json)" ]; then
    log "npm: tests/node is up to date"
else
    log "npm ci (tests/node)"
    (cd tests/node && npm ci --no-audit --no-fund) || die "npm ci failed in tests/node"
    sha256sum <tests/node/package-lock.json >tests/node/node_modules/.bindproxy-lock.sha256
fi

# ---------------------------------------------------------------------------------------------------------------
# 4. Build and test
# ---------------------------------------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export BINDPROXY_BIN=${BINDPROXY_BIN:-$TARGET_DIR/debug/bindproxy}

# The tested binary has the crash points of the two-phase commit compiled in (tests/python/test_tx_crash.py);
# cargo test uses the same features, so nothing is built twice.
FEATURES=(--features failpoints)
log "cargo build ${FEATURES[*]}"
cargo build "${FEATURES[@]}" 2>&1 || die "cargo build failed"

failed=()
if [ "${SKIP_CARGO_TEST:-0}" != 1 ]; then
    log "cargo test"
    # a hung test must not eat CI's 90 minutes
    timeout --kill-after=30 "${CARGO_TEST_TIMEOUT:-1500}" cargo test "${FEATURES[@]}" 2>&1 || failed+=("cargo test")
fi

log "pytest tests/python (BINDPROXY_BIN=$BINDPROXY_BIN)"
# shellcheck disable=SC2086
timeout --kill-after=30 "${PYTEST_TIMEOUT:-1500}" "$VENV/bin/pytest" -q tests/python ${PYTEST_ARGS:-} \
    || failed+=("pytest")

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\ntest.sh: FAILED: %s\n' "${failed[*]}" >&2
    exit 1
fi
printf '\ntest.sh: all tests passed\n' >&2
