#!/usr/bin/env bash
# This collection and kubespray side by side on the lab (docs/benchmarks.md, "Side by side with kubespray").
#   scripts/bench_peer.sh [--side this|kubespray] [--report]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/bench_peer.py "$@"
