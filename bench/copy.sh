#!/usr/bin/env bash
# COPY FROM STDIN through bindproxy onto MariaDB and SQLite binds, against each engine's own bulk path
# (MariaDB: LOAD DATA LOCAL INFILE with the mariadb client; SQLite: sqlite3's .import) and PostgreSQL's
# own \copy as the reference. Prints rows/s for each.
#
#   bench/copy.sh                         # 1,000,000 rows, target/release/bindproxy
#   BENCH_ROWS=100000 BINDPROXY_BIN=target/debug/bindproxy bench/copy.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 (postgres, trust), MariaDB on 127.0.0.1:3306 (root, no password),
# psql, mariadb (or mysql) and sqlite3 clients.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${BENCH_ROWS:-1000000}
BIN=${BINDPROXY_BIN:-target/release/bindproxy}
DB=bp_bench_copy
MYSQL=$(command -v mariadb || command -v mysql)
log() { printf '==> %s\n' "$*" >&2; }
now() { date +%s.%N; }
rate() { python3 -c "import sys; r, t = int(sys.argv[1]), float(sys.argv[2]); print(f'{r/t:>12,.0f} rows/s  ({t:.2f} s)')" "$@"; }

WORK=$(mktemp -d /tmp/bindproxy-copy.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
"$MYSQL" -h 127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4"

COLS="id integer PRIMARY KEY, name text NOT NULL, amount numeric(10,2), created date"
DATA=$WORK/rows.tsv
log "generating $ROWS rows (PostgreSQL's COPY text format)"
psql -X -q -h 127.0.0.1 -U postgres -d "$DB" -c "\\copy (SELECT g, 'name ' || g || E'\\t' || md5(g::text), (g % 100000) / 7.0, date '2000-01-01' + g % 9000 FROM generate_series(1, $ROWS) g) TO '$DATA'"

cat > "$WORK/bench.yaml" <<YAML
listen: 127.0.0.1:$PORT
default_bind: main
binds:
  main: postgresql://postgres@127.0.0.1:5432/$DB
  my: mysql://root@127.0.0.1:3306/$DB
  lite: sqlite:///$WORK/lite.db
tables:
  "bc_my_*": my
  "bc_lite_*": lite
transactions:
  log_dir: $WORK/txlog
YAML
"$BIN" -c "$WORK/bench.yaml" >"$WORK/bindproxy.log" 2>&1 &
PID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
PROXY=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d bindproxy)

printf '%-44s %s\n' "case ($ROWS rows)" "throughput"
psql -X -q -h 127.0.0.1 -U postgres -d "$DB" -c "CREATE TABLE pg_direct ($COLS)"
t0=$(now); psql -X -q -h 127.0.0.1 -U postgres -d "$DB" -c "\\copy pg_direct FROM '$DATA'"; t1=$(now)
printf '%-44s %s\n' "PostgreSQL \\copy (direct)" "$(rate "$ROWS" "$(echo "$t1 - $t0" | bc)")"

for e in my lite; do
    "${PROXY[@]}" -c "CREATE TABLE bc_${e}_copy ($COLS)"
    t0=$(now); "${PROXY[@]}" -c "\\copy bc_${e}_copy FROM '$DATA'"; t1=$(now)
    n=$("${PROXY[@]}" -At -c "SELECT count(*) FROM bc_${e}_copy")
    [ "$n" = "$ROWS" ] || { echo "bc_${e}_copy has $n rows, expected $ROWS" >&2; exit 1; }
    printf '%-44s %s\n' "psql \\copy via bindproxy → $e" "$(rate "$ROWS" "$(echo "$t1 - $t0" | bc)")"
done

# The engines' own bulk paths, into tables bindproxy created the same way.
"${PROXY[@]}" -c "CREATE TABLE bc_my_native ($COLS)" -c "CREATE TABLE bc_lite_native ($COLS)"
t0=$(now)
"$MYSQL" --local-infile=1 -h 127.0.0.1 -uroot "$DB" -e "LOAD DATA LOCAL INFILE '$DATA' INTO TABLE bc_my_native FIELDS TERMINATED BY '\\t'"
t1=$(now)
printf '%-44s %s\n' "MariaDB LOAD DATA LOCAL INFILE (direct)" "$(rate "$ROWS" "$(echo "$t1 - $t0" | bc)")"
t0=$(now)
sqlite3 "$WORK/lite.db" ".mode tabs" ".import $DATA bc_lite_native"
t1=$(now)
printf '%-44s %s\n' "sqlite3 .import (direct)" "$(rate "$ROWS" "$(echo "$t1 - $t0" | bc)")"
