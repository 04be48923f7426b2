#!/usr/bin/env bash
# The static-web builder, measured (run it by hand, once; it is not a test):
#  1. requests per second of its `run` hook (a wasi:http component served by
#     `ws2i run -p`, one instance per request) against Debian's nginx serving
#     the same files, with wrk on loopback: a small page and a ~100 KB file;
#  2. the build time of a generated 1000-file site, clean and incremental
#     (one file changed).
# Needs: wrk, nginx (/usr/sbin/nginx, run as this user with a temp config),
# the rust wasm targets (guest-scripts/build). Usage: benches/static-web.sh
# WS2I=path/to/ws2i picks the binary (default target/debug/ws2i, built here:
# its dependencies - wasmtime, hyper, tokio - are optimised even in the dev profile).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. benches/lib.sh
for tool in wrk /usr/sbin/nginx; do
  command -v "$tool" >/dev/null || { echo "static-web.sh: $tool is missing (scripts/setup installs it)" >&2; exit 1; }
done
if [ -z "${WS2I:-}" ]; then
  cargo build -q -p ws2i --bin ws2i
  WS2I=$here/target/debug/ws2i
fi
W=$WS2I
WORK=$(mktemp -d /tmp/ws2i-static-web-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
export WS2I_HOME=$WORK/home WS2I_CACHE=$WORK/cache

guest-scripts/build --hooks-only >/dev/null
"$W" --quiet bud -t ws2i/static-web:latest -f guest-scripts/static-web/Containerfile guest-scripts >/dev/null

# The site: hello-site plus a ~100 KB JavaScript file.
bench_site "$WORK/site"
"$W" --quiet build "$WORK/site" ws2i/static-web bench-site >/dev/null

# static-web, on a free port.
"$W" run bench-site -p 127.0.0.1:0:8080 2>"$WORK/run.log" &
pids+=($!)
sw_port=$(bench_serve_port "$WORK/run.log")

# nginx on the same source files (hello-site's files are served unchanged by static-web).
ng_port=$(bench_free_port)
mkdir -p "$WORK/nginx"
# `user` matters only when this runs as root (nginx's workers would otherwise
# drop to nobody, who cannot read the mktemp dir); nginx ignores it otherwise.
cat >"$WORK/nginx/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$ng_port;
    root $WORK/site;
  }
}
EOF
/usr/sbin/nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$ng_port/index.html" 2>/dev/null && break; sleep 0.1; done

for port in "$sw_port" "$ng_port"; do
  cmp -s <(curl -fsS "http://127.0.0.1:$port/big.js") "$WORK/site/big.js" \
    || { echo "static-web.sh: port $port does not serve big.js as is" >&2; exit 1; }
done

bench() { # port path [header] -> "req/s transfer/s"
  local args=(-t2 -c32 -d10s)
  [ -n "${3:-}" ] && args+=(-H "$3")
  wrk "${args[@]}" "http://127.0.0.1:$1$2" | awk '/^Requests\/sec/ {r=$2} /^Transfer\/sec/ {t=$2} END {print r, t}'
}
size() { stat -c %s "$WORK/site/$1"; }
echo "wrk -t2 -c32 -d10s on loopback (2 shared cores); static-web = ws2i run -p (one wasm instance per request)"
echo
printf '| server | file | bytes | requests/s | transfer/s |\n|---|---|---|---|---|\n'
for f in index.html big.js; do
  read -r r t < <(bench "$sw_port" "/$f"); printf '| static-web | /%s | %s | %s | %s |\n' "$f" "$(size "$f")" "$r" "$t"
  read -r r t < <(bench "$ng_port" "/$f"); printf '| nginx | /%s | %s | %s | %s |\n' "$f" "$(size "$f")" "$r" "$t"
done
read -r r t < <(bench "$sw_port" /big.js 'Accept-Encoding: br, gzip')
printf '| static-web, br | /big.js | %s | %s | %s |\n' "$(curl -fsS -H 'Accept-Encoding: br' "http://127.0.0.1:$sw_port/big.js" | wc -c)" "$r" "$t"

# 2. Build time of a 1000-file site, clean then incremental (one file changed).
python3 - "$WORK/big-site" <<'EOF'
import os, sys
root = sys.argv[1]
for i in range(1000):
    d = os.path.join(root, f"section-{i % 20:02d}")
    os.makedirs(d, exist_ok=True)
    para = f"<p>Page {i} of the generated site: some text that compresses well. </p>\n"
    open(os.path.join(d, f"page-{i:04d}.html"), "w").write(f"<!DOCTYPE html><title>Page {i}</title>\n" + para * 20)
EOF
timed_build() {
  local t0 t1 log
  t0=$(date +%s.%N)
  log=$("$W" build "$WORK/big-site" ws2i/static-web big-site --incremental 2>&1)
  t1=$(date +%s.%N)
  step() { sed -n "s/^ws2i: <== $1 (\(.*\)s)$/\1/p" <<<"$log"; }
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$(python3 -c "print(round($t1 - $t0, 2))")" \
    "$(step 'Saving artifacts of the previous image')" "$(step 'Running assemble')" "$(sed -n 's/^---> Summary: //p' <<<"$log")"
}
echo
printf '| 1000-file site build | total (s) | save-artifacts step (s) | assemble (s) | summary |\n|---|---|---|---|---|\n'
timed_build clean
echo '<p>changed</p>' >>"$WORK/big-site/section-07/page-0007.html"
timed_build "incremental, 1 file changed"
