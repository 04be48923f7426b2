#!/bin/sh
# Layer measurements: pack throughput per compression, base unpack, checkout
# strategies, diff; then `tar | gzip` / `tar | zstd` on the same kind of tree for
# comparison. Prints markdown tables. Usage: benches/layers.sh [MB]  (default 300)
# Not part of CI. Uses the dev profile (dependencies are built with opt-level 2,
# which is where the per-byte work happens).
set -eu
cd "$(dirname "$0")/.."
MB=${1:-300}
DIR=${WS2I_BENCH_DIR:-/var/tmp}
WS2I_BENCH_MB=$MB WS2I_BENCH_DIR=$DIR cargo test -q -p ws2i-tests --test layers bench_layers -- --ignored --nocapture 2>&1 \
  | grep -E '^(\||tree:)'

# Reference: the same shape of tree through GNU tar and the usual compressors.
T=$(mktemp -d "$DIR/ws2i-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
python3 benches/gen-tree.py "$T/tree" "$MB"
sync
echo
echo "| reference (same-shaped tree)                 |    time   |  throughput  |"
echo "|----------------------------------------------|-----------|--------------|"
for c in "cat" "gzip -6" "zstd -3 -q" "pigz -6"; do
  command -v ${c%% *} >/dev/null 2>&1 || continue
  s=$(date +%s.%N)
  tar -C "$T/tree" -cf - . | $c > /dev/null
  e=$(date +%s.%N)
  python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print('| %-44s | %7.2f s | %7.0f MB/s |' % ('tar | '+sys.argv[4], t, int(sys.argv[3])*1.048576/t))" "$s" "$e" "$MB" "$c"
done
