#!/usr/bin/env bash
# The same Graphite stream through carbon-c-relay and through sluice, one after the other in one run:
# both hash to the same 4 destinations with carbon_ch and replication 2. For each relay, the sender
# offers rising rates ($RATES lines/s, each for $SECONDS_PER_STEP s, over $CONNECTIONS connections)
# and the destinations count what arrives; a step has zero loss when they receive exactly 2 × sent.
# Prints every step, each relay's highest zero-loss rate with its CPU seconds per million metrics,
# and the ratio.
#   bench/relay-vs-carbon-c-relay.sh [BUILD_DIR]
#   env: RATES ("100000 200000 400000 800000 1600000 3200000"), SECONDS_PER_STEP (5), CONNECTIONS (4), SERIES (100000)
# The destinations are on one host, so they carry instance names: carbon_ch places by host and
# instance, and carbon-c-relay cannot replicate over destinations its ring cannot tell apart.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
RATES=${RATES:-100000 200000 400000 800000 1600000 3200000}
SECONDS_PER_STEP=${SECONDS_PER_STEP:-5}
CONNECTIONS=${CONNECTIONS:-4}
SERIES=${SERIES:-100000}
BLAST="$BUILD_DIR/bench/graphite_blast"
SLUICE="$BUILD_DIR/sluice"
for f in "$BLAST" "$SLUICE"; do
  [[ -x "$f" ]] || { echo "missing $f: cmake --build $BUILD_DIR --target sluice graphite_blast" >&2; exit 1; }
done
command -v carbon-c-relay >/dev/null || { echo "carbon-c-relay is not installed: scripts/setup.sh --test" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n "${KEEP:-}" ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
cpu_s() { sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }'; }
last_count() { awk '/^COUNT / { c = $2 } END { print c + 0 }' "$1"; }
now() { date +%s.%N; }

# Offers $4 lines/s for SECONDS_PER_STEP to the relay on $2 (pid $3) whose destinations count into $5;
# prints one result line.
step() {
  local name=$1 port=$2 pid=$3 rate=$4 sink_out=$5
  local metrics=$((rate * SECONDS_PER_STEP)) base want cpu0 got prev stable
  base=$(last_count "$sink_out")
  want=$((base + metrics * 2))
  cpu0=$(cpu_s "$pid")
  "$BLAST" send --port "$port" --metrics "$metrics" --rate "$rate" --connections "$CONNECTIONS" --series "$SERIES" \
    > "$tmp/$name.send"
  # Delivered once the count reaches 2 × sent, or lost when it stops moving for 3 s.
  prev=-1; stable=0
  while :; do
    got=$(last_count "$sink_out")
    (( got >= want )) && break
    if (( got == prev )); then stable=$((stable + 1)); else stable=0; fi
    (( stable >= 30 )) && break
    prev=$got
    sleep 0.1
  done
  local cpu seconds
  cpu=$(awk -v a="$cpu0" -v b="$(cpu_s "$pid")" -v m="$metrics" 'BEGIN { printf "%.3f", (b - a) / (m / 1e6) }')
  seconds=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$tmp/$name.send")
  echo "$name rate=$rate sent=$metrics in ${seconds}s delivered=$((got - base)) expected=$((metrics * 2)) cpu_s_per_M=$cpu"
}

# Every rate in turn until one loses; prints the steps, then "best <rate> <cpu>".
sweep() {
  local name=$1 port=$2 pid=$3 sink_out=$4 best=0 best_cpu=0 line
  for rate in $RATES; do
    line=$(step "$name" "$port" "$pid" "$rate" "$sink_out")
    echo "$line" >&2
    local delivered expected
    delivered=$(sed -n 's/.*delivered=\([0-9]*\).*/\1/p' <<< "$line")
    expected=$(sed -n 's/.*expected=\([0-9]*\).*/\1/p' <<< "$line")
    (( delivered == expected )) || break
    best=$rate
    best_cpu=$(sed -n 's/.*cpu_s_per_M=\([0-9.]*\).*/\1/p' <<< "$line")
  done
  echo "best $best $best_cpu"
}

start_sink() {  # $1: name → sets sink_ports, sink_out
  sink_out="$tmp/$1.sink"
  "$BLAST" sink --ports 4 > "$sink_out" &
  pids+=($!)
  for _ in $(seq 100); do grep -q '^LISTENING' "$sink_out" && break; sleep 0.05; done
  sink_ports=$(sed -n 's/^LISTENING //p' "$sink_out")
}

# carbon-c-relay: submission mode (-s) so it adds no statistics of its own to the stream, and a
# destination queue of a million metrics (-q; the default 25 000 drops at 100 000 metrics/s here).
start_sink carbon-c-relay
relay_port=$(free_port)
{
  echo "cluster dests carbon_ch replication 2"
  i=0
  for p in $sink_ports; do i=$((i + 1)); echo "  127.0.0.1:$p=d$i"; done
  echo "  ;"
  echo "match * send to dests;"
} > "$tmp/relay.conf"
carbon-c-relay -s -q 1000000 -f "$tmp/relay.conf" -p "$relay_port" -w 2 > "$tmp/relay.log" 2>&1 &
relay_pid=$!
pids+=("$relay_pid")
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $relay_port)).close()" 2>/dev/null && break; sleep 0.1; done
relay_best=$(sweep carbon-c-relay "$relay_port" "$relay_pid" "$sink_out")
kill "$relay_pid"

# sluice: Graphite receiver → memory bus → metric router → the same hashing to 4 destinations.
start_sink sluice
graphite_port=$(free_port)
admin="127.0.0.1:$(free_port)"
destinations=$(i=0; for p in $sink_ports; do i=$((i + 1)); printf '127.0.0.1:%s=d%s,' "$p" "$i"; done)
cat > "$tmp/sluice.yaml" <<EOF
data_dir: $tmp/data
admin: {listen: "$admin"}
inlet:
  graphite: {listen: "127.0.0.1:$graphite_port"}
bus:
  memory: {partitions: 4, max_bytes: 512MiB}
outlet:
  batch: {max_rows: 100000, max_delay: 100ms}
  chdb: {path: $tmp/data/chdb}
  metrics:
    graphite: {destinations: "${destinations%,}", hash: carbon_ch, replication: 2, batch: 2000}
    table: false
EOF
"$SLUICE" run -c "$tmp/sluice.yaml" > "$tmp/sluice.log" 2>&1 &
sluice_pid=$!
pids+=("$sluice_pid")
for _ in $(seq 300); do curl -sf "http://$admin/api/v0/healthcheck" >/dev/null && break; sleep 0.1; done
sluice_best=$(sweep sluice "$graphite_port" "$sluice_pid" "$sink_out")
read -r _ r_rate r_cpu <<< "$relay_best"
read -r _ s_rate s_cpu <<< "$sluice_best"
echo "carbon-c-relay: highest zero-loss rate $r_rate metrics/s ($r_cpu CPU s per million)"
echo "sluice:         highest zero-loss rate $s_rate metrics/s ($s_cpu CPU s per million, receiver + bus + router in one process)"
awk -v s="$s_rate" -v r="$r_rate" 'BEGIN { if (r > 0) printf "ratio sluice/carbon-c-relay: %.2fx\n", s / r; else print "carbon-c-relay lost data at every rate" }'
