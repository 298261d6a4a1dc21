#!/usr/bin/env bash
# Produce throughput, sluice's KafkaProducer vs kcat -P, each into a fresh librdkafka mock cluster
# (3 brokers, 8 partitions), same number of keyed 100-byte messages, same delivery guarantees
# (idempotent, acks=all, linger.ms=5), deliveries awaited. Three rounds each, in this one invocation;
# prints records/s and CPU seconds per million records (the mock cluster's CPU is not counted).
#   bench/kafka-vs-kcat.sh [BUILD_DIR]        N=1000000 by default (env N)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
N=${N:-1000000}
MOCK="$BUILD_DIR/tests/sluice-mock-kafka"
BENCH="$BUILD_DIR/bench/kafka_bench"
for f in "$MOCK" "$BENCH"; do
  [[ -x "$f" ]] || { echo "missing $f: cmake --build $BUILD_DIR --target sluice-mock-kafka kafka_bench" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "kcat is not installed (scripts/setup.sh --test)" >&2; exit 1; }

tmp=$(mktemp -d)
mock_pid=""
cleanup() {
  if [[ -n "$mock_pid" ]]; then kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Same shape as the bench binary's messages: key-0000..key-1023, 100-byte value.
awk -v n="$N" 'BEGIN { v = sprintf("%100s", ""); gsub(/ /, "v", v);
  for (i = 0; i < n; i++) printf "key-%04d\t%s\n", i % 1024, v }' > "$tmp/input"

mkfifo "$tmp/mock.in"
"$MOCK" --brokers 3 --topic kcat-1:8 --topic kcat-2:8 --topic kcat-3:8 \
  < "$tmp/mock.in" > "$tmp/mock.out" 2> "$tmp/mock.err" &
mock_pid=$!
exec 3> "$tmp/mock.in"  # keeps the mock's stdin open until we are done with it
for _ in $(seq 100); do grep -q '^BOOTSTRAP ' "$tmp/mock.out" && break; sleep 0.1; done
bootstrap=$(sed -n 's/^BOOTSTRAP //p' "$tmp/mock.out")
[[ -n "$bootstrap" ]] || { echo "sluice-mock-kafka did not start: $(cat "$tmp/mock.err")" >&2; exit 1; }

# kcat: the clock includes its start-up and connection (a few ms against 1M messages).
kcat_runs=()
for round in 1 2 3; do
  TIMEFORMAT='%U %S'
  start=$(date +%s.%N)
  { time kcat -P -b "$bootstrap" -t "kcat-$round" -K $'\t' -l \
      -X enable.idempotence=true -X acks=all -X linger.ms=5 -X partitioner=murmur2_random \
      -X queue.buffering.max.kbytes=262144 -X queue.buffering.max.messages=2147483647 \
      -X batch.num.messages=100000 "$tmp/input" 2> "$tmp/kcat.err" ; } 2> "$tmp/kcat.time"
  end=$(date +%s.%N)
  kcat_runs+=("$(awk -v n="$N" -v s="$start" -v e="$end" '{ printf "%.0f %.3f", n / (e - s), ($1 + $2) * 1e6 / n }' \
    "$tmp/kcat.time")")
done
# Everything delivered: the topics' high watermarks add up to 3 N.
delivered=$(kcat -Q -b "$bootstrap" $(for r in 1 2 3; do for p in $(seq 0 7); do printf -- '-t kcat-%d:%d:-1 ' "$r" "$p"; done; done) \
  2>/dev/null | awk '{ s += $NF } END { print s + 0 }')
exec 3>&-
wait "$mock_pid" 2>/dev/null || true
mock_pid=""
# Median of the three rounds, by rate.
read -r kcat_rate kcat_cpu < <(printf '%s\n' "${kcat_runs[@]}" | sort -n | sed -n 2p)

json=$(SLUICE_BENCH_KAFKA_MESSAGES="$N" "$BENCH" --benchmark_filter=BM_KafkaProduce --benchmark_format=json 2>/dev/null)
sluice_rate=$(awk -F': ' '/"records"/ { gsub(/[ ,]/, "", $2); printf "%.0f", $2 }' <<< "$json")
sluice_cpu=$(awk -F': ' -v n="$N" '/"cpu_time"/ { gsub(/[ ,]/, "", $2); printf "%.3f", $2 / 1000 * 1e6 / n }' <<< "$json")
[[ -n "$sluice_rate" ]] || { echo "kafka_bench produced no result" >&2; exit 1; }

echo "messages:        $N keyed, 100-byte values, 3 brokers, 8 partitions (librdkafka mock cluster)"
echo "kcat -P:         $kcat_rate records/s, $kcat_cpu CPU s per 1M records (median of 3; high watermarks: $delivered = 3 x N)"
echo "sluice producer: $sluice_rate records/s, $sluice_cpu CPU s per 1M records (BM_KafkaProduce, 3 rounds)"
awk -v a="$sluice_rate" -v b="$kcat_rate" -v c="$sluice_cpu" -v d="$kcat_cpu" \
  'BEGIN { printf "ratio sluice/kcat: %.2f in records/s, %.2f in CPU per record\n", a / b, c / d }'
