"""upgrade.yml to the next minor while a workload keeps serving: a Deployment of 3 replicas with a
PodDisruptionBudget (at most one unavailable) behind a Service, probed through the Service every half
second for the whole upgrade. Afterwards every node is Ready at the new version, the control plane runs
it, SSM records it, and a second run changes nothing. The timings go to docs/benchmarks.md."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from conftest import PREFIX, changed_hosts, lab_counts, node_exec, nodes, ready, run_playbook, tail, wait_for

NS = "upgrade-probe"


@pytest.fixture(scope="module")
def target(kube_versions) -> str:
    if len(kube_versions) < 2:
        pytest.fail("the lab serves one Kubernetes version (%s): build the next one with "
                    "KUBE_VERSIONS=\"v%s <next>\" lab/build-artifacts.sh" % (kube_versions, kube_versions[0]))
    return kube_versions[1]


@pytest.fixture(scope="module")
def workload(k8s):
    core, apps, policy = k8s.CoreV1Api(), k8s.AppsV1Api(), k8s.PolicyV1Api()
    core.create_namespace({"metadata": {"name": NS}})
    labels = {"app": "probe"}
    apps.create_namespaced_deployment(NS, {
        "metadata": {"name": "probe"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "strategy": {"rollingUpdate": {"maxUnavailable": 0}},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     # Spread over every node, control planes included, so that every drain moves a replica.
                     "tolerations": [{"operator": "Exists", "effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"},
                                     {"operator": "Exists", "effect": "NoSchedule", "key": "lab.sesacthon.io/dedicated"}],
                     "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                    "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": labels}}],
                     # A real server from the lab registry (the Argo CD build's redis).
                     "containers": [{"name": "redis", "image": "registry.k8s.io/lab/redis:debian-bookworm",
                                     "command": ["redis-server", "--port", "6379", "--protected-mode", "no", "--save", ""],
                                     "ports": [{"containerPort": 6379}],
                                     "readinessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 2}}]}}}})
    policy.create_namespaced_pod_disruption_budget(NS, {"metadata": {"name": "probe"},
                                                        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}})
    core.create_namespaced_service(NS, {"metadata": {"name": "probe"},
                                        "spec": {"selector": labels, "ports": [{"port": 6379, "targetPort": 6379}]}})
    wait_for(lambda: (apps.read_namespaced_deployment("probe", NS).status.ready_replicas or 0) == 3, timeout=300,
             what="the probe Deployment ready")
    yield core.read_namespaced_service("probe", NS).spec.cluster_ip
    core.delete_namespace(NS)


class Prober(threading.Thread):
    """Connects to the Service from a worker every half second (the Service's ClusterIP, through kube-proxy)."""

    def __init__(self, ip: str, container: str = "kubeadm-aws-lab-w1"):
        super().__init__(daemon=True)
        self.ip, self.container = ip, container
        self.ok = self.failed = 0
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            out = node_exec(self.container, "timeout 2 bash -c '</dev/tcp/%s/6379' && echo up || echo down" % self.ip,
                            check=False).strip()
            if out.endswith("up"):
                self.ok += 1
            else:
                self.failed += 1
                self.failures.append(time.strftime("%H:%M:%S"))
            time.sleep(0.5)


def test_upgrade_keeps_serving_and_reaches_every_node(core, ssm, workload, target):
    prober = Prober(workload)
    prober.start()
    t0 = time.time()
    p = run_playbook("upgrade.yml", "-e", "kubeadm_aws_kubernetes_version=%s" % target, env=lab_counts(), timeout=5400)
    took = time.time() - t0
    prober.stop.set()
    prober.join(10)
    assert p.returncode == 0, tail(p)
    every = nodes(core)
    assert {n: o.status.node_info.kubelet_version for n, o in every.items()} == {n: "v" + target for n in every}
    assert all(ready(o) and not o.spec.unschedulable for o in every.values())
    state = json.loads(ssm.get_parameter(Name=PREFIX + "/init/state")["Parameter"]["Value"])
    assert state["kubernetes_version"] == "v" + target, state
    for name in every:
        rec = json.loads(ssm.get_parameter(Name="%s/nodes/%s" % (PREFIX, name))["Parameter"]["Value"])
        assert rec["kubernetes_version"] == "v" + target, rec
    apiserver = node_exec("kubeadm-aws-lab-cp1", "grep -o 'kube-apiserver:v[0-9.]*' /etc/kubernetes/manifests/kube-apiserver.yaml")
    assert apiserver.strip() == "kube-apiserver:v" + target
    assert "renewed on" in p.stdout
    # The Service answered throughout (a probe may fail while kube-proxy on the prober's own node restarts).
    assert prober.ok > 0 and prober.failed <= 4, "the workload stopped serving: %d of %d probes failed at %s" % (
        prober.failed, prober.ok + prober.failed, prober.failures)
    print("upgrade to %s: %.0f s, probes ok %d failed %d" % (target, took, prober.ok, prober.failed))
    (TIMINGS).write_text(json.dumps({"total_s": round(took), "tasks": task_times(p.stdout), "probes_ok": prober.ok,
                                     "probes_failed": prober.failed, "nodes": sorted(every)}, indent=1))


def test_a_second_run_changes_nothing(target):
    p = run_playbook("upgrade.yml", "-e", "kubeadm_aws_kubernetes_version=%s" % target, env=lab_counts())
    assert p.returncode == 0 and changed_hosts(p) == {}, tail(p)
    assert "nothing to do" in p.stdout


def task_times(output: str) -> dict[str, float]:
    """The slowest tasks of the run (ansible.posix.profile_tasks' recap)."""
    out = {}
    for line in output.split("TASKS RECAP")[-1].splitlines():
        m = re.match(r"^(.*?) -+ ([0-9.]+)s$", line.strip())
        if m:
            out[m.group(1).strip()] = float(m.group(2))
    return out


from conftest import REPO  # noqa: E402

TIMINGS = REPO / ".ansible" / "lifecycle-logs" / "upgrade-timings.json"
