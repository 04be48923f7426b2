#!/usr/bin/env bash
# Every row of issue 12, side by side in ONE run, against the real peer on the same machine:
#
#   serve   ws2i run -p (static-web, one fresh instance per request) vs nginx (one worker),
#           wrk -t1 -c16, server pinned to the last core and wrk to core 0; a small page
#           and a 100 KB file
#   site    a 1000-file 10 MB site: ws2i build with static-web (copy + Markdown + gzip + brotli
#           + ETags) vs buildah bud (--isolation chroot, vfs) COPY + RUN gzip -6 on a busybox
#           base; the same source again (buildah's layer cache vs ws2i --incremental); copy only
#           (WEB_PRECOMPRESS=0 vs a bare COPY)
#   go      examples/go-web-server: ws2i build with ws2i/go vs native `go build`, clean/unchanged
#   layers  packing a 10k-file tree (default 313 MB): ws2i's pack_dir vs `tar | zstd -3 -T0`
#           and `tar | pigz -6`
#   push    the same image to a loopback docker-registry: ws2i push vs skopeo copy
#
# Prints one markdown table: work | peer | ws2i | ratio | goal. For times the ratio is
# ws2i / peer (< 1: ws2i is faster); for requests/s it is ws2i / nginx (> 1: ws2i is faster).
# Not a test: run it by hand on a quiet machine. Installs its tools via scripts/setup.
#
#   benches/compare.sh                 every row
#   ROWS="serve layers" benches/compare.sh
#   WS2I=path/to/ws2i                  a prebuilt release binary (default: cargo build --release)
#   LAYER_MB=313  DUR=10s
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. benches/lib.sh
ROWS=${ROWS:-"serve site go layers push"}
DUR=${DUR:-10s}
LAYER_MB=${LAYER_MB:-313}
want() { [[ " $ROWS " == *" $1 "* ]]; }

WS2I_SETUP_BENCH=1 scripts/setup >&2
target=${CARGO_TARGET_DIR:-$here/target}
if [ -z "${WS2I:-}" ]; then
  cargo build -q --release -p ws2i --bin ws2i
  WS2I=$target/release/ws2i
fi
if want layers && [ -z "${WS2I_PACK:-}" ]; then
  cargo build -q --release -p ws2i --example pack-bench
  WS2I_PACK=$target/release/examples/pack-bench
fi
W=$WS2I
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/ws2i-compare.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -d "$WORK/buildah" ]; then
    buildah_ rm --all >/dev/null 2>&1 || true
    buildah_ rmi --all --force >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export WS2I_HOME=$WORK/home WS2I_CACHE=$WORK/cache
cores=$(nproc)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
last=$((cores - 1))
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
say() { echo "compare: $*" >&2; }
rows=()
# row WORK PEER_LABEL PEER_VALUE WS2I_VALUE KIND(time|rate) GOAL
# (a value may carry a note after a space, e.g. "51234 (0.29ms)"; the ratio uses the number)
row() {
  local ratio p=${3%% *} w=${4%% *}
  if [ "$5" = rate ]; then ratio=$(python3 -c "print(f'{float($w)/float($p):.2f}x nginx')")
  else ratio=$(python3 -c "print(f'{float($w)/float($p):.2f}x')"); fi
  rows+=("| $1 | $2: $3 | $4 | $ratio | $6 |")
}
timeit() { local t0; t0=$(now); "$@" >/dev/null 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; return 1; }; secs "$t0" "$(now)"; }

say "building the guests and the static-web builder"
guest-scripts/build --hooks-only >/dev/null
"$W" --quiet bud -t ws2i/static-web:latest -f guest-scripts/static-web/Containerfile guest-scripts >/dev/null

# ---------------------------------------------------------------- serve
if want serve; then
  say "serve: static-web vs nginx"
  bench_site "$WORK/site"
  "$W" --quiet build "$WORK/site" ws2i/static-web bench-site >/dev/null
  taskset -c "$last" "$W" run bench-site -p 127.0.0.1:0:8080 2>"$WORK/run.log" &
  pids+=($!)
  sw_port=$(bench_serve_port "$WORK/run.log")
  ng_port=$(bench_free_port)
  mkdir -p "$WORK/nginx"
  # nginx's usual static-file settings; `user` matters only as root (workers would drop to nobody).
  cat >"$WORK/nginx/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server { listen 127.0.0.1:$ng_port; root $WORK/site; }
}
EOF
  taskset -c "$last" /usr/sbin/nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
  pids+=($!)
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$ng_port/index.html" 2>/dev/null && break; sleep 0.1; done
  for port in "$sw_port" "$ng_port"; do
    cmp -s <(curl -fsS "http://127.0.0.1:$port/big.js") "$WORK/site/big.js" \
      || { echo "compare.sh: port $port does not serve big.js as is" >&2; exit 1; }
  done
  rps() { # port path -> "req/s p50"
    taskset -c 0 wrk -t1 -c16 -d"$DUR" --latency "http://127.0.0.1:$1$2" |
      awk '/^Requests\/sec/ {r=$2} /^ +50%/ {p=$2} END {print r, p}'
  }
  for f in index.html big.js; do
    read -r nr np < <(rps "$ng_port" "/$f")
    read -r sr sp < <(rps "$sw_port" "/$f")
    row "serve /$f ($(stat -c %s "$WORK/site/$f") B), req/s (p50)" "nginx 1 worker" "$nr ($np)" "$sr ($sp)" rate ">= 0.5x nginx"
  done
fi

# ---------------------------------------------------------------- site
buildah_() { buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver vfs "$@"; }
if want site; then
  say "site: 1000-file site, ws2i static-web vs buildah"
  python3 - "$WORK/big-site" <<'EOF'
import os, sys
root = sys.argv[1]
for i in range(1000):
    d = os.path.join(root, f"section-{i % 20:02d}")
    os.makedirs(d, exist_ok=True)
    para = f"<p>Page {i} of the generated site: some text that compresses well, number {i * 7919 % 10007}. </p>\n"
    body = "".join(para.replace("Page", f"Page {j}") for j in range(10240 // len(para)))
    open(os.path.join(d, f"page-{i:04d}.html"), "w").write(f"<!DOCTYPE html><title>Page {i}</title>\n" + body)
EOF
  # A busybox base image made here (no registry needed): busybox-static and its applets.
  mkdir -p "$WORK/bb/bin" "$WORK/buildah"
  cp /bin/busybox "$WORK/bb/bin/busybox"
  for a in sh gzip find xargs; do ln -s busybox "$WORK/bb/bin/$a"; done
  ctr=$(buildah_ from scratch)
  buildah_ copy "$ctr" "$WORK/bb" / >/dev/null
  buildah_ commit -q "$ctr" localhost/bench-busybox >/dev/null
  buildah_ rm "$ctr" >/dev/null
  ctx=$WORK/bctx && mkdir -p "$ctx" && cp -r "$WORK/big-site" "$ctx/site"
  printf 'FROM localhost/bench-busybox\nCOPY site /srv/site\nRUN find /srv/site -type f -exec gzip -6 -k {} +\n' >"$ctx/Containerfile.gz"
  printf 'FROM localhost/bench-busybox\nCOPY site /srv/site\n' >"$ctx/Containerfile.copy"
  bud() { buildah_ bud --isolation chroot --layers -q -t "$1" -f "$ctx/$2" "$ctx"; }
  b_clean=$(timeit bud site-gz Containerfile.gz)
  b_cached=$(timeit bud site-gz Containerfile.gz)
  b_copy=$(timeit bud site-copy Containerfile.copy)
  w_clean=$(timeit "$W" --quiet build "$WORK/big-site" ws2i/static-web big-site)
  w_again=$(timeit "$W" --quiet build "$WORK/big-site" ws2i/static-web big-site --incremental)
  w_copy=$(timeit "$W" --quiet build "$WORK/big-site" ws2i/static-web big-site-copy -e WEB_PRECOMPRESS=0)
  row "1000-file 10 MB site, clean, s" "buildah COPY + gzip -6" "$b_clean" "$w_clean" time "<= 0.6x"
  row "the same, source unchanged, s" "buildah layer cache" "$b_cached" "$w_again" time "<= 0.2x"
  row "the same, copy only, s" "buildah COPY" "$b_copy" "$w_copy" time "<= 0.5x"
fi

# ---------------------------------------------------------------- go
if want go; then
  say "go: go-web-server, ws2i ws2i/go vs native go build"
  guest-scripts/go/build >/dev/null
  staged=$here/guest-scripts/target/hooks/go
  GOROOT=$(cat "$staged/GOROOT")
  (cd guest-scripts && "$W" --quiet bud -t ws2i/go:latest -f go/Containerfile . >/dev/null)
  src=$here/examples/go-web-server
  gobuild() { "$W" --quiet build "$src" ws2i/go:latest "$@"; }
  w_first=$(timeit gobuild web-first --runtime-image scratch)
  w_clean=$(timeit gobuild web --runtime-image scratch)
  gobuild web-stage >/dev/null 2>&1
  w_incr=$(timeit gobuild web-stage --incremental)
  mkdir -p "$WORK/native" && cp -r "$src" "$WORK/native/src"
  cp -r "$(cat "$staged/GOCACHE")" "$WORK/native/gocache"
  native() {
    (cd "$WORK/native/src" && env -i PATH="$GOROOT/bin:/usr/bin:/bin" HOME="$WORK" GOROOT="$GOROOT" \
      GOCACHE="$WORK/native/gocache" GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0 GOOS=linux GOARCH=amd64 \
      go build -trimpath -ldflags="-s -w -buildid=" -o "$WORK/native/app" .)
  }
  n_clean=$(timeit native)
  n_incr=$(timeit native)
  row "go-web-server, clean, s (first build on an empty cache: ${w_first} s)" "native go build" "$n_clean" "$w_clean" time "-"
  row "go-web-server, unchanged, s" "native go build, warm GOCACHE" "$n_incr" "$w_incr" time "-"
fi

# ---------------------------------------------------------------- layers
if want layers || want push; then
  say "layers: generating a ${LAYER_MB} MB, 10k-file tree"
  python3 benches/gen-tree.py "$WORK/tree" "$LAYER_MB"
  sync
fi
if want layers; then
  say "layers: packing"
  peer() { tar -C "$WORK/tree" -cf - . | $1 >/dev/null; }
  cat "$WORK/tree"/d000/* >/dev/null
  z_peer=$(timeit peer "zstd -3 -T0 -q")
  z_ws2i=$(timeit "$WS2I_PACK" zstd "$WORK/tree")
  g_peer=$(timeit peer "pigz -6")
  g_ws2i=$(timeit "$WS2I_PACK" gzip "$WORK/tree")
  row "pack ${LAYER_MB} MB / 10k files, zstd, s" "tar | zstd -3 -T0" "$z_peer" "$z_ws2i" time "<= 1x"
  row "pack ${LAYER_MB} MB / 10k files, gzip, s" "tar | pigz -6" "$g_peer" "$g_ws2i" time "<= 1x"
fi

# ---------------------------------------------------------------- push
if want push; then
  say "push: ws2i push vs skopeo copy to a loopback registry"
  ctx=$WORK/pctx && mkdir -p "$ctx" && cp -al "$WORK/tree" "$ctx/tree"
  printf 'FROM scratch\nCOPY tree /data\n' >"$ctx/Containerfile"
  "$W" --quiet bud -t push-me:latest -f "$ctx/Containerfile" "$ctx" >/dev/null
  "$W" --quiet copy push-me:latest "oci:$WORK/layout:img" >/dev/null
  registry() { # dir -> port (registry started in the background)
    local port; port=$(bench_free_port)
    mkdir -p "$1/data"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$1/data" "$port" >"$1/config.yml"
    docker-registry serve "$1/config.yml" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break; sleep 0.1; done
    echo "$port"
  }
  r1=$(registry "$WORK/reg1"); r2=$(registry "$WORK/reg2")
  s_push=$(timeit skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:img" "docker://127.0.0.1:$r1/bench/img:latest")
  w_push=$(timeit "$W" --quiet push push-me:latest "docker://127.0.0.1:$r2/bench/img:latest")
  row "push a ${LAYER_MB} MB image to a loopback registry, s" "skopeo copy" "$s_push" "$w_push" time "-"
fi

echo
echo "benches/compare.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)), kernel $(uname -r), load average at the start: $load0"
echo "ws2i: $("$W" --version 2>/dev/null || echo "$W"), git $(git -C "$here" rev-parse --short HEAD)"
echo
echo "| work | peer | ws2i | ratio | goal |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
