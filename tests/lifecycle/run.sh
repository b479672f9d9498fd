#!/usr/bin/env bash
# The steps of the molecule scenario `lifecycle` without molecule (same order, same files): the lab from
# scratch with 1 control plane and 2 workers, the load balancer, site.yml, then tests/lifecycle in order,
# then the lab and the load balancer down. Run it under the lab lock:
#   flock /tmp/kubeadm-aws-lab.lock tests/lifecycle/run.sh [pytest arguments, e.g. -k 'not upgrade']
# KEEP=1 leaves the lab and the cluster up at the end (for a look, or to run single tests again).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"
export LAB_CONTROL_PLANES=1 LAB_WORKERS=2 ANSIBLE_CONFIG="$REPO/ansible.cfg" ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
log() { printf '>> [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
down() { tests/lifecycle/lb.sh stop; lab/lab.sh down; }
[ "${KEEP:-0}" = 1 ] || trap down EXIT
t0=$SECONDS
log "the next Kubernetes version's artifacts (cached)"
(set -a; . lab/versions.env; KUBE_VERSIONS="$KUBE_VERSION $KUBE_NEXT_VERSION" lab/build-artifacts.sh)
log "lab from scratch"; lab/lab.sh down; lab/lab.sh up; tests/lifecycle/lb.sh start
# shellcheck source=lab/lab.env
. lab/lab.env
log "site.yml behind the load balancer"
.venv/bin/ansible-playbook -i inventory/lab.aws_ec2.yml playbooks/site.yml -e @lab/lab-vars.yml \
  -e @tests/lifecycle/lifecycle-vars.yml
log "tests/lifecycle"
.venv/bin/python -m pytest -x -v -p no:cacheprovider --durations=0 tests/lifecycle "$@"
log "passed in $((SECONDS - t0)) s"
