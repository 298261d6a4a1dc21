#!/usr/bin/env bash
# The same log file tailed into the same Kafka cluster (librdkafka's mock, as a process) by sluice and by
# rsyslog (imfile in inotify mode + omkafka), one after the other in one run, both with acks=all,
# idempotence and lz4. Two phases, each tailer on its own file and topic:
#   growing: the tailer runs, then a writer appends SIZE_MB of 200-byte lines as fast as the disk takes
#            them; the time runs from the first append (on this machine the writer alone needs about
#            2 s a GB, which bounds this phase);
#   backlog: the file is written first, then the tailer starts; the time runs from its start.
# Each phase ends when Kafka has acknowledged the last line:
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

coproc MOCKP { exec "$MOCK" --brokers 1 --topic growing-logs:4 --topic backlog-logs:4 --topic rsyslog-growing:4 --topic rsyslog-backlog:4; }
pids+=("$MOCKP_PID")
read -r -u "${MOCKP[0]}" word bootstrap
[[ "$word" == BOOTSTRAP ]] || { echo "mock cluster did not start" >&2; exit 1; }

append() { dd if="$tmp/input.log" of="$1" bs=4M oflag=append conv=notrunc status=none; }

wait_until() {  # $1: a command printing progress, $2: target, $3: start time, $4: pid; prints "seconds reached"
  local t0=$3 prev=-1 stable=0 got
  while :; do
    kill -0 "$4" 2>/dev/null || { echo "the tailer (pid $4) exited; see $tmp (KEEP=1 keeps it)" >&2; break; }
    got=$($1)
    (( got >= $2 )) && break
    if (( got == prev )); then stable=$((stable + 1)); else stable=0; fi
    (( stable >= 100 )) && break
    prev=$got
    sleep 0.1
  done
  echo "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }') $got"
}

report() {  # name secs got target unit cpu mock_cpu
  awk -v n="$1" -v s="$2" -v g="$3" -v t="$4" -v u="$5" -v c="$6" -v m="$7" -v b="$bytes" -v l="$lines" 'BEGIN {
    lost = (g >= t) ? "zero loss" : sprintf("INCOMPLETE: %d of %d %s", g, t, u)
    gb = b / 1073741824
    printf "  %-8s %8.1f MB/s %10.0f lines/s  %6.2f CPU s/GB (mock Kafka %.2f)  %s\n", n, b / 1048576 / s, l / s, c / gb, m / gb, lost }'
}

# sluice inlet on its own directory and topic <phase>-logs; sets s_secs s_got s_cpu s_mock.
run_sluice() {
  local phase=$1 dir="$tmp/sluice-$1" admin spid c0 m0 t0
  admin=$(free_port)
  mkdir -p "$dir/logs"
  cat > "$dir/sluice.yaml" <<YAML
data_dir: $dir/data
admin: {listen: 127.0.0.1:$admin}
inlet:
  files:
    host: bench
    sources:
      - name: bench
        include: [$dir/logs/app.log]
bus:
  kafka:
    brokers: $bootstrap
    topic_prefix: $phase-
    partitions: 4
    producer_queue_bytes: 512MiB
    producer_properties: {compression.type: lz4}
YAML
  if [[ $phase == backlog ]]; then cp "$tmp/input.log" "$dir/logs/app.log"; else : > "$dir/logs/app.log"; fi
  m0=$(cpu_s "$MOCKP_PID"); t0=$(now)
  "$SLUICE" inlet -c "$dir/sluice.yaml" > "$dir/sluice.log" 2>&1 &
  spid=$!; pids+=("$spid")
  for _ in $(seq 100); do curl -sf "127.0.0.1:$admin/api/v0/healthcheck" >/dev/null && break; sleep 0.05; done
  if [[ $phase == growing ]]; then m0=$(cpu_s "$MOCKP_PID"); t0=$(now); append "$dir/logs/app.log"; fi
  # The checkpointable offsets of every tailed file, from /api/v0/status (cheap to poll).
  eval "acked_$phase() { curl -sf 127.0.0.1:$admin/api/v0/status | grep -o '\"acked_offset\":[0-9]*' | awk -F: '{ s += \$2 } END { printf \"%d\", s }'; }"
  read -r s_secs s_got < <(wait_until "acked_$phase" "$bytes" "$t0" "$spid")
  s_cpu=$(cpu_s "$spid")
  s_mock=$(awk -v a="$m0" -v b="$(cpu_s "$MOCKP_PID")" 'BEGIN { printf "%.2f", b - a }')
  kill -TERM "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
}

# rsyslogd on its own directory and topic rsyslog-<phase>; sets r_secs r_got r_cpu r_mock.
run_rsyslog() {
  local phase=$1 dir="$tmp/rsyslog-$1" rpid m0 t0
  mkdir -p "$dir/work" "$dir/logs"
  cat > "$dir/rsyslog.conf" <<CONF
global(workDirectory="$dir/work" maxMessageSize="64k")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="raw" type="string" string="%msg%")
ruleset(name="tokafka" queue.type="LinkedList" queue.size="1000000" queue.dequeueBatchSize="4096") {
  action(type="omkafka" broker=["$bootstrap"] topic="rsyslog-$phase" template="raw" partitions.auto="on"
         confParam=["acks=all", "enable.idempotence=true", "compression.type=lz4", "linger.ms=5",
                    "batch.num.messages=100000", "batch.size=8000000", "queue.buffering.max.messages=2000000",
                    "queue.buffering.max.kbytes=524288"])
}
input(type="imfile" File="$dir/logs/app.log" Tag="app" ruleset="tokafka" freshStartTail="off")
CONF
  if [[ $phase == backlog ]]; then cp "$tmp/input.log" "$dir/logs/app.log"; else : > "$dir/logs/app.log"; fi
  m0=$(cpu_s "$MOCKP_PID"); t0=$(now)
  rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslog.pid" > "$dir/rsyslog.out" 2>&1 &
  rpid=$!; pids+=("$rpid")
  if [[ $phase == growing ]]; then sleep 1; m0=$(cpu_s "$MOCKP_PID"); t0=$(now); append "$dir/logs/app.log"; fi
  # The end offsets of its topic's partitions, in one query.
  eval "lines_$phase() { kcat -b $bootstrap -Q -t rsyslog-$phase:0:-1 -t rsyslog-$phase:1:-1 -t rsyslog-$phase:2:-1 -t rsyslog-$phase:3:-1 2>/dev/null | awk '\$3 == \"offset\" { s += \$4 } END { printf \"%d\", s }'; }"
  read -r r_secs r_got < <(wait_until "lines_$phase" "$lines" "$t0" "$rpid")
  r_cpu=$(cpu_s "$rpid")
  r_mock=$(awk -v a="$m0" -v b="$(cpu_s "$MOCKP_PID")" 'BEGIN { printf "%.2f", b - a }')
  kill -TERM "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true
}

for phase in growing backlog; do
  run_sluice "$phase"
  run_rsyslog "$phase"
  echo "$phase: $SIZE_MB MB into Kafka (acks=all), one after the other:"
  report sluice "$s_secs" "$s_got" "$bytes" bytes "$s_cpu" "$s_mock"
  report rsyslog "$r_secs" "$r_got" "$lines" lines "$r_cpu" "$r_mock"
  awk -v a="$s_secs" -v b="$r_secs" 'BEGIN { printf "  ratio: sluice %.2fx rsyslog MB/s\n", b / a }'
done
