#!/usr/bin/env bash
# Prints, after a failed ctest run, each failed test's assertion messages (gtest "Failure" blocks, cut
# short) so that the end of a long CI log says what went wrong, not only which test.
# Usage: scripts/test-failures.sh BUILD_DIR
set -u
build_dir=${1:?usage: scripts/test-failures.sh BUILD_DIR}
log="$build_dir/Testing/Temporary/LastTest.log"
failed="$build_dir/Testing/Temporary/LastTestsFailed.log"
[[ -f $failed && -f $log ]] || exit 0

echo
echo "==== what the failed tests said (full output above, and in $log) ===="
while IFS=: read -r _ name; do
  name=${name%% *}
  echo "---- $name"
  # The test's section of LastTest.log, from its "Testing:" line to its "end time" line; each failure
  # block at most 10 lines, each line at most 400 characters, at most 40 lines per test (the CI report
  # shows only the end of the log).
  awk -v test="$name" '
    $0 ~ /^[0-9]+\/[0-9]+ Testing: / { split(substr($0, index($0, ": ") + 2), words, " "); inside = (words[1] == test) }
    !inside { next }
    /: Failure$/ { left = 10 }
    /^\[  FAILED  \]|^\[ RUN|Test time =|^Test (Failed|Passed)|Timeout|Exception|\*\*\*/ { print substr($0, 1, 400); next }
    left > 0 { print substr($0, 1, 400); left-- }
  ' "$log" | head -n 40
done < "$failed"
