#!/usr/bin/env bash
# Run molecule scenarios against lab node containers: every scenario under molecule/, or the
# ones named on the command line.
#
#   scripts/molecule.sh                    # all scenarios (what `make molecule` runs)
#   scripts/molecule.sh container_runtime  # one scenario
#   MOLECULE_COMMAND=converge scripts/molecule.sh os_prep   # another molecule command
#
# Needs the lab (`make lab-up`): the node image kubeadm-aws-node:debian12, the Docker network
# kubeadm-aws-lab, and for container_runtime/kube_packages the mirror and registry on its gateway.
# Their node containers are named molecule-<scenario>[-pristine] and carry the label owner=molecule.
# Careful: with no argument this also runs the cluster scenarios, which take the lab down and up
# (the lab cluster is rebuilt from scratch); name scenarios to leave a running lab alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

[ -x .venv/bin/molecule ] || scripts/setup.sh
export PATH="$ROOT/.venv/bin:$PATH"
# The lab's shared endpoints (LAB_NETWORK, LAB_MIRROR_URL, LAB_REGISTRY), read by converge.yml.
# shellcheck source=/dev/null
if [ -f lab/versions.env ]; then set -a; . lab/versions.env; set +a; fi
# Values set by the caller win over lab/lab.env (e.g. LAB_MIRROR_URL for another mirror).
_mirror="${LAB_MIRROR_URL:-}" _registry="${LAB_REGISTRY:-}"
if [ -f lab/lab.env ]; then
  # shellcheck source=/dev/null
  . lab/lab.env
fi
LAB_MIRROR_URL="${_mirror:-${LAB_MIRROR_URL:-}}" LAB_REGISTRY="${_registry:-${LAB_REGISTRY:-}}"
export MOLECULE_LAB_NETWORK="${LAB_NETWORK:-kubeadm-aws-lab}"
export LAB_MIRROR_URL="${LAB_MIRROR_URL:-http://10.213.0.1:8080}"
export LAB_REGISTRY="${LAB_REGISTRY:-10.213.0.1:5000}"
export ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}"
command="${MOLECULE_COMMAND:-test}"

log() { printf '>> [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

docker info >/dev/null 2>&1 || { echo "!! Docker engine not reachable: run 'make lab-up'" >&2; exit 1; }

if [ $# -gt 0 ]; then
  scenarios=("$@")
else
  # The node-role scenarios use the running lab (network, mirror, registry) and run first; the
  # scenarios that own the lab's lifecycle (cluster, ha: `lab/lab.sh down` when they finish) last.
  first=(os_prep container_runtime kube_packages)
  scenarios=()
  for s in "${first[@]}"; do [ -f "molecule/$s/molecule.yml" ] && scenarios+=("$s"); done
  for f in molecule/*/molecule.yml; do
    s="$(basename "$(dirname "$f")")"
    [[ " ${first[*]} " == *" $s "* ]] || scenarios+=("$s")
  done
fi
for s in "${scenarios[@]}"; do
  if [ ! -f "molecule/$s/molecule.yml" ]; then
    have=(); for f in molecule/*/molecule.yml; do have+=("$(basename "$(dirname "$f")")"); done
    echo "!! unknown scenario '$s' (have: ${have[*]})" >&2; exit 2
  fi
done

failed=() summary=()
for s in "${scenarios[@]}"; do
  log "molecule $command -s $s"
  t0=$SECONDS
  if molecule "$command" -s "$s"; then rc=0; else rc=$?; failed+=("$s"); fi
  dt=$((SECONDS - t0))
  summary+=("$(printf '%-20s %-6s %4ss' "$s" "$([ "$rc" = 0 ] && echo ok || echo FAILED)" "$dt")")
  log "$s: $([ "$rc" = 0 ] && echo ok || echo "FAILED (rc=$rc)") in ${dt}s"
done

echo
echo "molecule $command summary:"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "!! failed: ${failed[*]}" >&2
  exit 1
fi
