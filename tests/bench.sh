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

# The query store of the distributed mode holds 10M entries, about 7 GB in
# MariaDB: with the server's default 128 MiB buffer pool every search reads
# the disk. The run gives InnoDB 4 GiB (TAILLIGHT_BENCH_MARIADB_POOL bytes),
# as a machine of this size would, records it, and puts it back after.
mariadb_sql() { mariadb -h127.0.0.1 -uroot -N -e "$1"; }
pool_before=$(mariadb_sql 'SELECT @@innodb_buffer_pool_size')
trap 'mariadb_sql "SET GLOBAL innodb_buffer_pool_size = $pool_before"' EXIT
mariadb_sql "SET GLOBAL innodb_buffer_pool_size = ${TAILLIGHT_BENCH_MARIADB_POOL:-4294967296}"

step "benchmark suite (release build)"
cargo bench --locked --bench suite
