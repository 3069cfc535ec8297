#!/usr/bin/env bash
# bindproxy benchmark: pgbench direct to PostgreSQL vs through bindproxy vs through pgbouncer, interleaved,
# plus point selects on a MariaDB bind (vs a direct MariaDB client) and on a SQLite bind. See bench/README.md.
#
#   bench/run.sh                      # defaults: -S cases 20 s each, TPC-B and MariaDB/SQLite cases 10 s each
#   BENCH_SECONDS=3 bench/run.sh      # quick mode (~2 minutes)
#
# Knobs: BENCH_SECONDS (default 20: each -S case), BENCH_TPCB_SECONDS (default BENCH_SECONDS/2: each TPC-B, MariaDB
# and SQLite case), BENCH_SCALE (pgbench scale, default 10), BENCH_CLIENTS ("1 16"), BENCH_MODES
# ("simple extended prepared"), BENCH_SCRIPTS ("select tpcb"), BENCH_SKIP ("pgbouncer mariadb sqlite": any of them),
# BINDPROXY_BIN (default target/release/bindproxy, built with cargo build --release), BENCH_OUT (also write the
# tables to this file).
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and MariaDB on 127.0.0.1:3306 (root, no password):
# scripts/test.sh sets both up. Installs pgbouncer from Debian's packages when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECS=${BENCH_SECONDS:-20}
TPCB_SECS=${BENCH_TPCB_SECONDS:-$(( SECS / 2 > 2 ? SECS / 2 : 2 ))}
SCALE=${BENCH_SCALE:-10}
CLIENTS=${BENCH_CLIENTS:-"1 16"}
MODES=${BENCH_MODES:-"simple extended prepared"}
SCRIPTS=${BENCH_SCRIPTS:-"select tpcb"}
SKIP=" ${BENCH_SKIP:-} "
# builtin: pgbench's -S / TPC-B scripts (pgbench then asks pg_catalog about pgbench_accounts first);
# files: the same scripts as -f files with -s SCALE (identical statements, no catalog query at start)
PGBENCH_SCRIPTS=${BENCH_PGBENCH_SCRIPTS:-builtin}
PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=postgres
MY_HOST=127.0.0.1 MY_PORT=3306 MY_USER=root
DB=bp_bench           # PostgreSQL database and MariaDB database used by the benchmark (recreated)
KV_ROWS=100000

log() { printf '==> %s\n' "$*" >&2; }
skipped() { [[ "$SKIP" == *" $1 "* ]]; }

WORK=$(mktemp -d /tmp/bindproxy-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
log "work dir (configs, logs): $WORK"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port PORT SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}
psql_direct() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"; }
my() { mariadb --protocol=tcp -h "$MY_HOST" -P "$MY_PORT" -u "$MY_USER" "$@"; }

# ------------------------------------------------------------------------------------------------- preparation
command -v pgbench >/dev/null || { echo "pgbench missing: run scripts/test.sh first" >&2; exit 1; }
pg_isready -q -h "$PG_HOST" -p "$PG_PORT" || { echo "PostgreSQL not up on $PG_HOST:$PG_PORT (scripts/test.sh starts it)" >&2; exit 1; }

if ! skipped pgbouncer && ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
    log "installing pgbouncer"
    SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends pgbouncer >/dev/null \
        || { "${SUDO[@]}" apt-get update -q >/dev/null && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -q --no-install-recommends pgbouncer >/dev/null; } \
        || log "could not install pgbouncer: its column will be n/a"
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)

BIN=${BINDPROXY_BIN:-}
if [ -z "$BIN" ]; then
    log "cargo build --release"
    if cargo build --release -q 2>"$WORK/cargo-build.log"; then
        BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bindproxy
    else
        log "release build failed (see $WORK/cargo-build.log): bindproxy columns will be n/a"
        BIN=/nonexistent
    fi
fi

log "PostgreSQL: database $DB, pgbench -i -s $SCALE"
psql_direct -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
pgbench -i -q -s "$SCALE" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$DB" >"$WORK/pgbench-init.log" 2>&1

# bindproxy (PostgreSQL binds only, so that this part runs whatever state the MySQL/SQLite support is in)
PROXY_PORT=$(free_port)
cat >"$WORK/bindproxy.yaml" <<EOF
listen: 127.0.0.1:$PROXY_PORT
default_bind: main
binds:
  main: postgresql://$PG_USER@$PG_HOST:$PG_PORT/postgres
  bench:
    url: postgresql://$PG_USER@$PG_HOST:$PG_PORT/$DB
    pool_size: 40
tables:
  "pgbench_*": bench
EOF
PROXY_OK=0
start_bindproxy() { # start_bindproxy CONFIG PORT LOG -> sets LAST_PID, returns 0 if it accepts
    [ -x "$BIN" ] || return 1
    RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$1" >"$3" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    wait_port "$2" 20 && kill -0 "$LAST_PID" 2>/dev/null
}
if start_bindproxy "$WORK/bindproxy.yaml" "$PROXY_PORT" "$WORK/bindproxy.log"; then
    PROXY_OK=1
    log "bindproxy $BIN on port $PROXY_PORT"
else
    log "bindproxy did not start (see $WORK/bindproxy.log): its column will be n/a"
fi

# pgbouncer, session pooling; it refuses to run as root, so run it as postgres then
BOUNCER_OK=0
BOUNCER_PORT=$(free_port)
if ! skipped pgbouncer && [ -x "$PGBOUNCER" ]; then
    cat >"$WORK/pgbouncer.ini" <<EOF
[databases]
$DB = host=$PG_HOST port=$PG_PORT dbname=$DB user=$PG_USER
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 40
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
ignore_startup_parameters = extra_float_digits,options
EOF
    printf '"%s" ""\n' "$PG_USER" >"$WORK/userlist.txt"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$WORK" "$WORK/pgbouncer.ini" "$WORK/userlist.txt"
        setpriv --reuid=postgres --regid=postgres --init-groups "$PGBOUNCER" "$WORK/pgbouncer.ini" \
            >"$WORK/pgbouncer.out" 2>&1 &
    else
        "$PGBOUNCER" "$WORK/pgbouncer.ini" >"$WORK/pgbouncer.out" 2>&1 &
    fi
    PIDS+=("$!")
    if wait_port "$BOUNCER_PORT" 10; then
        BOUNCER_OK=1
        log "pgbouncer on port $BOUNCER_PORT"
    else
        log "pgbouncer did not start (see $WORK/pgbouncer.out): its column will be n/a"
    fi
fi

# ---------------------------------------------------------------------------------------------------- pgbench
# run_pgbench PORT ARGS... -> prints "TPS LATENCY_MS" or "n/a n/a"
run_pgbench() {
    local port=$1; shift
    local out
    if out=$(pgbench -h 127.0.0.1 -p "$port" -U "$PG_USER" -n "$@" "$DB" 2>&1); then
        local tps lat
        tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n1)
        lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$out" | head -n1)
        echo "${tps:-n/a} ${lat:-n/a}"
    else
        printf '%s\n' "$out" >>"$WORK/pgbench-errors.log"
        echo "n/a n/a"
    fi
}
fmt_tps() { [ "$1" = n/a ] && echo n/a || printf '%.0f' "$1"; }
ratio() { if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; else awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f×", a/b}'; fi; }

cat >"$WORK/select-only.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
EOF
cat >"$WORK/tpcb-like.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
EOF
PG_TABLE="| case | direct TPS | direct lat ms | bindproxy TPS | bindproxy lat ms | pgbouncer TPS | pgbouncer lat ms | bindproxy/direct | pgbouncer/direct |
|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for script in $SCRIPTS; do
    for clients in $CLIENTS; do
        for mode in $MODES; do
            threads=1; [ "$clients" -ge 2 ] && threads=2
            if [ "$script" = select ]; then
                secs=$SECS; args=(-S); name="-S"
                [ "$PGBENCH_SCRIPTS" = files ] && args=(-f "$WORK/select-only.sql" -s "$SCALE")
            else
                secs=$TPCB_SECS; args=(); name="TPC-B"
                [ "$PGBENCH_SCRIPTS" = files ] && args=(-f "$WORK/tpcb-like.sql" -s "$SCALE")
            fi
            args+=(-M "$mode" -c "$clients" -j "$threads" -T "$secs")
            case="$name -M $mode -c $clients"
            prep() { [ "$script" = tpcb ] && psql_direct -d "$DB" -c "VACUUM pgbench_branches, pgbench_tellers" \
                -c "TRUNCATE pgbench_history" >/dev/null; true; }
            log "$case (${secs}s each): direct"
            prep; read -r d_tps d_lat < <(run_pgbench "$PG_PORT" "${args[@]}")
            p_tps=n/a p_lat=n/a b_tps=n/a b_lat=n/a
            if [ "$PROXY_OK" = 1 ]; then
                log "$case: bindproxy"
                prep; read -r p_tps p_lat < <(run_pgbench "$PROXY_PORT" "${args[@]}")
            fi
            if [ "$BOUNCER_OK" = 1 ]; then
                log "$case: pgbouncer"
                prep; read -r b_tps b_lat < <(run_pgbench "$BOUNCER_PORT" "${args[@]}")
            fi
            PG_TABLE+="
| $case | $(fmt_tps "$d_tps") | $d_lat | $(fmt_tps "$p_tps") | $p_lat | $(fmt_tps "$b_tps") | $b_lat | $(ratio "$p_tps" "$d_tps") | $(ratio "$b_tps" "$d_tps") |"
        done
    done
done

# ------------------------------------------------------------------------------------------- MariaDB and SQLite
# A second bindproxy with a MariaDB bind and a SQLite bind (kept apart so the PostgreSQL part never depends on it).
MIXED_OK=0
LITE_DB=$WORK/bench.db
if ! skipped mariadb || ! skipped sqlite; then
    log "MariaDB: database $DB, table kv_my ($KV_ROWS rows); SQLite: $LITE_DB, table kv_lite"
    my -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
    my -D "$DB" -e "CREATE TABLE kv_my (id int PRIMARY KEY, v varchar(100) NOT NULL);
                    INSERT INTO kv_my SELECT seq, concat('value-', seq) FROM seq_1_to_$KV_ROWS;"
    python3 - "$LITE_DB" "$KV_ROWS" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE kv_lite (id integer PRIMARY KEY, v text NOT NULL)")
c.executemany("INSERT INTO kv_lite VALUES (?, ?)", ((i, f"value-{i}") for i in range(1, int(sys.argv[2]) + 1)))
c.commit()
PY
    MIXED_PORT=$(free_port)
    cat >"$WORK/bindproxy-mixed.yaml" <<EOF
listen: 127.0.0.1:$MIXED_PORT
default_bind: main
binds:
  main: postgresql://$PG_USER@$PG_HOST:$PG_PORT/postgres
  my:
    url: mysql://$MY_USER@$MY_HOST:$MY_PORT/$DB
    pool_size: 40
  lite:
    url: sqlite:///$LITE_DB
    pool_size: 16
tables:
  kv_my: my
  kv_lite: lite
EOF
    if start_bindproxy "$WORK/bindproxy-mixed.yaml" "$MIXED_PORT" "$WORK/bindproxy-mixed.log"; then
        MIXED_OK=1
    else
        log "bindproxy with MariaDB/SQLite binds did not start (see $WORK/bindproxy-mixed.log)"
    fi
fi

printf '\\set id random(1, %d)\nSELECT v FROM kv_my WHERE id = :id;\n' "$KV_ROWS" >"$WORK/kv_my.sql"
printf '\\set id random(1, %d)\nSELECT v FROM kv_lite WHERE id = :id;\n' "$KV_ROWS" >"$WORK/kv_lite.sql"
# mariadb-slap cycles through a file of point selects on random keys (same distribution as pgbench's script).
python3 -c "
import random
random.seed(42)
print(''.join(f'SELECT v FROM kv_my WHERE id = {random.randint(1, $KV_ROWS)};\n' for _ in range(20000)), end='')
" >"$WORK/kv_my_slap.sql"

# slap CLIENTS QUERIES -> prints elapsed seconds
slap() {
    mariadb-slap --protocol=tcp -h "$MY_HOST" -P "$MY_PORT" -u "$MY_USER" --create-schema="$DB" --no-drop \
        --query="$WORK/kv_my_slap.sql" --delimiter=';' --concurrency="$1" --iterations=1 \
        --number-of-queries="$2" 2>>"$WORK/slap-errors.log" \
        | sed -n 's/.*Average number of seconds to run all queries: \([0-9.]*\).*/\1/p'
}
# run_slap CLIENTS SECONDS -> "QPS LATENCY_MS"; calibrates the query count so that the run lasts about SECONDS
run_slap() {
    local c=$1 secs=$2 n=$(( 4000 * $1 )) t qps
    t=$(slap "$c" "$n")
    [ -n "$t" ] || { echo "n/a n/a"; return; }
    n=$(awk -v n="$n" -v t="$t" -v s="$secs" -v c="$c" 'BEGIN{ x = n / (t > 0.01 ? t : 0.01) * s; x = int(x / c) * c; print (x < c ? c : x) }')
    t=$(slap "$c" "$n")
    [ -n "$t" ] || { echo "n/a n/a"; return; }
    qps=$(awk -v n="$n" -v t="$t" 'BEGIN{printf "%.1f", n / (t > 0.001 ? t : 0.001)}')
    echo "$qps $(awk -v q="$qps" -v c="$c" 'BEGIN{printf "%.3f", c / q * 1000}')"
}
run_pgbench_f() { # PORT SCRIPT MODE CLIENTS SECONDS
    local threads=1; [ "$4" -ge 2 ] && threads=2
    run_pgbench "$1" -f "$2" -M "$3" -c "$4" -j "$threads" -T "$5"
}

MY_TABLE="| case | direct MariaDB QPS (mariadb-slap, text protocol) | lat ms | bindproxy -M simple QPS | lat ms | bindproxy -M prepared QPS | lat ms | simple/direct | prepared/direct |
|---|---:|---:|---:|---:|---:|---:|---:|---:|"
LITE_TABLE="| case | bindproxy -M simple QPS | lat ms | bindproxy -M prepared QPS | lat ms |
|---|---:|---:|---:|---:|"
for clients in $CLIENTS; do
    if ! skipped mariadb; then
        log "MariaDB point select -c $clients (${TPCB_SECS}s each): direct, bindproxy simple, bindproxy prepared"
        read -r m_qps m_lat < <(run_slap "$clients" "$TPCB_SECS")
        s_tps=n/a s_lat=n/a r_tps=n/a r_lat=n/a
        if [ "$MIXED_OK" = 1 ]; then
            read -r s_tps s_lat < <(run_pgbench_f "$MIXED_PORT" "$WORK/kv_my.sql" simple "$clients" "$TPCB_SECS")
            read -r r_tps r_lat < <(run_pgbench_f "$MIXED_PORT" "$WORK/kv_my.sql" prepared "$clients" "$TPCB_SECS")
        fi
        MY_TABLE+="
| point select -c $clients | $(fmt_tps "$m_qps") | $m_lat | $(fmt_tps "$s_tps") | $s_lat | $(fmt_tps "$r_tps") | $r_lat | $(ratio "$s_tps" "$m_qps") | $(ratio "$r_tps" "$m_qps") |"
    fi
    if ! skipped sqlite; then
        log "SQLite point select -c $clients (${TPCB_SECS}s each): bindproxy simple, prepared"
        s_tps=n/a s_lat=n/a r_tps=n/a r_lat=n/a
        if [ "$MIXED_OK" = 1 ]; then
            read -r s_tps s_lat < <(run_pgbench_f "$MIXED_PORT" "$WORK/kv_lite.sql" simple "$clients" "$TPCB_SECS")
            read -r r_tps r_lat < <(run_pgbench_f "$MIXED_PORT" "$WORK/kv_lite.sql" prepared "$clients" "$TPCB_SECS")
        fi
        LITE_TABLE+="
| point select -c $clients | $(fmt_tps "$s_tps") | $s_lat | $(fmt_tps "$r_tps") | $r_lat |"
    fi
done

# ------------------------------------------------------------------------------------------------------ report
{
    echo
    echo "### PostgreSQL: pgbench ($PGBENCH_SCRIPTS scripts), scale $SCALE, -S ${SECS}s and TPC-B ${TPCB_SECS}s per run, $(nproc) cores, $(date -u +%Y-%m-%d)"
    echo
    echo "$PG_TABLE"
    if ! skipped mariadb; then
        echo
        echo "### MariaDB bind: point selects on $KV_ROWS rows, ${TPCB_SECS}s per run"
        echo
        echo "$MY_TABLE"
    fi
    if ! skipped sqlite; then
        echo
        echo "### SQLite bind (file, WAL): point selects on $KV_ROWS rows through bindproxy, ${TPCB_SECS}s per run"
        echo
        echo "$LITE_TABLE"
    fi
    echo
    echo "n/a: that target did not start or the run failed; logs in $WORK"
} | tee ${BENCH_OUT:+"$BENCH_OUT"}

my -e "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true
cleanup
trap - EXIT
psql_direct -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
