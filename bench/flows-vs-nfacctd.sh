#!/usr/bin/env bash
# NetFlow v5 ingestion, sluice inlet vs pmacct's nfacctd, in one run on this machine: the same pcap of
# export datagrams (30 flows each) replayed by bench/tools/udp_replay (sendmmsg, paced) to each
# daemon in turn, each producing to its own topic on one librdkafka mock cluster (3 brokers).
# For each daemon, rates double from $START_RATE datagrams/s until a step drops, then one step
# between the last clean and the first dropping rate is tried. A step is clean when:
#   - the kernel dropped nothing on the daemon's socket(s) (/proc/net/udp drops column), and
#   - sluice: its inlet received every datagram and dropped none on the way to Kafka
#     (sluice_inlet_udp_packets_total, sluice_inlet_udp_produce_drops_total, sluice_kafka_produce_failed_total);
#     nfacctd: its log reports no lost data between its core and the kafka plugin.
# CPU seconds per million flows: utime+stime of every process of the daemon (all threads, nfacctd's
# plugin children included) over a step, including its ${SETTLE}s drain, at the highest rate that
# both ran cleanly.
#   bench/flows-vs-nfacctd.sh [BUILD_DIR]    env: STEP_SECONDS (3), SETTLE (2), START_RATE (2000)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
STEP_SECONDS=${STEP_SECONDS:-3}
SETTLE=${SETTLE:-2}
START_RATE=${START_RATE:-2000}
MAX_RATE=${MAX_RATE:-512000}
MOCK="$BUILD_DIR/tests/sluice-mock-kafka"
REPLAY="$BUILD_DIR/bench/udp_replay"
SLUICE="$BUILD_DIR/sluice"
for f in "$MOCK" "$REPLAY" "$SLUICE"; do
  [[ -x "$f" ]] || { echo "missing $f: cmake --build $BUILD_DIR --target sluice sluice-mock-kafka udp_replay" >&2; exit 1; }
done
command -v nfacctd >/dev/null || { echo "nfacctd is not installed: apt-get install -y pmacct" >&2; exit 1; }
nfacctd -V 2>&1 | grep -qx 'kafka' || { echo "this nfacctd has no kafka plugin (nfacctd -V)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
stop() {  # SIGTERM, then SIGKILL after 5 s (nfacctd's core may not exit on SIGTERM), children too
  local p=$1 kids
  kids=$(pgrep -P "$p" || true)
  kill "$p" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" $kids 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do stop "$p"; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {  # $1: tcp|udp
  python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=='udp' else socket.SOCK_STREAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}
# Kernel drops on every UDP socket bound to 127.0.0.1:$1.
kernel_drops() {
  awk -v port="$(printf '%04X' "$1")" 'NR > 1 && $2 == "0100007F:" port { s += $NF } END { print s + 0 }' /proc/net/udp
}
# utime+stime in seconds of $1 and its children.
cpu_seconds() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t / hz }'
}
metric() {  # sum of a sluice metric over its labels
  curl -sf "http://$admin/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f", s + 0 }'
}

"$REPLAY" synth-v5 --out "$tmp/flows.pcap" --datagrams 4096 --port 2055
FLOWS_PER_DATAGRAM=30

mkfifo "$tmp/mock.in"
"$MOCK" --brokers 3 --topic sluice-flows:8 --topic nfacctd:8 < "$tmp/mock.in" > "$tmp/mock.out" 2> "$tmp/mock.err" &
pids+=($!)
exec 3> "$tmp/mock.in"
for _ in $(seq 100); do grep -q '^BOOTSTRAP ' "$tmp/mock.out" && break; sleep 0.1; done
bootstrap=$(sed -n 's/^BOOTSTRAP //p' "$tmp/mock.out")
[[ -n "$bootstrap" ]] || { echo "sluice-mock-kafka did not start: $(cat "$tmp/mock.err")" >&2; exit 1; }

# One ramp: $1 name, $2 port, $3 pid, $4 function that says whether the step was clean (after it).
# Fills ramp_<name>: lines "rate clean flows cpu_s".
run_step() {  # name port pid rate -> "rate clean flows cpu"
  local name=$1 port=$2 pid=$3 rate=$4
  local kd0 cpu0 kd1 cpu1 out flows sent clean
  "${name}_before"
  kd0=$(kernel_drops "$port"); cpu0=$(cpu_seconds "$pid")
  out=$("$REPLAY" send --pcap "$tmp/flows.pcap" --filter-port 2055 --port "$port" --rate "$rate" \
    --duration "$STEP_SECONDS" --v5-now)
  sleep "$SETTLE"
  kd1=$(kernel_drops "$port"); cpu1=$(cpu_seconds "$pid")
  sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<< "$out")
  flows=$(sed -n 's/.*flows=\([0-9]*\).*/\1/p' <<< "$out")
  clean=1
  (( kd1 == kd0 )) || clean=0
  "${name}_after" "$sent" || clean=0
  echo "$rate $clean $flows $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.3f", b - a }') $((kd1 - kd0)) $why"
}
ramp() {  # name port pid
  local rate=$START_RATE good=0 bad=0 line clean
  while (( rate <= MAX_RATE )); do
    line=$(run_step "$1" "$2" "$3" "$rate"); echo "$line" >> "$tmp/ramp.$1"
    read -r _ clean _ _ _ <<< "$line"
    if (( clean )); then good=$rate; rate=$((rate * 2)); else bad=$rate; break; fi
  done
  if (( bad && good )); then
    rate=$(( (good + bad) / 2 ))
    line=$(run_step "$1" "$2" "$3" "$rate"); echo "$line" >> "$tmp/ramp.$1"
  fi
}
best() {  # name -> highest clean rate (datagrams/s)
  awk '$2 == 1 && $1 > m { m = $1 } END { print m + 0 }' "$tmp/ramp.$1"
}

# Both daemons get the same socket receive buffer: nfacctd asks with SO_RCVBUF, which the kernel caps
# at net.core.rmem_max, so sluice's inlet (which can force it) is configured to ask for that much.
rcvbuf=$(cat /proc/sys/net/core/rmem_max)

# --- sluice inlet (config/inlet.yaml, 2 receive workers, receive_buffer = rmem_max) ---
sed "s/receive_buffer: .*/receive_buffer: $rcvbuf/" config/inlet.yaml > "$tmp/inlet.yaml"
sluice_port=$(free_port udp)
admin="127.0.0.1:$(free_port tcp)"
SLUICE_DATA_DIR="$tmp/sluice-data" SLUICE_ADMIN_LISTEN="$admin" SLUICE_NETFLOW_LISTEN="127.0.0.1:$sluice_port" \
  SLUICE_SFLOW_LISTEN="127.0.0.1:$(free_port udp)" SLUICE_KAFKA_BROKERS="$bootstrap" \
  "$SLUICE" inlet -c "$tmp/inlet.yaml" > "$tmp/sluice.log" 2>&1 &
sluice_pid=$!
pids+=("$sluice_pid")
for _ in $(seq 100); do curl -sf "http://$admin/api/v0/healthcheck" >/dev/null && break; sleep 0.1; done
curl -sf "http://$admin/api/v0/healthcheck" >/dev/null || { echo "sluice inlet did not start:" >&2; tail "$tmp/sluice.log" >&2; exit 1; }
sluice_before() {
  s_rx=$(metric sluice_inlet_udp_packets_total)
  s_drop=$(( $(metric sluice_inlet_udp_produce_drops_total) + $(metric sluice_kafka_produce_failed_total) ))
}
sluice_after() {
  local rx drop
  rx=$(metric sluice_inlet_udp_packets_total)
  drop=$(( $(metric sluice_inlet_udp_produce_drops_total) + $(metric sluice_kafka_produce_failed_total) ))
  why="received=$((rx - s_rx)) produce_drops=$((drop - s_drop))"
  (( rx - s_rx == $1 && drop == s_drop ))
}
sluice_rb=$(ss -uamn "sport = :$sluice_port" | grep -o 'rb[0-9]*' | head -1)
ramp sluice "$sluice_port" "$sluice_pid"
sluice_produced=$(metric sluice_kafka_produced_total)
stop "$sluice_pid"

# --- nfacctd, kafka plugin, JSON, one record per 5-tuple+interfaces+AS a second ---
nf_port=$(free_port udp)
cat > "$tmp/nfacctd.conf" <<CONF
daemonize: false
logfile: $tmp/nfacctd.log
pidfile: $tmp/nfacctd.pid
nfacctd_ip: 127.0.0.1
nfacctd_port: $nf_port
nfacctd_pipe_size: $rcvbuf
plugins: kafka[k]
aggregate[k]: peer_src_ip, src_host, dst_host, src_port, dst_port, proto, tos, in_iface, out_iface, src_as, dst_as
kafka_output[k]: json
kafka_broker_host[k]: ${bootstrap%%:*}
kafka_broker_port[k]: $(cut -d, -f1 <<< "$bootstrap" | cut -d: -f2)
kafka_topic[k]: nfacctd
kafka_refresh_time[k]: 1
plugin_pipe_size[k]: 67108864
plugin_buffer_size[k]: 65536
CONF
nfacctd -f "$tmp/nfacctd.conf" > "$tmp/nfacctd.out" 2>&1 &
nf_pid=$!
pids+=("$nf_pid")
for _ in $(seq 100); do [[ -n "$(ss -uanH "sport = :$nf_port")" ]] && break; sleep 0.1; done
sleep 1
kill -0 "$nf_pid" 2>/dev/null || { echo "nfacctd did not start:" >&2; cat "$tmp/nfacctd.out" "$tmp/nfacctd.log" >&2; exit 1; }
nf_missing() { grep -ci 'missing data' "$tmp/nfacctd.log" 2>/dev/null || true; }
nfacctd_before() { n_missing=$(nf_missing); }
nfacctd_after() {
  local m
  m=$(nf_missing)
  why="log_missing_data_lines=$((m - n_missing))"
  (( m == n_missing ))
}
nf_rb=$(ss -uamn "sport = :$nf_port" | grep -o 'rb[0-9]*' | head -1)
ramp nfacctd "$nf_port" "$nf_pid"
nf_topic=$(kcat -Q -b "$bootstrap" $(for p in $(seq 0 7); do printf -- '-t nfacctd:%d:-1 ' "$p"; done) 2>/dev/null \
  | awk '{ s += $NF } END { print s + 0 }' || echo "?")
stop "$nf_pid"
nf_first_loss=$(grep -i -m1 'missing data' "$tmp/nfacctd.log" || true)

exec 3>&-

# --- report ---
s_best=$(best sluice); n_best=$(best nfacctd)
common=$(awk 'NR == FNR { if ($2 == 1) ok[$1] = 1; next } $2 == 1 && ($1 in ok) && $1 > m { m = $1 } END { print m + 0 }' \
  "$tmp/ramp.sluice" "$tmp/ramp.nfacctd")
cpu_at() { awk -v r="$2" '$1 == r { printf "%.3f", $4 * 1e6 / $3 }' "$tmp/ramp.$1"; }
echo "input: $(basename "$tmp/flows.pcap"), 4096 NetFlow v5 datagrams x $FLOWS_PER_DATAGRAM flows, replayed with sendmmsg to 127.0.0.1, ${STEP_SECONDS}s a step"
echo "steps (datagrams/s, clean, flows sent, CPU s, kernel drops, the daemon's own accounting):"
sed 's/^/  sluice  /' "$tmp/ramp.sluice"
sed 's/^/  nfacctd /' "$tmp/ramp.nfacctd"
echo "socket receive buffers: sluice $sluice_rb, nfacctd $nf_rb (ss -m)"
echo "sluice inlet: datagrams produced to Kafka: $sluice_produced; nfacctd: JSON records in its topic: $nf_topic"
if (( s_best == 0 || n_best == 0 || common == 0 )); then
  echo "no clean step for one of them (sluice $s_best, nfacctd $n_best datagrams/s); lower START_RATE" >&2
  exit 1
fi
s_cpu=$(cpu_at sluice "$common"); n_cpu=$(cpu_at nfacctd "$common")
printf 'sluice inlet: max zero-drop rate %d flows/s, %s CPU s per million flows (at %d flows/s)\n' \
  $((s_best * FLOWS_PER_DATAGRAM)) "$s_cpu" $((common * FLOWS_PER_DATAGRAM))
printf 'nfacctd:      max zero-drop rate %d flows/s, %s CPU s per million flows (at %d flows/s)\n' \
  $((n_best * FLOWS_PER_DATAGRAM)) "$n_cpu" $((common * FLOWS_PER_DATAGRAM))
awk -v a="$s_best" -v b="$n_best" -v c="$s_cpu" -v d="$n_cpu" 'BEGIN {
  printf "ratios: zero-drop rate sluice/nfacctd %.2f (goal >= 3), CPU per flow sluice/nfacctd %.3f (goal <= 0.333)\n", a / b, c / d }'
[[ -z "$nf_first_loss" ]] || echo "nfacctd's first loss report: $nf_first_loss"
echo "note: the sluice inlet forwards datagrams raw; decoding happens in the outlet, while nfacctd decodes,"
echo "      aggregates and writes JSON in this path. The outlet's decode+batch cost, for the full picture:"
if [[ -x "$BUILD_DIR/bench/netflow_bench" ]]; then
  decode=$("$BUILD_DIR/bench/netflow_bench" --benchmark_filter=BM_DecodeV5IntoFlowBatch --benchmark_format=json 2>/dev/null \
    | awk -F': ' '/"records\/s"/ { gsub(/[ ,]/, "", $2); printf "%.3f", 1e6 / $2 }')
  awk -v d="$decode" -v s="$s_cpu" -v n="$n_cpu" 'BEGIN {
    printf "      decode v5 + FlowBatch append %.3f CPU s per million flows (netflow_bench); inlet + that: %.3f, /nfacctd %.3f\n",
      d, s + d, (s + d) / n }'
else
  echo "      (build netflow_bench to print it)"
fi
