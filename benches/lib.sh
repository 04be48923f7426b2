# Pieces the bench scripts share; `. benches/lib.sh` from the repository root.

# bench_site DIR: hello-site plus a ~100 KB generated JavaScript file (the "large file" rows).
bench_site() {
  cp -r examples/hello-site "$1"
  python3 - "$1/big.js" <<'EOF'
import sys
lines = [f"export function f{i}(x) {{ return x * {i} + {i * 7 % 13}; }} // generated line {i}\n" for i in range(1500)]
open(sys.argv[1], "w").write("".join(lines))
EOF
}

# bench_serve_port LOG: waits (at most 60 s) for `ws2i run -p` to log where it serves; prints the port.
bench_serve_port() {
  local port
  for _ in $(seq 1 600); do grep -q '^Serving ' "$1" && break; sleep 0.1; done
  port=$(sed -n 's/^Serving .* on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" | head -n1)
  [ -n "$port" ] || { cat "$1" >&2; return 1; }
  echo "$port"
}

# bench_free_port: a loopback port nobody listens on now.
bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
