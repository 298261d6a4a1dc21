#!/bin/sh
# Runs every fuzzer built in BUILD_DIR/tests for SECONDS each, seeded from tests/fuzz/corpus/<name>/
# (name without the _fuzz suffix). New inputs go to a scratch directory, never into the committed
# corpus. Exits non-zero when a fuzzer crashes, leaks or trips a sanitizer; the reproducer is kept
# under BUILD_DIR/fuzz-artifacts/.
#
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz-XXXXXX")
trap 'rm -rf "$scratch"' EXIT

found=0
failed=""
for fuzzer in "$build"/tests/*_fuzz; do
  [ -x "$fuzzer" ] || continue
  found=$((found + 1))
  name=$(basename "$fuzzer")
  seeds="$here/corpus/${name%_fuzz}"
  work="$scratch/$name"
  mkdir -p "$work"
  if [ ! -d "$seeds" ]; then
    echo "warning: $name has no seed corpus at $seeds; starting from nothing" >&2
    seeds=""
  fi
  echo "== $name: ${seconds}s from ${seeds:-empty corpus}"
  # The first directory receives new inputs; the seed directory is only read.
  if "$fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$work" $seeds; then
    echo "== $name: ok"
  else
    echo "== $name: FAILED (reproducer in $artifacts)" >&2
    failed="$failed $name"
  fi
done

if [ "$found" -eq 0 ]; then
  echo "no fuzzers in $build/tests; configure with -DSLUICE_FUZZ=ON and build the 'fuzzers' target" >&2
  exit 1
fi
if [ -n "$failed" ]; then
  echo "fuzzers failed:$failed" >&2
  exit 1
fi
echo "all $found fuzzer(s) ran ${seconds}s without a crash"
