# Shared by the throughput scripts (sourced): ports, the clock, a process's CPU, page faults and peak memory, and the
# wait for a sluice instance's first consumed message.
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
minflt() { [[ -r /proc/$1/stat ]] && sed 's/.*) //' "/proc/$1/stat" | awk '{ print $8 }' || echo 0; }
cpu_s() { [[ -r /proc/$1/stat ]] && sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }' || echo 0; }
now() { date +%s.%N; }
# Peak resident memory of a process, in MiB.
peak_rss_mib() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# CPU seconds of the process's threads by owner: sluice's own and librdkafka's (the names sluice gives its
# threads: "job:*", "sink:*", ...; "rdk:*") and the embedded store's (every other name: chDB's insert
# pipeline, merges, pools). chDB's work inside an insert call runs on the calling "sink:*" thread.
cpu_split() {
  # One pass over every thread (grep -s: a thread may end meanwhile), so that the reading is quick and
  # can be taken right beside the process total.
  grep -sH "" /proc/"$1"/task/*/comm /proc/"$1"/task/*/stat | awk -v hz="$(getconf CLK_TCK)" '
    { split($0, p, "/"); tid = p[5]; line = substr($0, index($0, ":") + 1) }
    p[6] ~ /^comm:/ { name[tid] = line; next }
    { sub(/.*\) /, "", line); split(line, f, " "); ticks[tid] = f[12] + f[13] }
    END {
      for (t in ticks) {
        if (name[t] ~ /^(sluice|rdk:|job:|sink:|kafka-|admin-|jobs-|etcd-|spool-|templates)/) own += ticks[t]; else store += ticks[t]
      }
      printf "%.2f %.2f\n", own / hz, store / hz
    }'
}
# CPU seconds and minor page faults of the process's threads, summed by thread name, largest first (for
# THREADS=1). Fresh memory is expensive where the kernel must clear each page (and on a VM, the host back it).
cpu_by_thread() {
  local hz; hz=$(getconf CLK_TCK)
  for t in /proc/$1/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' < "$t/comm" 2>/dev/null)" "$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{ print $12 + $13, $8 }')"
  done | awk -v hz="$hz" '{ s[$1] += $2; f[$1] += $3; n[$1]++ }
    END { for (k in s) if (s[k] > 0) printf "    %-18s %3d threads %7.2f s %9d page faults\n", k, n[k], s[k] / hz, f[k] }' |
    sort -k4 -nr
}
# Waits (up to 6 s) until the sluice instance whose admin port is $1 has consumed a first message: joining
# the group (the mock cluster's initial rebalance delay is 3 s) is start-up, not throughput.
wait_for_first_consumed() {
  local started; started=$(now)
  for _ in $(seq 600); do
    (( $(curl -sf "127.0.0.1:$1/metrics" 2>/dev/null | awk '/^sluice_kafka_consumed_total/ { s += $2 } END { printf "%d", s }') > 0 )) && break
    sleep 0.01
  done
  echo "group joined and first message consumed $(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') s after sluice answered"
}
