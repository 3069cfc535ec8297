#!/usr/bin/env bash
# Builds (release) and runs bindproxy, installing what the build needs when it is missing.
#
#   ./scripts/run.sh                                  # the embedded default configuration
#   ./scripts/run.sh --config config.example.yaml     # any bindproxy arguments
#
# The build needs a C compiler and libclang (the pg_query crate compiles PostgreSQL's parser and
# generates its bindings with libclang). On Debian/Ubuntu they are installed from the distribution's
# packages when missing (root or passwordless sudo needed for that); elsewhere, install clang and
# libclang yourself and run `cargo run --release -- …`.
set -euo pipefail
cd "$(dirname "$0")/.."

have_libclang() {
    ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* /usr/lib/*/libclang*.so* \
        >/dev/null 2>&1
}

if ! have_libclang || ! command -v cc >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=()
        [ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
        echo "run.sh: installing the build's needs: gcc, clang, libclang-dev" >&2
        "${SUDO[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq gcc clang libclang-dev >/dev/null
    else
        echo "run.sh: libclang and a C compiler are needed to build bindproxy; install clang and libclang" >&2
        exit 1
    fi
fi
exec cargo run --release -- "$@"
