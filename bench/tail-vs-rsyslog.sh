#!/usr/bin/env bash
# The same growing log file tailed into the same Kafka cluster (librdkafka's mock, as a process) by
# sluice and by rsyslog (imfile in inotify mode + omkafka), one after the other in one run. Both produce
# with acks=all and idempotence. The writer appends SIZE_MB of 200-byte lines as fast as the disk takes
# them (both compress with lz4); each tailer's time runs from the first append until Kafka acknowledged the last line:
#   sluice:  its checkpointed offset (what Kafka acknowledged, end to end) reaches the file's size;
#   rsyslog: the end offsets of its topic sum to the number of lines.
# A tailer that stops moving for 10 s before that has lost lines; the script says how many.
# Prints MB/s, lines/s and CPU seconds per GB for each, and the ratio.
#   bench/tail-vs-rsyslog.sh [BUILD_DIR]
#   env: SIZE_MB (1024), LINE_BYTES (200)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
SIZE_MB=${SIZE_MB:-1024}
LINE_BYTES=${LINE_BYTES:-200}
SLUICE="$BUILD_DIR/sluice"
MOCK="$BUILD_DIR/tests/sluice-mock-kafka"
for f in "$SLUICE" "$MOCK"; do
  [[ -x "$f" ]] || { echo "missing $f: cmake --build $BUILD_DIR --target sluice sluice-mock-kafka" >&2; exit 1; }
done
command -v rsyslogd >/dev/null || { echo "rsyslog is not installed: scripts/setup.sh --test" >&2; exit 1; }
[[ -f /usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so ]] || { echo "rsyslog-kafka is not installed: scripts/setup.sh --test" >&2; exit 1; }
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

# The input: numbered lines of exactly LINE_BYTES bytes (newline included), written once.
lines=$(( SIZE_MB * 1024 * 1024 / LINE_BYTES ))
python3 - "$tmp/input.log" "$lines" "$LINE_BYTES" <<'PY'
import sys
path, n, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pad = "x" * width
with open(path, "w") as f:
    block = []
    for i in range(n):
        head = "%012d level=info msg=\"request served\" user=%d path=/api/v1/items/%d " % (i, i % 1000, i % 977)
        block.append((head + pad)[: width - 1] + "\n")
        if len(block) == 20000:
            f.write("".join(block)); block = []
    f.write("".join(block))
PY
bytes=$(stat -c %s "$tmp/input.log")
echo "input: $lines lines of $LINE_BYTES bytes ($bytes bytes)"

coproc MOCKP { exec "$MOCK" --brokers 1 --topic sluice-logs:4 --topic rsyslog-logs:4; }
pids+=("$MOCKP_PID")
read -r -u "${MOCKP[0]}" word bootstrap
[[ "$word" == BOOTSTRAP ]] || { echo "mock cluster did not start" >&2; exit 1; }

append() { dd if="$tmp/input.log" of="$1" bs=4M oflag=append conv=notrunc status=none; }

# --- sluice -------------------------------------------------------------------------------------------
admin=$(free_port)
mkdir -p "$tmp/sluice/logs"
cat > "$tmp/sluice.yaml" <<YAML
data_dir: $tmp/sluice/data
admin: {listen: 127.0.0.1:$admin}
inlet:
  files:
    host: bench
    sources:
      - name: bench
        include: [$tmp/sluice/logs/app.log]
bus:
  kafka:
    brokers: $bootstrap
    partitions: 4
    producer_queue_bytes: 512MiB
    producer_properties: {compression.type: lz4}
YAML
: > "$tmp/sluice/logs/app.log"
"$SLUICE" inlet -c "$tmp/sluice.yaml" > "$tmp/sluice.log" 2>&1 &
spid=$!; pids+=("$spid")
for _ in $(seq 100); do curl -sf "127.0.0.1:$admin/api/v0/healthcheck" >/dev/null && break; sleep 0.1; done
acked_bytes() {  # the checkpointable offsets of every tailed file, from /api/v0/status
  curl -sf "127.0.0.1:$admin/api/v0/status" | python3 -c '
import json, sys
def walk(x):
    if isinstance(x, dict):
        return x.get("acked_offset", 0) + sum(walk(v) for k, v in x.items() if k != "acked_offset")
    if isinstance(x, list):
        return sum(walk(v) for v in x)
    return 0
print(walk(json.load(sys.stdin)))' 2>/dev/null || echo 0
}
wait_until() {  # $1: a function printing progress, $2: target; prints "seconds reached"
  local t0=$3 prev=-1 stable=0 got
  while :; do
    got=$($1)
    (( got >= $2 )) && break
    if (( got == prev )); then stable=$((stable + 1)); else stable=0; fi
    (( stable >= 100 )) && break
    prev=$got
    sleep 0.1
  done
  echo "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }') $got"
}
c0=$(cpu_s "$spid"); t0=$(now)
append "$tmp/sluice/logs/app.log"
read -r s_secs s_got < <(wait_until acked_bytes "$bytes" "$t0")
s_cpu=$(awk -v a="$c0" -v b="$(cpu_s "$spid")" 'BEGIN { printf "%.2f", b - a }')
kill -TERM "$spid"; wait "$spid" 2>/dev/null || true

# --- rsyslog ------------------------------------------------------------------------------------------
mkdir -p "$tmp/rsyslog/work" "$tmp/rsyslog/logs"
: > "$tmp/rsyslog/logs/app.log"
cat > "$tmp/rsyslog.conf" <<CONF
global(workDirectory="$tmp/rsyslog/work" maxMessageSize="64k")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="raw" type="string" string="%msg%")
ruleset(name="tokafka" queue.type="LinkedList" queue.size="1000000" queue.dequeueBatchSize="4096") {
  action(type="omkafka" broker=["$bootstrap"] topic="rsyslog-logs" template="raw" partitions.auto="on"
         confParam=["acks=all", "enable.idempotence=true", "compression.type=lz4", "linger.ms=5", "batch.num.messages=100000",
                    "queue.buffering.max.messages=2000000", "queue.buffering.max.kbytes=524288"])
}
input(type="imfile" File="$tmp/rsyslog/logs/app.log" Tag="app" ruleset="tokafka" freshStartTail="off")
CONF
rsyslogd -n -f "$tmp/rsyslog.conf" -i "$tmp/rsyslog.pid" > "$tmp/rsyslog.out" 2>&1 &
rpid=$!; pids+=("$rpid")
sleep 1
rsyslog_lines() {
  local sum=0 off
  for p in 0 1 2 3; do
    off=$(kcat -b "$bootstrap" -Q -t "rsyslog-logs:$p:-1" 2>/dev/null | awk '{ print $NF }' | tail -1)
    sum=$((sum + ${off:-0}))
  done
  echo "$sum"
}
c0=$(cpu_s "$rpid"); t0=$(now)
append "$tmp/rsyslog/logs/app.log"
read -r r_secs r_got < <(wait_until rsyslog_lines "$lines" "$t0")
r_cpu=$(awk -v a="$c0" -v b="$(cpu_s "$rpid")" 'BEGIN { printf "%.2f", b - a }')
kill -TERM "$rpid"; wait "$rpid" 2>/dev/null || true

report() {  # name secs got target unit cpu
  awk -v n="$1" -v s="$2" -v g="$3" -v t="$4" -v u="$5" -v c="$6" -v b="$bytes" -v l="$lines" 'BEGIN {
    lost = (g >= t) ? "zero loss" : sprintf("INCOMPLETE: %d of %d %s", g, t, u)
    printf "%-8s %8.1f MB/s %10.0f lines/s  %6.2f CPU s/GB  %s\n", n, b / 1048576 / s, l / s, c / (b / 1073741824), lost }'
}
echo "tailing $SIZE_MB MB into Kafka (acks=all), one after the other:"
report sluice "$s_secs" "$s_got" "$bytes" bytes "$s_cpu"
report rsyslog "$r_secs" "$r_got" "$lines" lines "$r_cpu"
awk -v a="$s_secs" -v b="$r_secs" 'BEGIN { printf "ratio: sluice %.2fx rsyslog MB/s\n", b / a }'
