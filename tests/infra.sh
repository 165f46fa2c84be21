#!/usr/bin/env bash
# Brings up, on this machine, the three services taillight's distributed mode
# uses, for trying it: a Kafka-protocol broker (tansu, in memory) on
# 127.0.0.1:9092, Redis on 127.0.0.1:6379 and MariaDB on 127.0.0.1:3306.
#
#   tests/infra.sh up     # start them (installs what is missing)
#   tests/infra.sh down   # stop the broker (Redis and MariaDB are left running)
set -euo pipefail

state=${XDG_RUNTIME_DIR:-/tmp}/taillight-infra
mkdir -p "$state"

up() {
    if ! command -v tansu >/dev/null 2>&1; then
        echo "installing tansu (once; takes a while)"
        cargo install tansu --version 0.6.0 --locked --features dynostore,libsql
    fi
    if ! command -v redis-server >/dev/null 2>&1 || ! [ -x /usr/sbin/mariadbd ]; then
        echo "installing redis and mariadb"
        apt-get update -q && apt-get install -y -q redis-server mariadb-server
    fi
    if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    fi
    if ! mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
        for _ in $(seq 1 60); do mariadb -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    mariadb -h127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1 ||
        mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket"
    if ! (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then
        nohup tansu broker --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092 \
            --storage-engine memory://tansu/ >"$state/tansu.log" 2>&1 &
        echo $! >"$state/tansu.pid"
        for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null && break; sleep 0.1; done
    fi
    cat <<'EOM'
Kafka (tansu) on 127.0.0.1:9092, Redis on 127.0.0.1:6379, MariaDB on 127.0.0.1:3306. Now:

  cargo run --release -- serve --kafka-brokers 127.0.0.1:9092 \
      --database-url mysql://root@127.0.0.1/taillight --redis-url redis://127.0.0.1
EOM
}

down() {
    if [ -f "$state/tansu.pid" ]; then
        kill "$(cat "$state/tansu.pid")" 2>/dev/null || true
        rm -f "$state/tansu.pid"
    fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
