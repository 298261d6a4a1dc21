#!/usr/bin/env bash
# An ingestion job end to end: a topic of JSON records (10 fields) on librdkafka's mock cluster (a separate
# process), consumed by `sluice outlet` with one job (decoder json, 10 mapped columns) into embedded chDB,
# with at-least-once commits (an offset is committed only once chDB has its batch).
# The topic is filled first (kcat, zstd); then sluice starts and the clock runs until the table holds
# every record. Prints records/s (wall) and records per CPU-second of the sluice process, which is the
# per-core figure (sluice's own threads: Kafka fetch, decode, mapping, and chDB's insert work).
#   bench/job-throughput.sh [BUILD_DIR]
#   env: RECORDS (1000000), PARTITIONS (32), PARALLELISM (1), COMPRESSION of the topic (zstd; lz4, snappy,
#        gzip, none), MAX_ROWS, MAX_DELAY, COALESCE (the job's batch policy),
#        MAX_PENDING_BYTES (outlet.sink.max_pending_bytes, 512MiB), RUNS (1: more measure the same topic again,
#        each with a fresh instance, group and store, and print the medians),
#        COMPARE=OTHER_BUILD_DIR alternates that build's sluice with this one's on the same topic, run
#        after run, and prints both medians and their ratio (this machine's speed drifts by a third over
#        hours: only runs taken in turn compare),
#        PEER=1 alternates ClickHouse's own Kafka engine (a Kafka table and a materialized view into the
#        same MergeTree table, in embedded chDB of the same version, one consumer, flushed every MAX_DELAY)
#        with sluice on the same topic, run after run, and prints both medians and their ratio,
#        THREADS=1 prints CPU by thread name, CONSUMER_PROPERTIES (librdkafka properties of the consumer, as YAML: "fetch.max.bytes: 1048576"), PERF=1 records a profile
#        (PERF_CALLGRAPH=dwarf for one without frame pointers, PERF_EVENT=page-faults for where fresh memory is
#        touched; KEEP=1 keeps it)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
RECORDS=${RECORDS:-1000000}
PARTITIONS=${PARTITIONS:-32}
PARALLELISM=${PARALLELISM:-1}
SLUICE="$BUILD_DIR/sluice"
MOCK="$BUILD_DIR/tests/sluice-mock-kafka"
PEER_TOOL="$BUILD_DIR/bench/chdb_kafka_engine"
for f in "$SLUICE" "$MOCK" ${COMPARE:+"$COMPARE/sluice"} ${PEER:+"$PEER_TOOL"}; do
  [[ -x "$f" ]] || { echo "missing $f: cmake --build $BUILD_DIR --target sluice sluice-mock-kafka chdb_kafka_engine" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "kcat is not installed: scripts/setup.sh --test" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  # Newest first: sluice stops while the mock cluster still answers its last commits.
  for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
  [[ -n "${KEEP:-}" ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
source bench/lib/throughput.sh  # the scripts run from the repository root (cd above)

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
        out.append('%d\t{"id":%d,"ts":%d,"host":"%s","method":"%s","path":"/api/v1/items/%d","status":%d,'
                   '"bytes":%d,"latency":%.3f,"user":"u%d","ok":%s}\n'
                   % (i, i, 1763700000000 + i, hosts[i % 40], methods[i % 4], i % 977, 200 + (i % 5) * 100,
                      i * 7 % 100000, (i % 1000) / 7.0, i % 5000, "true" if i % 9 else "false"))
        if len(out) == 50000:
            f.write("".join(out)); out = []
    f.write("".join(out))
PY
# The mock cluster keeps only about 5 MB (compressed) per partition: with less compression than zstd's,
# use more PARTITIONS for more RECORDS. Keyed by id, so that the records spread evenly over the partitions.
kcat -P -b "$bootstrap" -t events -K $'\t' -z "${COMPRESSION:-zstd}" -X linger.ms=100 -X batch.num.messages=100000 -X batch.size=4000000 \
  -l "$tmp/input.jsonl"
held=$(kcat -C -b "$bootstrap" -t events -e -q -f '\n' | wc -l)
echo "input: $RECORDS records ($(stat -c %s "$tmp/input.jsonl") bytes of keys and JSON) on $PARTITIONS partitions (${COMPRESSION:-zstd}); the topic holds $held"
(( held == RECORDS )) || { echo "the mock cluster dropped records: use more PARTITIONS or fewer RECORDS" >&2; exit 1; }

# One measured run on the topic filled above: a fresh instance, consumer group and store.
run_once() {
  local run=$1
admin=$(free_port)
mkdir -p "$tmp/sluice-$run"
cat > "$tmp/sluice-$run/sluice.yaml" <<YAML
data_dir: $tmp/sluice-$run/data
admin: {listen: 127.0.0.1:$admin}
bus:
  kafka: {brokers: "$bootstrap", consumer_group: bench, consumer_properties: {${CONSUMER_PROPERTIES:-}}}
outlet:
  commit_interval: 1s
  chdb: {path: $tmp/sluice-$run/data/chdb}
  sink: {max_pending_bytes: ${MAX_PENDING_BYTES:-512MiB}}
jobs:
  - name: events
    topic: events
    group: bench-events-$run
    parallelism: $PARALLELISM
    decoder: {kind: json}
    batch: {max_rows: ${MAX_ROWS:-200000}, max_delay: ${MAX_DELAY:-1s}, coalesce: ${COALESCE:-true}}
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
"$SLUICE" outlet -c "$tmp/sluice-$run/sluice.yaml" > "$tmp/sluice-$run/sluice.log" 2>&1 &
spid=$!
pids+=("$spid")
if [[ -n "${PERF:-}" ]]; then perf record -e "${PERF_EVENT:-cycles}" --call-graph "${PERF_CALLGRAPH:-fp}" -o "$tmp/perf-$run.data" -p "$spid" > /dev/null 2>&1 & pids+=($!); fi
# Rows the store acknowledged (sluice_sink_rows_total of the job's sinks): cheaper than asking chDB,
# whose work would count against sluice's CPU; the table is checked at the end.
count() { curl -sf "127.0.0.1:$admin/metrics" 2>/dev/null | awk '/^sluice_sink_rows_total\{sink="job-events-/ { s += $2 } END { printf "%d", s }'; }
for _ in $(seq 200); do curl -sf "127.0.0.1:$admin/api/v0/healthcheck" >/dev/null && break; sleep 0.05; done
wait_for_first_consumed "$admin"
t0=$(now)
read -r own0 store0 < <(cpu_split "$spid")
c0=$(cpu_s "$spid")
f0=$(minflt "$spid")
got=0 prev=-1 stable=0
while :; do
  kill -0 "$spid" 2>/dev/null || { echo "sluice exited; log:" >&2; tail -20 "$tmp/sluice-$run/sluice.log" >&2; exit 1; }
  got=$(count)
  got=${got:-0}
  (( got >= RECORDS )) && break
  if (( got == prev )); then stable=$((stable + 1)); else stable=0; fi
  (( stable >= 50 )) && { echo "stuck at $got of $RECORDS records; see $tmp (KEEP=1 keeps it)" >&2; break; }
  prev=$got
  sleep 0.2
done
secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
read -r own1 store1 < <(cpu_split "$spid")
cpu=$(awk -v a="$c0" -v b="$(cpu_s "$spid")" 'BEGIN { printf "%.2f", b - a }')
faults=$(( $(minflt "$spid") - f0 ))
# Read now: the check of the table below is work of the store's threads too, and no part of the run.
[[ -n "${THREADS:-}" ]] && by_thread=$(cpu_by_thread "$spid")
own=$(awk -v a="$own0" -v b="$own1" 'BEGIN { printf "%.2f", b - a }')
store=$(awk -v a="$store0" -v b="$store1" 'BEGIN { printf "%.2f", b - a }')
inserts=$(curl -sf "127.0.0.1:$admin/metrics" | awk '/^sluice_sink_batches_total\{sink="job-events-/ { n += $2 } /^sluice_sink_body_bytes_total\{sink="job-events-/ { b += $2 } END { printf "%d inserts of %.1f MB on average", n, n ? b / n / 1e6 : 0 }')
distinct=$(curl -sf --get "127.0.0.1:$admin/api/v0/query" --data-urlencode "sql=SELECT uniqExact(id) FROM sluice.events")
echo "sluice job (json, 10 columns, parallelism $PARALLELISM) into chDB: $got rows ($distinct distinct ids) in $secs s, $inserts"
awk -v n="$got" -v s="$secs" -v c="$cpu" 'BEGIN {
  printf "  wall: %.0f records/s\n  cpu:  %.2f s  →  %.0f records per CPU-second (per core)\n", n / s, c, n / c }'
awk -v n="$got" -v o="$own" -v st="$store" 'BEGIN {
  printf "        of which sluice and librdkafka threads %.2f s (%.0f records per CPU-second), chDB threads %.2f s\n", o, n / o, st }'
[[ -n "${THREADS:-}" ]] && { echo "  CPU by thread name since start (threads that ended are not counted):"; echo "$by_thread"; }
echo "  minor page faults: $faults ($(( faults * 4096 / got )) bytes of fresh memory per record); peak RSS $(peak_rss_mib "$spid") MiB"
  per_core+=("$(awk -v n="$got" -v c="$cpu" 'BEGIN { printf "%.0f", n / c }')")
  own_per_core+=("$(awk -v n="$got" -v o="$own" 'BEGIN { printf "%.0f", n / o }')")
  kill "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  [[ -n "${KEEP:-}" ]] || rm -rf "$tmp/sluice-$run"
}

# One measured run of the peer on the same topic: a fresh process, consumer group and store. Its clock and
# CPU start once its tables exist (the group join, idle, is inside; sluice's start once it consumed).
run_peer_once() {
  local run=$1 dir="$tmp/peer-$1"
  mkdir -p "$dir"
  # Through fifos: bash keeps one coprocess, the mock cluster's.
  mkfifo "$dir/in" "$dir/out"
  "$PEER_TOOL" --path "$dir/chdb" --brokers "$bootstrap" --topic events --group "peer-$run" --records "$RECORDS" \
    --flush-ms "$(awk -v d="${MAX_DELAY:-1s}" 'BEGIN { v = d + 0; if (d ~ /ms$/) print v; else print v * 1000 }')" \
    < "$dir/in" > "$dir/out" 2> "$dir/peer.log" &
  local ppid=$! word pin pout
  pids+=("$ppid")
  exec {pin}> "$dir/in" {pout}< "$dir/out"
  # The tool's log lines come first.
  while read -r -u "$pout" word && [[ "$word" != READY ]]; do :; done
  [[ "$word" == READY ]] || { echo "the peer did not start:" >&2; cat "$dir/peer.log" >&2; exit 1; }
  local t0 c0 f0 secs cpu faults rows distinct
  t0=$(now) c0=$(cpu_s "$ppid") f0=$(minflt "$ppid")
  read -r -u "$pout" word || { echo "the peer failed:" >&2; tail -20 "$dir/peer.log" >&2; exit 1; }
  secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
  cpu=$(awk -v a="$c0" -v b="$(cpu_s "$ppid")" 'BEGIN { printf "%.2f", b - a }')
  faults=$(( $(minflt "$ppid") - f0 ))
  [[ -n "${THREADS:-}" ]] && by_thread=$(cpu_by_thread "$ppid")
  local rss; rss=$(peak_rss_mib "$ppid")
  echo check >&"$pin"
  read -r -u "$pout" word rows distinct || { echo "the peer failed its check:" >&2; tail -20 "$dir/peer.log" >&2; exit 1; }
  exec {pin}>&- {pout}<&-
  wait "$ppid" 2>/dev/null || true
  echo "ClickHouse Kafka engine (JSONEachRow, materialized view, one consumer) into chDB: $rows rows ($distinct distinct ids) in $secs s"
  awk -v n="$rows" -v s="$secs" -v c="$cpu" 'BEGIN {
    printf "  wall: %.0f records/s (the group join inside)\n  cpu:  %.2f s  →  %.0f records per CPU-second (per core)\n", n / s, c, n / c }'
  [[ -n "${THREADS:-}" ]] && { echo "  CPU by thread name:"; echo "$by_thread"; }
  echo "  minor page faults: $faults; peak RSS $rss MiB"
  per_core+=("$(awk -v n="$rows" -v c="$cpu" 'BEGIN { printf "%.0f", n / c }')")
  [[ -n "${KEEP:-}" ]] || rm -rf "$dir"
}

middle() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# NAME_A MEDIAN_A NAME_B MEDIAN_B: two sides' medians of runs taken in turn, and B's over A's.
print_ratio() {
  echo "records per CPU-second, medians of ${RUNS:-1} run(s) taken in turn: $1 $2, $3 $4 (ratio $(awk -v a="$2" -v b="$4" 'BEGIN { printf "%.2f", b / a }'))"
}

per_core=() own_per_core=()
if [[ -n "${PEER:-}" ]]; then
  sluice_per_core=() peer_per_core=()
  for run in $(seq "${RUNS:-1}"); do
    echo "-- ClickHouse Kafka engine"
    run_peer_once "$run"
    peer_per_core+=("${per_core[-1]}")
    echo "-- sluice"
    run_once "$run"
    sluice_per_core+=("${per_core[-1]}")
  done
  print_ratio "ClickHouse Kafka engine" "$(middle "${peer_per_core[@]}")" sluice "$(middle "${sluice_per_core[@]}")"
  exit 0
fi
if [[ -n "${COMPARE:-}" ]]; then
  this_sluice=$SLUICE
  this_per_core=() other_per_core=()
  for run in $(seq "${RUNS:-1}"); do
    for side in other this; do
      if [[ $side == this ]]; then SLUICE=$this_sluice; else SLUICE="$COMPARE/sluice"; fi
      echo "-- $SLUICE"
      run_once "$run-$side"
      if [[ $side == this ]]; then this_per_core+=("${per_core[-1]}"); else other_per_core+=("${per_core[-1]}"); fi
    done
  done
  print_ratio "$COMPARE" "$(middle "${other_per_core[@]}")" "$BUILD_DIR" "$(middle "${this_per_core[@]}")"
  exit 0
fi
for run in $(seq "${RUNS:-1}"); do run_once "$run"; done
if (( ${RUNS:-1} > 1 )); then
  median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%s (range %s to %s)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
  echo "over $RUNS runs, records per CPU-second: whole process median $(median "${per_core[@]}"); sluice and librdkafka threads median $(median "${own_per_core[@]}")"
fi
