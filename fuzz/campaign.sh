#!/usr/bin/env bash
# One fuzz campaign per TARGET (default: all of them): 10 million executions or 30 minutes,
# whichever comes first, on the target's corpus; prints a row of docs/fuzzing.md's table each.
#
#   fuzz/campaign.sh [TARGET...]      RUNS=10000000 SECS=1800 (override to shorten)
#
# Needs `cargo install cargo-fuzz`. New inputs the fuzzer keeps are added to corpus/TARGET;
# a crash leaves artifacts/TARGET/crash-* and a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-10000000} SECS=${SECS:-1800}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
for t in "${targets[@]}"; do
  log=$(mktemp)
  start=$(date +%s)
  status=0
  cargo fuzz run -s none -O "$t" "corpus/$t" -- -runs="$RUNS" -max_total_time="$SECS" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  result=$([ "$status" = 0 ] && echo "no crash" || echo "FAILED (exit $status, see $log)")
  printf '| `%s` | %s | %s s | %s |\n' "$t" "${execs:-?}" "$secs" "$result"
  [ "$status" = 0 ] && rm -f "$log"
done
