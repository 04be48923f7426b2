#!/usr/bin/env bash
# The whole example chain of examples/okd-pipeline (builder → app → runtime image), timed:
# `ws2i apply` on a store holding only ws2i/go:latest, then a one-line commit in the app's
# repository and `ws2i start-build go-hello-world-appimage --wait` (the app and, through its
# ImageChange trigger, the runtime image rebuild). There is no local OKD to compare with; the
# figures are for the README. Run it once, not in a loop (2 shared cores).
#
#   benches/okd-pipeline.sh          WS2I=<binary> (default target/debug/ws2i)
#
# WS2I_CACHE is kept between runs (compiled wasm modules, unpacked layers); an empty one adds
# the one-time Cranelift compile of compile.wasm (about a minute).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
W=${WS2I:-$here/target/debug/ws2i}
WORK=${WORK:-/tmp/ws2i-okd-pipeline-bench}
rm -rf "$WORK/store" "$WORK/repos" "$WORK/yaml" && mkdir -p "$WORK/yaml"
export WS2I_HOME=$WORK/store WS2I_CACHE=${WS2I_CACHE:-$WORK/cache}
"$here/guest-scripts/go/build" >/dev/null
(cd "$here/guest-scripts" && "$W" --quiet bud -t ws2i/go:latest -f go/Containerfile . >/dev/null)
for r in golang-builder:builder go-hello-world:app; do
  d=$WORK/repos/${r%%:*}
  mkdir -p "$d" && cp -r "$here/examples/okd-pipeline/${r##*:}/." "$d"
  git -C "$d" init -q && git -C "$d" add . && git -C "$d" -c user.name=b -c user.email=b@e commit -qm first
done
for f in imagestreams.yaml buildconfigs.yaml; do
  sed "s|/tmp/ws2i-okd-pipeline|$WORK/repos|" "$here/examples/okd-pipeline/$f" >"$WORK/yaml/$f"
done
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }
now() { date +%s.%N; }
t0=$(now); "$W" --quiet apply -f "$WORK/yaml"; t1=$(now); clean=$(secs "$t0" "$t1")
sed -i 's/Hello World!/Hello again!/' "$WORK/repos/go-hello-world/main.go"
git -C "$WORK/repos/go-hello-world" -c user.name=b -c user.email=b@e commit -qam "one line"
t0=$(now); "$W" --quiet start-build go-hello-world-appimage --wait >/dev/null; t1=$(now); commit=$(secs "$t0" "$t1")
"$W" get builds
printf '%-52s %8s\n' "okd-pipeline chain" "seconds"
printf '%-52s %8s\n' "apply on an empty store (3 builds)" "$clean"
printf '%-52s %8s\n' "one-line commit + start-build --wait (2 builds)" "$commit"
