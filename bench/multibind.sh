#!/usr/bin/env bash
# bindproxy benchmark: a TPC-B-like transaction that spans two PostgreSQL binds (issue 7), in cross_bind
# `sequential` and `two_phase` modes, against the same transaction on one bind. See bench/README.md.
#
#   bench/multibind.sh                                   # 10 s per case, 4 clients, -M simple
#   BENCH_SECONDS=30 BENCH_CLIENTS=16 bench/multibind.sh
#
# Knobs: BENCH_SECONDS (default 10: each case), BENCH_CLIENTS (default 4), BENCH_MODE (pgbench -M: simple,
# extended or prepared; default simple), BENCH_SCALE (pgbench scale, default 1), BINDPROXY_BIN (default
# target/release/bindproxy, built with cargo build --release), BENCH_OUT (also write the table to this file).
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) with max_prepared_transactions > 0 (scripts/test.sh
# sets it up); without it two_phase falls back to its last-resource rule and the figures mean something else.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECS=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-4}
MODE=${BENCH_MODE:-simple}
SCALE=${BENCH_SCALE:-1}
PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=postgres
DB_A=bp_mb_accounts   # pgbench -i: accounts, branches, tellers, history (the single-bind case uses only this one)
DB_H=bp_mb_history    # pgbench_history only (the second bind of the multi-bind cases)

log() { printf '==> %s\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/bindproxy-multibind.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
log "work dir (configs, logs, transaction logs): $WORK"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port PORT SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}
psql_direct() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"; }

# ------------------------------------------------------------------------------------------------- preparation
command -v pgbench >/dev/null || { echo "pgbench missing: run scripts/test.sh first" >&2; exit 1; }
pg_isready -q -h "$PG_HOST" -p "$PG_PORT" || { echo "PostgreSQL not up on $PG_HOST:$PG_PORT (scripts/test.sh starts it)" >&2; exit 1; }
MPX=$(psql_direct -d postgres -c "SHOW max_prepared_transactions")
[ "$MPX" -gt 0 ] || log "warning: max_prepared_transactions = 0 on PostgreSQL: two_phase cannot prepare there"

BIN=${BINDPROXY_BIN:-}
if [ -z "$BIN" ]; then
    log "cargo build --release"
    cargo build --release -q 2>"$WORK/cargo-build.log" || { log "release build failed: $WORK/cargo-build.log"; exit 1; }
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bindproxy
fi

log "PostgreSQL: $DB_A (pgbench -i -s $SCALE), $DB_H (pgbench_history only)"
for db in "$DB_A" "$DB_H"; do
    psql_direct -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done
pgbench -i -q -s "$SCALE" -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$DB_A" >"$WORK/pgbench-init.log" 2>&1
psql_direct -d "$DB_H" -c "CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp,
                                                        filler char(22))"

# The transaction: an account update and its history row, inside BEGIN/END. With the multi-bind map the UPDATE
# and SELECT run on bind `acc` and the INSERT on bind `hist`: two participants, committed together at END.
cat >"$WORK/multibind.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
EOF

# one bindproxy per case: start_case NAME CROSS_BIND HISTORY_BIND -> sets CASE_PORT
start_case() {
    local name=$1 cross=$2 hist=$3 port
    port=$(free_port)
    CASE_PORT=$port
    cat >"$WORK/$name.yaml" <<EOF
listen: 127.0.0.1:$port
default_bind: acc
binds:
  acc:
    url: postgresql://$PG_USER@$PG_HOST:$PG_PORT/$DB_A
    pool_size: $((CLIENTS + 4))
  hist:
    url: postgresql://$PG_USER@$PG_HOST:$PG_PORT/$DB_H
    pool_size: $((CLIENTS + 4))
tables:
  pgbench_accounts: acc
  pgbench_history: $hist
transactions:
  cross_bind: $cross
  log_dir: $WORK/$name-txlog
  instance_id: bench_$name
EOF
    RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$port" 20 || { log "bindproxy ($name) did not start: $WORK/$name.log"; exit 1; }
}
start_case single two_phase acc; PORT_SINGLE=$CASE_PORT
start_case sequential sequential hist; PORT_SEQ=$CASE_PORT
start_case two_phase two_phase hist; PORT_2PC=$CASE_PORT

# run_case PORT NAME -> "TPS LATENCY_MS TRANSACTIONS FAILED"
run_case() {
    local out threads=1
    [ "$CLIENTS" -ge 2 ] && threads=2
    if out=$(pgbench -h 127.0.0.1 -p "$1" -U "$PG_USER" -n -f "$WORK/multibind.sql" -s "$SCALE" -M "$MODE" \
        -c "$CLIENTS" -j "$threads" -T "$SECS" bindproxy 2>&1); then
        echo "$out" >"$WORK/pgbench-$2.log"
        local tps lat n
        tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n1)
        lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$out" | head -n1)
        n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out" | head -n1)
        echo "${tps:-n/a} ${lat:-n/a} ${n:-n/a}"
    else
        echo "$out" >"$WORK/pgbench-$2.log"
        log "pgbench through $2 failed: $WORK/pgbench-$2.log"
        echo "n/a n/a n/a"
    fi
}
# history rows a case left, on the database its map puts pgbench_history in
history_rows() { psql_direct -d "$1" -c "SELECT count(*) FROM pgbench_history"; }
reset() { for db in "$DB_A" "$DB_H"; do psql_direct -d "$db" -c "TRUNCATE pgbench_history"; done; }
prepared_left() { psql_direct -d postgres -c "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'bp\_bench\_%'"; }

fmt_tps() { [ "$1" = n/a ] && echo n/a || printf '%.0f' "$1"; }
ratio() { if [ "$1" = n/a ] || [ "$2" = n/a ]; then echo n/a; else awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f×", a/b}'; fi; }

log "single bind (${SECS}s, -c $CLIENTS, -M $MODE)"
reset; read -r s_tps s_lat s_n < <(run_case "$PORT_SINGLE" single); s_h=$(history_rows "$DB_A")
log "two binds, cross_bind: sequential"
reset; read -r q_tps q_lat q_n < <(run_case "$PORT_SEQ" sequential); q_h=$(history_rows "$DB_H")
log "two binds, cross_bind: two_phase"
reset; read -r t_tps t_lat t_n < <(run_case "$PORT_2PC" two_phase); t_h=$(history_rows "$DB_H")
left=$(prepared_left)

{
    echo
    echo "### One transaction over two PostgreSQL binds: pgbench -f multibind.sql -M $MODE -c $CLIENTS, ${SECS}s per case, scale $SCALE, $(nproc) cores, $(date -u +%Y-%m-%d)"
    echo
    echo "| case | TPS | avg latency ms | transactions | history rows | TPS vs single bind | latency vs single bind |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    echo "| single bind (both tables on acc) | $(fmt_tps "$s_tps") | $s_lat | $s_n | $s_h | 1.00× | 1.00× |"
    echo "| two binds, sequential | $(fmt_tps "$q_tps") | $q_lat | $q_n | $q_h | $(ratio "$q_tps" "$s_tps") | $(ratio "$q_lat" "$s_lat") |"
    echo "| two binds, two_phase | $(fmt_tps "$t_tps") | $t_lat | $t_n | $t_h | $(ratio "$t_tps" "$s_tps") | $(ratio "$t_lat" "$s_lat") |"
    echo
    echo "two_phase vs sequential: TPS $(ratio "$t_tps" "$q_tps"), latency $(ratio "$t_lat" "$q_lat"); prepared transactions left afterwards: $left"
    echo "bindproxy: $BIN; n/a: that case failed (logs in $WORK)"
} | tee ${BENCH_OUT:+"$BENCH_OUT"}

cleanup
trap - EXIT
for db in "$DB_A" "$DB_H"; do psql_direct -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
