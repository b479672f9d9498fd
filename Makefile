# sesacthon.kubeadm_aws — developer entry points. `make lab` and `make test` are the Quick start.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export KUBEADM_AWS_CACHE ?= $(HOME)/.cache/kubeadm-aws
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
SCENARIO ?=

.PHONY: help setup docs faults static-checks lint unit unit-etcd awx lab lab-up lab-down lab-smoke lab-artifacts lab-kubeconfig molecule test bench bench-quick bench-peer awx-runner clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup: ## Python venv (cached outside the repo) and collection link; idempotent
	@scripts/setup.sh

docs: setup ## role README variable tables from meta/argument_specs.yml (scripts/role_docs.py; a unit test fails when one is stale)
	@$(VENV)/bin/python scripts/role_docs.py --write

lint: setup ## ansible-lint (production profile), yamllint, ansible-test sanity
	@scripts/lint.sh

unit: setup ## module tests against a real moto_server
	@$(VENV)/bin/python -m pytest -q tests/unit

# The etcd_cluster tests need the etcd binary lab-artifacts builds: `make unit` skips them without it
# (saying so); `make test` runs them again once the build is done, where a missing binary fails.
unit-etcd: setup ## etcd_cluster module tests against real etcd servers (needs make lab-artifacts)
	@KUBEADM_AWS_REQUIRE_ETCD=1 $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/unit/test_etcd_cluster.py

awx: setup ## execution environment build context (ansible-builder create) and job templates vs argument specs
	@$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/awx/test_ee.py tests/awx/test_templates.py

awx-runner: setup ## join_workers.yml through ansible-runner, laid out as AWX runs it, on the running lab cluster
	@$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/awx/test_runner_join.py

lab-artifacts: setup ## build (once, cached by version) the Kubernetes artifacts and the mirror
	@scripts/host-deps.sh
	@lab/build-artifacts.sh
	@lab/build/argocd/build.sh

lab-up: setup lab-artifacts ## Docker engine, node images, node containers, moto_server, mirror
	@lab/lab.sh up

lab-down: ## stop and remove the lab (containers, network, moto); keeps the caches
	@lab/lab.sh down

lab-smoke: lab-up ## prove the lab's parts are real
	@lab/lab.sh smoke

lab: lab-up ## the lab cluster, built by playbooks/site.yml
	@lab/lab.sh cluster

lab-kubeconfig: ## print the path of the lab cluster's admin kubeconfig
	@lab/lab.sh kubeconfig

# On demand (they do not fit CI's 75-minute cold budget next to the cluster scenario, docs/lab.md):
# the node-role scenarios (os_prep, container_runtime, kube_packages: about 8 minutes together; the
# cluster scenario converges the same roles twice, the second time changing nothing), ha (3 control
# planes) and lifecycle. `make molecule` alone runs the four below.
MOLECULE_DEFAULT := os_prep container_runtime kube_packages cluster
molecule: setup lab-up ## molecule scenarios: node roles and cluster (or SCENARIO=name, e.g. ha)
	@scripts/molecule.sh $(or $(SCENARIO),$(MOLECULE_DEFAULT))

# The static checks run while the (cold: tens of minutes) artifact build runs; then the lab tests.
# bench-quick leaves a 1 control plane + 2 workers cluster running, which awx-runner joins workers to.
test: setup ## every test: lint, unit (etcd ones after the build), awx, lab-smoke, the cluster scenario, quick benchmark, AWX runner
	@$(MAKE) --no-print-directory -j2 --output-sync=line static-checks lab-artifacts
	@$(MAKE) --no-print-directory unit-etcd lab-smoke molecule SCENARIO=cluster bench-quick awx-runner

static-checks: setup
	@$(MAKE) --no-print-directory lint unit awx

# Faults injected for real into lab runs (docs/lab.md): several cold bring-ups, on demand.
faults: lab-up ## fault suite: interrupted init and joins, two runs at once, a revoked token, secrets in output
	@$(VENV)/bin/python -m pytest -v -p no:cacheprovider tests/faults

# The benchmark fails only when a run fails, never on a time (docs/benchmarks.md).
bench: lab-up ## converge benchmark (~15 min): bench/results.json and docs/benchmarks.md
	@scripts/bench.sh

bench-quick: lab-up ## the benchmark's quickest variant (1 control plane + 1 worker): bench/results-quick.json
	@scripts/bench.sh --quick

# Not part of `make test`: kubespray (from ../shared/fixtures/kubespray) side by side on the same lab nodes.
# Its sides may also run one at a time (scripts/bench_peer.sh --side this|kubespray, then --report).
bench-peer: lab-up ## this collection and kubespray side by side (~40 min): bench/peer.json and docs/benchmarks.md
	@scripts/bench_peer.sh

clean: lab-down ## remove the venv link and local state (caches outside the repo stay)
	rm -rf .venv .ansible
