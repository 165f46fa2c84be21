#!/usr/bin/env bash
# Runs taillight's benchmark suite in full on a release build: ingest, tail,
# query and resource figures in the embedded and the Kafka/MariaDB/Redis
# modes, beside the machine's limits measured in the same run. Writes
# benches/results/latest.json and latest.md and the results section of
# BENCHMARKS.md. Sizes: TAILLIGHT_BENCH_* (see benches/suite/main.rs).
# Takes about half an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

. tests/setup.sh

step "benchmark suite (release build)"
cargo bench --locked --bench suite
