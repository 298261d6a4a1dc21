#!/usr/bin/env bash
# Spans end to end: OTLP/protobuf ExportTraceServiceRequests (100 spans each: 10 attributes, 1 event,
# resource attributes), encoded by protoc, on a topic of librdkafka's mock cluster (a separate process),
# consumed by `sluice outlet` with a spans job (decoder otlp-proto) into embedded chDB's `spans` table
# and its trace-id index, with at-least-once commits. Completion is counted by the rows the store
# acknowledged. The topic is filled first; the clock runs from the first message consumed until the
# table holds every span. Prints spans/s (wall) and spans per
# CPU-second of the sluice process (the per-core figure; chDB's insert and merge threads included).
#   bench/spans-throughput.sh [BUILD_DIR]
#   env: REQUESTS (100 distinct requests), REPEAT (50: each is put on the topic this many times), PARTITIONS (32),
#        COALESCE (true: the spans table is a ReplacingMergeTree, so the job can trade tokens for fewer parts)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
REQUESTS=${REQUESTS:-100}
REPEAT=${REPEAT:-50}
PARTITIONS=${PARTITIONS:-32}
SPANS_PER_REQUEST=100
SLUICE="$BUILD_DIR/sluice"
MOCK="$BUILD_DIR/tests/sluice-mock-kafka"
for f in "$SLUICE" "$MOCK"; do
  [[ -x "$f" ]] || { echo "missing $f: cmake --build $BUILD_DIR --target sluice sluice-mock-kafka" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "kcat is not installed: scripts/setup.sh --test" >&2; exit 1; }
command -v protoc >/dev/null || { echo "protoc is not installed: scripts/setup.sh --test" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  # Newest first: sluice stops while the mock cluster still answers its last commits.
  for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
  [[ -n "${KEEP:-}" ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
source bench/lib/throughput.sh  # the scripts run from the repository root (cd above)

coproc MOCKP { exec "$MOCK" --brokers 1 --topic "otlp:$PARTITIONS" --topic sluice-flows:1 --topic sluice-flow-templates:1; }
pids+=("$MOCKP_PID")
read -r -u "${MOCKP[0]}" word bootstrap
[[ "$word" == BOOTSTRAP ]] || { echo "mock cluster did not start" >&2; exit 1; }

# Text-format requests, one per file, each span with its own ids; protoc encodes them.
python3 - "$tmp" "$REQUESTS" "$SPANS_PER_REQUEST" <<'PY'
import sys
out, requests, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def b(n, width):
    return "".join("\\x%02x" % ((n >> (8 * (width - 1 - i))) & 0xff) for i in range(width))
for r in range(requests):
    parts = ['resource_spans { resource { attributes { key: "service.name" value { string_value: "svc-%d" } } '
             'attributes { key: "host.name" value { string_value: "node-%d" } } '
             'attributes { key: "process.pid" value { int_value: %d } } } scope_spans { scope { name: "bench" version: "1.0" }'
             % (r % 7, r % 13, 1000 + r)]
    for s in range(per):
        n = r * per + s
        start = 1763700000000000000 + n * 1000
        parts.append(
            ' spans { trace_id: "%s" span_id: "%s" parent_span_id: "%s" name: "GET /api/items/%d" kind: SPAN_KIND_SERVER'
            ' start_time_unix_nano: %d end_time_unix_nano: %d'
            ' attributes { key: "http.method" value { string_value: "GET" } }'
            ' attributes { key: "http.route" value { string_value: "/api/items/{id}" } }'
            ' attributes { key: "http.status_code" value { int_value: %d } }'
            ' attributes { key: "http.url" value { string_value: "https://shop.example.net/api/items/%d" } }'
            ' attributes { key: "net.peer.ip" value { string_value: "10.%d.%d.%d" } }'
            ' attributes { key: "user.id" value { string_value: "u%d" } }'
            ' attributes { key: "db.rows" value { int_value: %d } }'
            ' attributes { key: "cache.hit" value { bool_value: %s } }'
            ' attributes { key: "ratio" value { double_value: %f } }'
            ' attributes { key: "region" value { string_value: "eu-%d" } }'
            ' events { time_unix_nano: %d name: "cache.lookup" attributes { key: "key" value { string_value: "item:%d" } } }'
            ' status { code: STATUS_CODE_OK } }'
            % (b(n // 10 + 1, 16), b(n + 1, 8), b(n // 10 * 10 + 1, 8), n % 977, start, start + 250000 + n % 5000,
               200 + (n % 5) * 100, n % 977, n % 256, (n >> 8) % 256, n % 200, n % 5000, n % 100,
               "true" if n % 3 else "false", (n % 1000) / 1000.0, n % 4, start + 1000, n % 977))
    parts.append(' } }')
    open("%s/req-%04d.txt" % (out, r), "w").write("".join(parts))
PY
proto_dir=tests/fixtures/proto
files=()
for txt in "$tmp"/req-*.txt; do
  protoc --proto_path="$proto_dir" --encode=opentelemetry.proto.trace.v1.ExportTraceServiceRequest \
    "$proto_dir/otlp_trace.proto" < "$txt" > "${txt%.txt}.bin"
  for _ in $(seq "$REPEAT"); do files+=("${txt%.txt}.bin"); done
done
spans=$(( REQUESTS * REPEAT * SPANS_PER_REQUEST ))
kcat -P -b "$bootstrap" -t otlp -z zstd -X topic.partitioner=random -X linger.ms=100 "${files[@]}"
held=$(kcat -C -b "$bootstrap" -t otlp -e -q -f '\n' | wc -l)
echo "input: $(( REQUESTS * REPEAT )) requests of $SPANS_PER_REQUEST spans ($spans spans, $(stat -c %s "$tmp/req-0000.bin") bytes a request) on $PARTITIONS partitions; the topic holds $held requests"
(( held == REQUESTS * REPEAT )) || { echo "the mock cluster dropped requests: use more PARTITIONS or a smaller REPEAT" >&2; exit 1; }

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
  - name: otlp
    topic: otlp
    decoder: {kind: otlp-proto}
    batch: {max_rows: 200000, max_delay: 1s, coalesce: ${COALESCE:-true}}
YAML
"$SLUICE" outlet -c "$tmp/sluice/sluice.yaml" > "$tmp/sluice/sluice.log" 2>&1 &
spid=$!
pids+=("$spid")
# Rows the store acknowledged (sluice_sink_rows_total of the job's sink): the spans table is a
# ReplacingMergeTree, and the repeated requests carry the same span ids, so merges fold the copies.
count() { curl -sf "127.0.0.1:$admin/metrics" 2>/dev/null | awk '/^sluice_sink_rows_total\{sink="job-otlp-/ { s += $2 } END { printf "%d", s }'; }
for _ in $(seq 200); do curl -sf "127.0.0.1:$admin/api/v0/healthcheck" >/dev/null && break; sleep 0.05; done
wait_for_first_consumed "$admin"
t0=$(now)
read -r own0 store0 < <(cpu_split "$spid")
c0=$(cpu_s "$spid")
got=0 prev=-1 stable=0
while :; do
  kill -0 "$spid" 2>/dev/null || { echo "sluice exited; log:" >&2; tail -20 "$tmp/sluice/sluice.log" >&2; exit 1; }
  got=$(count)
  got=${got:-0}
  (( got >= spans )) && break
  if (( got == prev )); then stable=$((stable + 1)); else stable=0; fi
  (( stable >= 50 )) && { echo "stuck at $got of $spans spans; see $tmp (KEEP=1 keeps it)" >&2; break; }
  prev=$got
  sleep 0.2
done
secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
read -r own1 store1 < <(cpu_split "$spid")
cpu=$(awk -v a="$c0" -v b="$(cpu_s "$spid")" 'BEGIN { printf "%.2f", b - a }')
own=$(awk -v a="$own0" -v b="$own1" 'BEGIN { printf "%.2f", b - a }')
store=$(awk -v a="$store0" -v b="$store1" 'BEGIN { printf "%.2f", b - a }')
echo "sluice spans job (otlp-proto) into chDB: $got spans in $secs s"
awk -v n="$got" -v s="$secs" -v c="$cpu" 'BEGIN {
  printf "  wall: %.0f spans/s\n  cpu:  %.2f s  →  %.0f spans per CPU-second (per core)\n", n / s, c, n / c }'
awk -v n="$got" -v o="$own" -v st="$store" 'BEGIN {
  printf "        of which sluice and librdkafka threads %.2f s (%.0f spans per CPU-second), chDB threads %.2f s\n", o, n / o, st }'
