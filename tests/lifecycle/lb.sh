#!/usr/bin/env bash
# Start or stop the lab's control-plane load balancer (tests/lifecycle/lb.py) on the lab gateway:6443,
# in front of every control-plane address the lab can have (10.213.0.11-19).
#   tests/lifecycle/lb.sh start|stop|status
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=lab/lab.env
. "$REPO/lab/lab.env"
PID="$LAB_STATE_DIR/lb.pid" LOG="$LAB_STATE_DIR/lb.log"
running() { [ -f "$PID" ] && kill -0 "$(cat "$PID")" 2>/dev/null; }
case "${1:-}" in
  start)
    running && exit 0
    mkdir -p "$LAB_STATE_DIR"
    backends=(); for i in $(seq 1 9); do backends+=(--backend "10.213.0.$((10 + i)):6443"); done
    setsid nohup python3 "$HERE/lb.py" --listen "$LAB_GATEWAY:6443" "${backends[@]}" >>"$LOG" 2>&1 </dev/null 9>&- &
    echo $! >"$PID"
    for _ in $(seq 1 50); do
      python3 -c "import socket,sys; socket.create_connection((sys.argv[1], 6443), 1)" "$LAB_GATEWAY" 2>/dev/null && exit 0
      sleep 0.1
    done
    echo "lb.py did not start listening on $LAB_GATEWAY:6443 (see $LOG)" >&2; exit 1 ;;
  stop)
    if running; then kill "$(cat "$PID")"; fi
    rm -f "$PID" ;;
  status)
    if running; then echo "running (pid $(cat "$PID"))"; else echo stopped; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
