#!/usr/bin/env bash
# bindproxy benchmark: two bindproxy binaries side by side (A/B) on the same PostgreSQL bind, with direct
# PostgreSQL as the reference, interleaved case by case so that drift of the machine hits them alike.
# For "this change must not make the single-bind hot path slower". See bench/README.md.
#
#   BINDPROXY_A=/path/to/old/bindproxy BINDPROXY_B=target/release/bindproxy bench/ab.sh
#
# Knobs: BENCH_SECONDS (default 15 per run), BENCH_ROUNDS (default 3: A and B alternate this many times per
# case; the median is reported), BENCH_SCALE (pgbench scale, default 10), BENCH_CASES (pgbench argument sets
# separated by ';'), BENCH_OUT (also write the table here), BENCH_URL_QUERY (appended to the bind URL, e.g.
# '?sslmode=disable': the default sslmode is prefer, so a server with ssl=on is reached over TLS).
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust): scripts/test.sh sets it up.
set -euo pipefail
cd "$(dirname "$0")/.."

A=${BINDPROXY_A:?set BINDPROXY_A to the baseline binary}
B=${BINDPROXY_B:-target/release/bindproxy}
SECS=${BENCH_SECONDS:-15}
ROUNDS=${BENCH_ROUNDS:-3}
SCALE=${BENCH_SCALE:-10}
DB=bp_bench_ab
log() { printf '==> %s\n' "$*" >&2; }

WORK=$(mktemp -d /tmp/bindproxy-ab.XXXXXX)
PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
log "pgbench -i -s $SCALE"
pgbench -q -i -s "$SCALE" -h 127.0.0.1 -U postgres "$DB" >/dev/null 2>&1

start() { # start NAME BINARY -> prints port
    local port; port=$(free_port)
    cat >"$WORK/$1.yaml" <<YAML
listen: 127.0.0.1:$port
default_bind: bench
binds:
  bench:
    url: postgresql://postgres@127.0.0.1:5432/$DB${BENCH_URL_QUERY:-}
    pool_size: 40
transactions:
  log_dir: $WORK/$1-txlog
  instance_id: ab$1
YAML
    # a baseline older than the `transactions:` key gets the file without it
    local checked
    checked=$("$2" --config "$WORK/$1.yaml" check 2>&1 || true)
    if [[ $checked == *"unknown field \`transactions\`"* ]]; then
        sed -i '/^transactions:/,$d' "$WORK/$1.yaml"
    fi
    BINDPROXY_LOG=warn "$2" --config "$WORK/$1.yaml" >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    wait_port "$port" 30 || { log "$1 did not start: $WORK/$1.log"; exit 1; }
    echo "$port"
}
PORT_A=$(start a "$A")
PORT_B=$(start b "$B")

tps() { # tps PORT ARGS... -> TPS
    pgbench -n -h 127.0.0.1 -p "$1" -U postgres -T "$SECS" "${@:2}" "$DB" 2>/dev/null \
        | awk '/^tps/ {print int($3); exit}'
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

out="| case | direct | A (baseline) | B | B/A | B/direct |\n|---|---|---|---|---|---|\n"
# BENCH_CASES: pgbench argument sets separated by ';' (default: the five below)
IFS=';' read -ra CASES <<<"${BENCH_CASES:--S -M simple -c 16 -j 2;-S -M prepared -c 16 -j 2;-S -M simple -c 1;-M simple -c 4 -j 2;-M prepared -c 4 -j 2}"
for spec in "${CASES[@]}"; do
    read -ra args <<<"$spec"
    d=(); a=(); b=()
    for ((r = 0; r < ROUNDS; r++)); do
        if [[ " $spec " != *" -S "* ]]; then
            psql -X -q -h 127.0.0.1 -U postgres -d "$DB" -c "TRUNCATE pgbench_history" -c "VACUUM pgbench_branches, pgbench_tellers"
        fi
        d+=("$(tps 5432 "${args[@]}")")
        a+=("$(tps "$PORT_A" "${args[@]}")")
        b+=("$(tps "$PORT_B" "${args[@]}")")
    done
    md=$(median "${d[@]}"); ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
    name=$([[ " $spec " == *" -S "* ]] && echo "pgbench $spec" || echo "TPC-B $spec")
    line=$(awk -v n="$name" -v d="$md" -v a="$ma" -v b="$mb" 'BEGIN {printf "| %s | %d | %d | %d | %.2f | %.2f |", n, d, a, b, (a ? b / a : 0), (d ? b / d : 0)}')
    log "$line   (runs: direct ${d[*]}; A ${a[*]}; B ${b[*]})"
    out+="$line\n"
done
printf '\n%b' "$out"
[ -z "${BENCH_OUT:-}" ] || printf '%b' "$out" >"$BENCH_OUT"
psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
