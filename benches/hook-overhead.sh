#!/bin/sh
# Warm per-hook overhead (instantiate + run an empty hook) and cold compile time of a typical hook,
# measured through the library (tests/tests/sandbox.rs: bench_hook_overhead) and through the CLI.
# Dependencies (wasmtime, cranelift) build at opt-level 2 even in the dev profile, so the numbers
# are representative. Usage: benches/hook-overhead.sh
set -eu
cd "$(dirname "$0")/.."
cargo build -q -p ws2i --bin ws2i
(cd guest-scripts && cargo build -q --release --target wasm32-wasip1 -p hostile)
cargo test -q -p ws2i-tests --test sandbox -- --ignored --nocapture bench_hook_overhead 2>/dev/null | grep '^|'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/rootfs/bin"
cp guest-scripts/target/wasm32-wasip1/release/empty.wasm "$tmp/rootfs/bin/"
export WS2I_CACHE="$tmp/cache"
n=20
./target/debug/ws2i exec "$tmp/rootfs" /bin/empty.wasm   # fills the cache
start=$(date +%s%N)
i=0
while [ $i -lt $n ]; do ./target/debug/ws2i exec "$tmp/rootfs" /bin/empty.wasm; i=$((i + 1)); done
end=$(date +%s%N)
echo "| \`ws2i exec\` of empty.wasm, whole process, disk cache hit (mean of $n) | $(( (end - start) / n / 1000000 )) ms |"
