#!/usr/bin/env bash
# Bulk throughput through the egress proxy against a direct loopback copy, in one run: a local
# server sends SIZE bytes (sendfile) to curl, once directly on the host and once from inside a
# `sandbox exec --network allowlist` job through the proxy (native, and docker when it answers).
# Run on demand (never by the tests):
#
#   benches/proxy.sh           # SIZE (default 1G), ROUNDS (default 3, best of)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SIZE=${SIZE:-1G}
ROUNDS=${ROUNDS:-3}

scripts/setup >/dev/null
echo "==> cargo build --release"
cargo build --release
SANDBOX=$PWD/target/release/sandbox

TMP=$(mktemp -d /tmp/sandbox-bench.XXXXXX)
mkdir "$TMP/ws"
chmod 0777 "$TMP/ws"
truncate -s "$SIZE" "$TMP/blob"

# A minimal HTTP server that answers every request with the blob through sendfile(2), so the
# server is never the bottleneck.
python3 - "$TMP/blob" "$TMP/port" <<'PY' &
import os, socket, sys, threading
blob, port_file = sys.argv[1], sys.argv[2]
size = os.path.getsize(blob)
server = socket.create_server(("127.0.0.1", 0))
open(port_file, "w").write(str(server.getsockname()[1]))
def serve(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode())
        with open(blob, "rb") as f:
            conn.sendfile(f)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
PY
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [[ -s $TMP/port ]] && break; sleep 0.1; done
PORT=$(cat "$TMP/port")
URL=http://127.0.0.1:$PORT/blob
CURL=(curl -sS --noproxy '' -o /dev/null -w '%{speed_download}\n')

best() {
    local best=0 speed
    for _ in $(seq "$ROUNDS"); do
        speed=$("$@" | tail -1)
        speed=${speed%.*}
        (( speed > best )) && best=$speed
    done
    echo "$best"
}

direct=$(best "${CURL[@]}" "$URL")
native=$(best "$SANDBOX" exec --backend native --profile networked --workspace "$TMP/ws" \
    --allow "127.0.0.1:$PORT" -- "${CURL[@]}" -x http://127.0.0.1:3128 "$URL")
docker=0
if docker image inspect sandbox/host:latest >/dev/null 2>&1; then
    docker=$(best "$SANDBOX" exec --backend docker --profile networked --workspace "$TMP/ws" \
        --allow "127.0.0.1:$PORT" -- "${CURL[@]}" -x http://127.0.0.1:3128 "$URL")
fi

python3 - "$direct" "$native" "$docker" "$SIZE" <<'PY'
import sys
direct, native, docker = (int(x) for x in sys.argv[1:4])
mb = lambda b: b / (1 << 20)
print(f"\n{sys.argv[4]} over HTTP, best of rounds (MiB/s):")
print(f"  direct loopback          {mb(direct):8.0f}")
print(f"  through proxy, native    {mb(native):8.0f}   {native / direct:.2f}x direct")
if docker:
    print(f"  through proxy, docker    {mb(docker):8.0f}   {docker / direct:.2f}x direct")
PY
