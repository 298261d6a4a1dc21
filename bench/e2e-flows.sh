#!/usr/bin/env bash
# End to end on this machine: NetFlow v5 replayed by bench/tools/udp_replay → sluice inlet → librdkafka
# mock cluster (3 brokers, $PARTITIONS partitions) → sluice outlet → embedded ClickHouse (chDB), at
# $RATE flows/s for $DURATION s from $SOURCES exporter addresses. Prints flows sent and stored (zero loss
# means equal), kernel and produce drops, offsets the bus removed before the outlet read them, how long
# the outlet took to catch up, peak RSS of inlet and outlet, and CPU s per million flows.
#   bench/e2e-flows.sh [BUILD_DIR]
#   env: RATE (1000000 flows/s), DURATION (60 s), SOURCES (32), PARTITIONS (16), WORKERS (outlet consumer
#        threads, 1), MAX_ROWS (batch rows, 200000), MAX_DELAY (batch age, 1s), PARALLEL (parallel inserts, 2),
#        STORE_SQL (a statement run on the store before the replay, e.g. "SYSTEM STOP MERGES sluice.flows"
#        to see what the store's background merges cost)
# The mock cluster keeps about 5 MB per partition and discards older data even when nobody has read it
# (a real broker keeps it for its retention time), so the outlet must stay within a few seconds of the
# inlet: that is what this run shows.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
RATE=${RATE:-1000000}
DURATION=${DURATION:-60}
SOURCES=${SOURCES:-32}
PARTITIONS=${PARTITIONS:-16}
WORKERS=${WORKERS:-1}
MAX_ROWS=${MAX_ROWS:-200000}
MAX_DELAY=${MAX_DELAY:-1s}
PARALLEL=${PARALLEL:-2}
MOCK="$BUILD_DIR/tests/sluice-mock-kafka"
REPLAY="$BUILD_DIR/bench/udp_replay"
SLUICE="$BUILD_DIR/sluice"
for f in "$MOCK" "$REPLAY" "$SLUICE"; do
  [[ -x "$f" ]] || { echo "missing $f: cmake --build $BUILD_DIR --target sluice sluice-mock-kafka udp_replay" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n "${KEEP:-}" ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
free_port() {
  python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=='udp' else socket.SOCK_STREAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}
metric() {  # $1 admin address, $2 metric: sum over its labels
  curl -sf "http://$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f", s + 0 }'
}
stored() { curl -sf "http://$outlet_admin/api/v0/query" --data-urlencode "sql=SELECT count() FROM sluice.flows"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
cpu_s() { sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }'; }
healthy() { for _ in $(seq 300); do curl -sf "http://$1/api/v0/healthcheck" >/dev/null && return 0; sleep 0.1; done; return 1; }

"$REPLAY" synth-v5 --out "$tmp/flows.pcap" --datagrams 4096 --port 2055 >/dev/null

mkfifo "$tmp/mock.in"
"$MOCK" --brokers 3 --topic sluice-flows:$PARTITIONS < "$tmp/mock.in" > "$tmp/mock.out" 2> "$tmp/mock.err" &
mock_pid=$!
pids+=("$mock_pid")
exec 3> "$tmp/mock.in"
for _ in $(seq 100); do grep -q '^BOOTSTRAP ' "$tmp/mock.out" && break; sleep 0.1; done
bootstrap=$(sed -n 's/^BOOTSTRAP //p' "$tmp/mock.out")

# The shipped outlet.yaml with the embedded store and batches sized for chDB.
sed -e '/^  clickhouse:/,/^  sink:/{/^  sink:/!d}' -e 's/^  sink:/  chdb:\n    path: ${SLUICE_DATA_DIR}\/chdb\n  sink:/' \
    -e "s/max_rows: .*/max_rows: $MAX_ROWS/" -e 's/max_bytes: .*/max_bytes: 128MiB/' -e "s/max_delay: .*/max_delay: $MAX_DELAY/" -e "s/partitions: .*/partitions: $PARTITIONS/" \
    -e "s/^  workers: .*/  workers: $WORKERS/" -e "s/parallel_inserts: .*/parallel_inserts: $PARALLEL/" \
    config/outlet.yaml > "$tmp/outlet.yaml"
outlet_admin="127.0.0.1:$(free_port tcp)"
SLUICE_DATA_DIR="$tmp/outlet" SLUICE_ADMIN_LISTEN="$outlet_admin" SLUICE_KAFKA_BROKERS="$bootstrap" \
  "$SLUICE" outlet -c "$tmp/outlet.yaml" > "$tmp/outlet.log" 2>&1 &
outlet_pid=$!
pids+=("$outlet_pid")
healthy "$outlet_admin" || { echo "outlet did not start:" >&2; tail "$tmp/outlet.log" >&2; exit 1; }
if [[ -n "${STORE_SQL:-}" ]]; then
  curl -sf "http://$outlet_admin/api/v0/query" --data-urlencode "sql=$STORE_SQL" >/dev/null
fi
# The mock cluster keeps only a few MB per partition: start sending once the outlet owns them all.
for _ in $(seq 300); do
  n=$(curl -sf "http://$outlet_admin/api/v0/status" | python3 -c "import json,sys; print(sum(len(j['partitions']) for j in json.load(sys.stdin)['jobs']))")
  [[ "$n" == "$PARTITIONS" ]] && break
  sleep 0.1
done

sed "s/partitions: .*/partitions: $PARTITIONS/" config/inlet.yaml > "$tmp/inlet.yaml"
port=$(free_port udp)
inlet_admin="127.0.0.1:$(free_port tcp)"
SLUICE_DATA_DIR="$tmp/inlet" SLUICE_ADMIN_LISTEN="$inlet_admin" SLUICE_NETFLOW_LISTEN="127.0.0.1:$port" \
  SLUICE_SFLOW_LISTEN="127.0.0.1:$(free_port udp)" SLUICE_KAFKA_BROKERS="$bootstrap" \
  "$SLUICE" inlet -c "$tmp/inlet.yaml" > "$tmp/inlet.log" 2>&1 &
inlet_pid=$!
pids+=("$inlet_pid")
healthy "$inlet_admin" || { echo "inlet did not start:" >&2; tail "$tmp/inlet.log" >&2; exit 1; }

pps=$(( RATE / 30 ))
in0=$(cpu_s "$inlet_pid"); out0=$(cpu_s "$outlet_pid"); mock0=$(cpu_s "$mock_pid")
peak_in=0; peak_out=0
"$REPLAY" send --pcap "$tmp/flows.pcap" --filter-port 2055 --port "$port" --rate "$pps" --duration "$DURATION" --v5-now --sources "$SOURCES" > "$tmp/replay.out" &
replay_pid=$!
while kill -0 "$replay_pid" 2>/dev/null; do
  r=$(rss_kb "$inlet_pid"); (( r > peak_in )) && peak_in=$r
  r=$(rss_kb "$outlet_pid"); (( r > peak_out )) && peak_out=$r
  sleep 1
done
wait "$replay_pid"
flows=$(sed -n 's/.*flows=\([0-9]*\).*/\1/p' "$tmp/replay.out")
sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' "$tmp/replay.out")
seconds=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$tmp/replay.out")
t0=$(date +%s.%N)
for _ in $(seq 240); do
  r=$(rss_kb "$outlet_pid"); (( r > peak_out )) && peak_out=$r
  [[ "$(stored)" -ge "$flows" ]] && break
  sleep 0.5
done
catch_up=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
in1=$(cpu_s "$inlet_pid"); out1=$(cpu_s "$outlet_pid"); mock1=$(cpu_s "$mock_pid")
got=$(stored)
kernel=$(( $(metric "$inlet_admin" sluice_inlet_udp_kernel_drops_total) ))
produce_drops=$(( $(metric "$inlet_admin" sluice_inlet_udp_produce_drops_total) + $(metric "$inlet_admin" sluice_kafka_produce_failed_total) ))
received=$(metric "$inlet_admin" sluice_inlet_udp_packets_total)
skipped=$(metric "$outlet_admin" sluice_outlet_skipped_offsets_total)
echo "offered: $flows flows in $sent datagrams over ${seconds}s ($(awk -v f="$flows" -v s="$seconds" 'BEGIN { printf "%.0f", f / s }') flows/s)"
echo "inlet received $received datagrams; kernel drops $kernel; produce drops $produce_drops"
echo "outlet: offsets removed by the bus before they were read: $skipped"
echo "stored in chDB: $got flows (outlet caught up ${catch_up}s after the replay ended)"
echo "peak RSS: inlet $((peak_in / 1024)) MiB (VmHWM $(( $(hwm_kb "$inlet_pid") / 1024 )) MiB), outlet $((peak_out / 1024)) MiB (VmHWM $(( $(hwm_kb "$outlet_pid") / 1024 )) MiB)"
per_m() { awk -v a="$1" -v b="$2" -v f="$flows" 'BEGIN { printf "%.2f", (b - a) / (f / 1e6) }'; }
echo "CPU s per million flows: inlet $(per_m "$in0" "$in1"), mock Kafka $(per_m "$mock0" "$mock1"), outlet with chDB $(per_m "$out0" "$out1"), total $(per_m "$(awk -v a="$in0" -v b="$out0" -v c="$mock0" 'BEGIN { print a + b + c }')" "$(awk -v a="$in1" -v b="$out1" -v c="$mock1" 'BEGIN { print a + b + c }')")"
if [[ "$got" == "$flows" && "$kernel" == 0 && "$produce_drops" == 0 ]]; then
  echo "result: zero loss at $RATE flows/s for ${DURATION}s"
else
  echo "result: LOSS (sent $flows, stored $got)"; exit 1
fi
