#!/usr/bin/env bash
# A graph node down while metrics flow, against sluice with the shipped config/transfer.yaml: Open-Falcon
# values are pushed to /api/push at $RATE values/s for $DURATION s over keep-alive connections; graph-01
# (Go net/rpc/jsonrpc peer) is down for the first $OUTAGE s, then comes back. Prints what graph-00 had
# received when the outage ended (it must not wait for graph-01), what each node received in the end
# against what Open-Falcon's ring assigns it (zero loss means equal), items out of order per series,
# sluice's peak RSS and the peak bytes spooled to disk.
#   bench/transfer-outage.sh [BUILD_DIR]     env: RATE (100000), DURATION (80), OUTAGE (60), SERIES (20000)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
RATE=${RATE:-100000}
DURATION=${DURATION:-80}
OUTAGE=${OUTAGE:-60}
SERIES=${SERIES:-20000}
SLUICE="$BUILD_DIR/sluice"
[[ -x "$SLUICE" ]] || { echo "missing $SLUICE: cmake --build $BUILD_DIR --target sluice" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [[ -n "${KEEP:-}" ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
count() { awk '/^COUNT / { c = $2 } END { sub("graph=", "", c); print c + 0 }' "$1"; }
out_of_order() { awk '/^COUNT / { o = $4 } END { sub("outoforder=", "", o); print o + 0 }' "$1"; }
metric() { curl -sf "http://$admin/metrics" | awk -v m="$1" -v f="$2" 'index($1, m "{") == 1 && index($1, f) { s += $2 } END { printf "%.0f", s + 0 }'; }

# The graph/judge peer of the tests, built with Go's standard library only.
cache="${TMPDIR:-/tmp}/sluice-go-$(id -u)"
mkdir -p "$cache/gocache"
GOCACHE="$cache/gocache" HOME="$cache" GO111MODULE=off CGO_ENABLED=0 GOFLAGS= \
  go build -o "$tmp/falcon_peer" tests/fixtures/go/falcon_peer.go
start_peer() {  # $1 name, $2 port
  "$tmp/falcon_peer" -listen "127.0.0.1:$2" -mode count > "$tmp/$1.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q '^LISTENING' "$tmp/$1.out" && break; sleep 0.05; done
}
up_port=$(free_port); down_port=$(free_port); http_port=$(free_port); admin="127.0.0.1:$(free_port)"
start_peer graph-00 "$up_port"

SLUICE_DATA_DIR="$tmp/data" SLUICE_ADMIN_LISTEN="$admin" \
  SLUICE_FALCON_HTTP_LISTEN="127.0.0.1:$http_port" SLUICE_FALCON_RPC_LISTEN="127.0.0.1:$(free_port)" \
  SLUICE_FALCON_SOCKET_LISTEN="127.0.0.1:$(free_port)" SLUICE_GRAPHITE_LISTEN="127.0.0.1:$(free_port)" \
  SLUICE_GRAPH_CLUSTER="{\"graph-00\":\"127.0.0.1:$up_port\",\"graph-01\":\"127.0.0.1:$down_port\"}" \
  "$SLUICE" run -c config/transfer.yaml > "$tmp/sluice.log" 2>&1 &
sluice_pid=$!
pids+=("$sluice_pid")
for _ in $(seq 300); do curl -sf "http://$admin/api/v0/healthcheck" >/dev/null && break; sleep 0.1; done

# The pusher: $RATE values/s in bodies of 1000, each series' values one step apart, over 4 keep-alive
# connections; it also prints how many values each node is owed by Open-Falcon's ring (from the spec).
cat > "$tmp/push.py" <<'EOF'
import http.client, sys, threading, time, zlib
port, rate, duration, series = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
nodes = sorted(["graph-00", "graph-01"])
ring = {}
for n in nodes:
    for i in range(500):
        ring[zlib.crc32(f"{i}{n}".encode())] = n
points = sorted(ring)
import bisect
def node_for(key):
    h = zlib.crc32(key.encode())
    i = bisect.bisect_right(points, h)
    return ring[points[i % len(points)]]
owner = [node_for(f"host-{s % 500}/app.metric.{s}/idc=dc{s % 3}") for s in range(series)]
per_body = 1000
bodies_per_s = rate / per_body
start = time.time()
owed = {n: 0 for n in nodes}
sent = [0]
lock = threading.Lock()
def worker(k, workers):
    c = http.client.HTTPConnection("127.0.0.1", port)
    n = k
    while True:
        due = start + n / bodies_per_s
        if due - start >= duration:
            break
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        first = n * per_body
        parts = []
        for j in range(first, first + per_body):
            s = j % series
            ts = 1700000000 + 60 * (j // series)
            parts.append('{"endpoint":"host-%d","metric":"app.metric.%d","value":%d,"step":60,"counterType":"GAUGE","tags":"idc=dc%d","timestamp":%d}' % (s % 500, s, j, s % 3, ts))
        body = "[" + ",".join(parts) + "]"
        while True:
            c.request("POST", "/api/push", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status == 200:
                break
            time.sleep(0.5)  # 503 while the bus is full: retry, as agents do
        with lock:
            sent[0] += per_body
            for j in range(first, first + per_body):
                owed[owner[j % series]] += 1
        n += workers
workers = 4
threads = [threading.Thread(target=worker, args=(k, workers)) for k in range(workers)]
for t in threads: t.start()
for t in threads: t.join()
print("sent=%d seconds=%.1f owed_graph-00=%d owed_graph-01=%d" % (sent[0], time.time() - start, owed["graph-00"], owed["graph-01"]))
EOF
python3 "$tmp/push.py" "$http_port" "$RATE" "$DURATION" "$SERIES" > "$tmp/push.out" &
push_pid=$!
pids+=("$push_pid")
peak_rss=0; peak_spool=0
t0=$(date +%s)
while (( $(date +%s) - t0 < OUTAGE )); do
  r=$(rss_kb "$sluice_pid"); (( r > peak_rss )) && peak_rss=$r
  s=$(metric sluice_spool_disk_bytes graph-01); (( s > peak_spool )) && peak_spool=$s
  sleep 1
done
up_at_outage_end=$(count "$tmp/graph-00.out")
spooled_items=$(metric sluice_spool_queued_items graph-01)
start_peer graph-01 "$down_port"
while kill -0 "$push_pid" 2>/dev/null; do
  r=$(rss_kb "$sluice_pid"); (( r > peak_rss )) && peak_rss=$r
  sleep 1
done
wait "$push_pid"
read -r sent_line < "$tmp/push.out"
owed0=$(sed -n 's/.*owed_graph-00=\([0-9]*\).*/\1/p' <<< "$sent_line")
owed1=$(sed -n 's/.*owed_graph-01=\([0-9]*\).*/\1/p' <<< "$sent_line")
for _ in $(seq 600); do
  (( $(count "$tmp/graph-00.out") >= owed0 && $(count "$tmp/graph-01.out") >= owed1 )) && break
  sleep 0.5
done
got0=$(count "$tmp/graph-00.out"); got1=$(count "$tmp/graph-01.out")
echo "pushed: $sent_line"
echo "outage: graph-01 down ${OUTAGE}s; graph-00 had $up_at_outage_end items when it ended (about $((owed0 * OUTAGE / DURATION)) were sent for it by then); graph-01's queue held $spooled_items items (peak spool $((peak_spool / 1024 / 1024)) MiB on disk)"
echo "graph-00: received $got0 of $owed0, out of order $(out_of_order "$tmp/graph-00.out")"
echo "graph-01: received $got1 of $owed1, out of order $(out_of_order "$tmp/graph-01.out")"
echo "sluice peak RSS: $((peak_rss / 1024)) MiB"
if (( got0 == owed0 && got1 == owed1 )); then echo "result: nothing lost"; else echo "result: LOSS"; exit 1; fi
