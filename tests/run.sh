#!/usr/bin/env bash
# Runs every check and test of taillight: formatting, clippy, unit and
# integration tests. Installs what the tests need when it is missing and is
# quick when everything is already there. Builds go to a cache outside the
# clone (CARGO_TARGET_DIR, default ~/.cache/taillight-target).
set -euo pipefail
cd "$(dirname "$0")/.."

. tests/setup.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo test"
# Fault and load tests each record a row for docs/RELIABILITY.md here.
rows="$CARGO_TARGET_DIR/tmp/reliability"
rm -rf "$rows"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --workspace --all-targets 2>&1 | tee "$log"
step "reliability table"
python3 tests/reliability_table.py "$rows" docs/RELIABILITY.md

# The browser viewer: its committed bundle must be what its sources build,
# and it is tested end to end in a real headless Chromium.
step "viewer bundle is up to date"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check && npm run --silent build)
if ! git diff --quiet -- web/dist; then
    git --no-pager diff --stat -- web/dist
    echo "web/dist is not what web/src builds: run 'cd web && npm run build' and commit it" >&2
    exit 1
fi

if ! [ -x /usr/bin/chromium ]; then
    step "installing chromium"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
step "viewer end-to-end tests (headless chromium)"
(cd web/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
(cd web/e2e && TAILLIGHT_BIN="$CARGO_TARGET_DIR/debug/taillight" node --test) 2>&1 | tee -a "$log"

# One closing line for the whole run, summed over every test binary and the
# browser tests.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
