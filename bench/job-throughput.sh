#!/usr/bin/env bash
# An ingestion job end to end: a topic of JSON records (10 fields) on librdkafka's mock cluster (a separate
# process), consumed by `sluice outlet` with one job (decoder json, 10 mapped columns) into embedded chDB,
# with at-least-once commits (an offset is committed only once chDB has its batch).
# The topic is filled first (kcat, lz4); then sluice starts and the clock runs until the table holds
# every record. Prints records/s (wall) and records per CPU-second of the sluice process, which is the
# per-core figure (sluice's own threads: Kafka fetch, decode, mapping, and chDB's insert work).
#   bench/job-throughput.sh [BUILD_DIR]
#   env: RECORDS (2000000), PARTITIONS (4), PARALLELISM (1)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
RECORDS=${RECORDS:-2000000}
PARTITIONS=${PARTITIONS:-4}
PARALLELISM=${PARALLELISM:-1}
SLUICE="$BUILD_DIR/sluice"
MOCK="$BUILD_DIR/tests/sluice-mock-kafka"
for f in "$SLUICE" "$MOCK"; do
  [[ -x "$f" ]] || { echo "missing $f: cmake --build $BUILD_DIR --target sluice sluice-mock-kafka" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "kcat is not installed: scripts/setup.sh --test" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n "${KEEP:-}" ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
cpu_s() { [[ -r /proc/$1/stat ]] && sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }' || echo 0; }
now() { date +%s.%N; }

# The mock cluster keeps about 5 MB per partition; lz4 batches hold far more records than that raw.
coproc MOCKP { exec "$MOCK" --brokers 1 --topic "events:$PARTITIONS" --topic sluice-flows:1 --topic sluice-flow-templates:1; }
pids+=("$MOCKP_PID")
read -r -u "${MOCKP[0]}" word bootstrap
[[ "$word" == BOOTSTRAP ]] || { echo "mock cluster did not start" >&2; exit 1; }

python3 - "$tmp/input.jsonl" "$RECORDS" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
hosts = ["edge-%02d.example.net" % i for i in range(40)]
methods = ["GET", "POST", "PUT", "DELETE"]
with open(path, "w") as f:
    out = []
    for i in range(n):
        out.append('{"id":%d,"ts":%d,"host":"%s","method":"%s","path":"/api/v1/items/%d","status":%d,'
                   '"bytes":%d,"latency":%.3f,"user":"u%d","ok":%s}\n'
                   % (i, 1763700000000 + i, hosts[i % 40], methods[i % 4], i % 977, 200 + (i % 5) * 100,
                      i * 7 % 100000, (i % 1000) / 7.0, i % 5000, "true" if i % 9 else "false"))
        if len(out) == 50000:
            f.write("".join(out)); out = []
    f.write("".join(out))
PY
t0=$(now)
kcat -P -b "$bootstrap" -t events -z lz4 -X linger.ms=50 -X batch.num.messages=100000 -l "$tmp/input.jsonl"
echo "input: $RECORDS records ($(stat -c %s "$tmp/input.jsonl") bytes of JSON) produced by kcat in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"

admin=$(free_port)
mkdir -p "$tmp/sluice"
cat > "$tmp/sluice/sluice.yaml" <<YAML
data_dir: $tmp/sluice/data
admin: {listen: 127.0.0.1:$admin}
bus:
  kafka: {brokers: "$bootstrap", consumer_group: bench}
outlet:
  commit_interval: 1s
  chdb: {path: $tmp/sluice/data/chdb}
jobs:
  - name: events
    topic: events
    parallelism: $PARALLELISM
    decoder: {kind: json}
    batch: {max_rows: 200000, max_delay: 1s}
    mapping:
      table: events
      order_by: [host, ts]
      columns:
        - {name: id, type: UInt64}
        - {name: ts, type: DateTime64(3)}
        - {name: host, type: LowCardinality(String)}
        - {name: method, type: LowCardinality(String)}
        - {name: path, type: String}
        - {name: status, type: UInt16}
        - {name: bytes, type: UInt64}
        - {name: latency, type: Float64}
        - {name: user, type: String}
        - {name: ok, type: Bool}
YAML
t0=$(now)
"$SLUICE" outlet -c "$tmp/sluice/sluice.yaml" > "$tmp/sluice/sluice.log" 2>&1 &
spid=$!
pids+=("$spid")
count() { curl -sf --get "127.0.0.1:$admin/api/v0/query" --data-urlencode "sql=SELECT count() FROM sluice.events" 2>/dev/null || echo 0; }
got=0 prev=-1 stable=0
while :; do
  kill -0 "$spid" 2>/dev/null || { echo "sluice exited; log:" >&2; tail -20 "$tmp/sluice/sluice.log" >&2; exit 1; }
  got=$(count)
  got=${got:-0}
  (( got >= RECORDS )) && break
  if (( got == prev && got > 0 )); then stable=$((stable + 1)); else stable=0; fi
  (( stable >= 60 )) && { echo "stuck at $got of $RECORDS records; see $tmp (KEEP=1 keeps it)" >&2; break; }
  prev=$got
  sleep 0.5
done
secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
cpu=$(cpu_s "$spid")
distinct=$(curl -sf --get "127.0.0.1:$admin/api/v0/query" --data-urlencode "sql=SELECT uniqExact(id) FROM sluice.events")
echo "sluice job (json, 10 columns, parallelism $PARALLELISM) into chDB: $got rows ($distinct distinct ids) in $secs s (includes start-up)"
awk -v n="$got" -v s="$secs" -v c="$cpu" 'BEGIN {
  printf "  wall: %.0f records/s\n  cpu:  %.2f s  →  %.0f records per CPU-second (per core)\n", n / s, c, n / c }'
