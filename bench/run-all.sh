#!/usr/bin/env bash
# Runs every Google Benchmark binary and the peer comparison scripts; prints their figures.
# Usage: bench/run-all.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
for b in "$build"/bench/*_bench; do
  [[ -x "$b" ]] || continue
  echo "== $(basename "$b")"
  "$b" --benchmark_counters_tabular=true
done
for s in "$here"/*.sh; do
  [[ "$(basename "$s")" == run-all.sh ]] && continue
  echo "== $(basename "$s")"
  "$s" "$build"
done
