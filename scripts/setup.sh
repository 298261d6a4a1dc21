#!/usr/bin/env bash
# Installs everything sluice needs to build, run and test on Debian. Idempotent; quick when all is present.
#   scripts/setup.sh          build + runtime packages and the embedded store (chDB)
#   scripts/setup.sh --test   also the real peers the tests start (ClickHouse server, softflowd, tshark, kcat, ...)
set -euo pipefail

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

build_pkgs=(cmake g++ make ccache pkg-config
  librdkafka-dev libsimdjson-dev nlohmann-json3-dev libyaml-cpp-dev libcpp-httplib-dev libcli11-dev
  libspdlog-dev libfmt-dev liblz4-dev libzstd-dev libxxhash-dev libmaxminddb-dev zlib1g-dev libssl-dev libsnmp-dev libpcre2-dev libavro-dev
  libgtest-dev libbenchmark-dev)
test_pkgs=(clickhouse-server clickhouse-client softflowd tshark kcat python3-scapy tcpdump carbon-c-relay pmacct clang
  libclang-rt-14-dev curl procps
  snmpd snmp libmaxmind-db-writer-perl golang-go graphite-carbon
  etcd-server etcd-client logrotate rsyslog rsyslog-kafka
  protobuf-compiler python3-avro avro-bin)

pkgs=("${build_pkgs[@]}")
# chDB comes from the npm registry: Debian's npm only when no npm is installed (images that ship
# their own Node.js conflict with Debian's npm package).
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
(( want_test )) && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  # tshark asks whether non-root users may capture; the answer does not matter for sluice.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Embedded ClickHouse: chDB ships libchdb.so in an npm package. sluice dlopens it only when the
# embedded store is configured; this is the path it looks at first.
CHDB_VERSION=26.5.3
CHDB_DIR=/opt/sluice-deps/chdb
CHDB_LIB="$CHDB_DIR/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so"
if [[ ! -f "$CHDB_DIR/.version-$CHDB_VERSION" || ! -f "$CHDB_LIB" ]]; then
  echo "setup: installing chDB $CHDB_VERSION (libchdb.so) into $CHDB_DIR"
  mkdir -p "$CHDB_DIR"
  (cd "$CHDB_DIR" && npm install --no-audit --no-fund --silent "@chdb/lib-linux-x64-gnu@$CHDB_VERSION")
  touch "$CHDB_DIR/.version-$CHDB_VERSION"
fi
ln -sf "$CHDB_LIB" /usr/local/lib/libchdb.so

# Traces: the OpenTelemetry JS SDK and its OTLP/HTTP exporters (JSON and protobuf) for the span tests,
# from the npm registry; reinstalled only when tests/fixtures/otel/package.json changes.
if (( want_test )); then
  OTEL_DIR=/opt/sluice-deps/otel-js
  OTEL_PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/fixtures/otel/package.json"
  OTEL_STAMP="$OTEL_DIR/.stamp-$(sha256sum "$OTEL_PKG" | cut -c1-16)"
  if [[ ! -f "$OTEL_STAMP" || ! -d "$OTEL_DIR/node_modules/@opentelemetry/sdk-trace-base" ]]; then
    echo "setup: installing the OpenTelemetry JS SDK into $OTEL_DIR"
    mkdir -p "$OTEL_DIR"
    rm -f "$OTEL_DIR"/.stamp-*
    cp "$OTEL_PKG" "$OTEL_DIR/package.json"
    (cd "$OTEL_DIR" && npm install --no-audit --no-fund --silent)
    touch "$OTEL_STAMP"
  fi
fi
