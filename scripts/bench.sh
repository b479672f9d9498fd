#!/usr/bin/env bash
# Converge benchmark (docs/benchmarks.md). `scripts/bench.sh --quick` re-runs site.yml on the running lab.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/bench.py "$@"
