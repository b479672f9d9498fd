"""The fault suite: a run stopped half-way, a failed init, a killed join, a revoked token, two runs at
once, and where secrets end up.

Every test starts from bare lab nodes and an empty moto (fixture bare_lab), injects the fault for real
(SIGINT or SIGKILL to ansible-playbook's process group, kill -9 of kubeadm on a node, `kubeadm token
delete` on the cluster, a second ansible-playbook at the same time) and checks what an operator sees
afterwards: the next run converges, the cluster works, SSM holds its records, nothing secret is left
where it should not be. Throttled AWS calls and bad inputs on a running cluster: test_running_cluster.py.
On demand: `make faults` (each test brings a cluster up, several minutes each).
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import docker_exec, interrupt_at, kill_in_container, kill_when, recap, run_playbook, tags_of, wait_for

INIT_TASK = "kubeadm_init : Run kubeadm init"
JOIN_TASK = "kubeadm_join : Run kubeadm join"


def _docker(container: str, *cmd: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", container, *cmd], capture_output=True, text=True, check=check)


def _ready_nodes(core) -> set[str]:
    return {n.metadata.name for n in core.list_node().items
            if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])}


def _assert_converged(core, ssm, lab_env, instances, *args: str) -> None:
    """site.yml succeeds, every node is Ready, SSM holds the init state and a record per node, and a
    second run changes nothing."""
    p = run_playbook("site.yml", *args)
    assert p.returncode == 0, p.stdout[-5000:]
    names = {i["PrivateDnsName"] for i in instances}
    wait_for(lambda: names <= _ready_nodes(core), what=f"nodes {sorted(names)} Ready")
    prefix = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}"
    state = json.loads(ssm.get_parameter(Name=f"{prefix}/init/state")["Parameter"]["Value"])
    assert state, "no init/state in SSM"
    for name in names:
        record = json.loads(ssm.get_parameter(Name=f"{prefix}/nodes/{name}")["Parameter"]["Value"])
        assert record["status"] == "joined", (name, record)
    with_lock = ssm.get_parameters(Names=[f"{prefix}/init/lock"])["Parameters"]
    assert not with_lock, f"the init lock is still held: {with_lock}"
    again = run_playbook("site.yml", *args)
    assert again.returncode == 0, again.stdout[-4000:]
    changed = {h: r["changed"] for h, r in recap(again.stdout).items() if r["changed"]}
    assert not changed, f"a second run changed something: {changed}"
    for i in instances:
        leftover = _docker(tags_of(i)["lab/container"], "test", "-e", "/etc/kubernetes/kubeadm/join.yaml")
        assert leftover.returncode != 0, f"{i['PrivateDnsName']} keeps join.yaml (it holds the token)"
        leftover = _docker(tags_of(i)["lab/container"], "test", "-e", "/etc/kubernetes/kubeadm/init.yaml")
        assert leftover.returncode != 0, f"{i['PrivateDnsName']} keeps init.yaml (it holds the init token)"


def test_interrupted_init_then_rerun_converges(bare_lab, core, ssm, lab_env, instances):
    """Ctrl-C while kubeadm init runs: the next run (allowed to reset a half-initialised host) converges,
    is not locked out by the stopped run's init lock, and SSM gets the init state and cp1's record."""
    interrupt_at("site.yml", INIT_TASK, 12)
    _assert_converged(core, ssm, lab_env, instances, "-e", "kubeadm_init_reset_incomplete=true")


# The controller dies (SIGKILL to ansible-playbook's process group: no handler, no always: block runs) at
# several points of a cold site.yml; the same command again converges.
KILL_POINTS = {
    # The init lock is taken and the configuration written, kubeadm init has not started.
    "before-init": ("kubeadm_init : Validate the kubeadm init configuration", 0.0),
    # kubeadm init has returned; its token, the init state and cp1's record are not written yet.
    "right-after-init": ("kubeadm_init : Delete the token kubeadm init created", 0.0),
    # The workers run kubeadm join.
    "during-joins": (JOIN_TASK, 3.0),
    # The CNI's manifest is being applied.
    "during-cni": ("cni : Apply the manifest", 0.0),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_controller_killed_then_rerun_converges(bare_lab, core, ssm, lab_env, instances, point):
    task, delay = KILL_POINTS[point]
    kill_when("site.yml", task, delay=delay)
    _assert_converged(core, ssm, lab_env, instances)


def _cp1(instances) -> dict:
    return next(i for i in instances if tags_of(i)["kubeadm-aws/role"] == "control-plane")


def test_failed_init_is_recovered_as_designed(bare_lab, core, ssm, lab_env, instances):
    """kubeadm init dies on the node after writing admin.conf (kill -9): the run fails; the next run stops
    with "half-initialised" and changes nothing; with -e kubeadm_init_reset_incomplete=true the host is
    reset and initialised, and the cluster converges."""
    cp1 = tags_of(_cp1(instances))["lab/container"]
    killed: list[str] = []
    out = kill_when("site.yml", INIT_TASK, delay=0.5, sig=0,
                    when=lambda: docker_exec(cp1, "test", "-e", "/etc/kubernetes/admin.conf").returncode == 0,
                    on_kill=lambda: killed.extend(kill_in_container(cp1, "kubeadm")))
    assert killed, "kubeadm init had ended before it could be killed:\n" + out[-3000:]
    assert "FAILED" in out or "fatal:" in out, out[-3000:]
    prefix = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}"
    refused = run_playbook("site.yml", "-e", "kubeadm_init_api_wait=10")
    assert refused.returncode != 0, refused.stdout[-3000:]
    assert "is half-initialised" in refused.stdout and "kubeadm_init_reset_incomplete=true" in refused.stdout, \
        refused.stdout[-3000:]
    assert not ssm.get_parameters(Names=[f"{prefix}/init/state"])["Parameters"], "init/state written for a failed init"
    _assert_converged(core, ssm, lab_env, instances, "-e", "kubeadm_init_reset_incomplete=true")


def test_join_killed_after_kubelet_start_is_redone(bare_lab, core, ssm, lab_env, instances):
    """kubeadm join is killed on a worker once its kubelet-start phase has written the kubelet's
    configuration (and the controller with it): the next run finds the node half-joined, resets its
    remains and joins it again."""
    workers = [tags_of(i)["lab/container"] for i in instances if tags_of(i)["kubeadm-aws/role"] == "worker"]
    victim: list[str] = []

    def kubelet_started() -> bool:
        for c in workers:
            if docker_exec(c, "test", "-e", "/var/lib/kubelet/config.yaml").returncode == 0:
                victim.append(c)
                return True
        return False

    killed: list[str] = []
    kill_when("site.yml", JOIN_TASK, when=kubelet_started,
              on_kill=lambda: killed.extend(kill_in_container(victim[0], "kubeadm")))
    assert victim, "no worker reached kubelet-start"
    _assert_converged(core, ssm, lab_env, instances)


def test_interrupted_joins_then_rerun_converges(bare_lab, core, ssm, lab_env, instances):
    """Ctrl-C while the workers run kubeadm join: their half-done joins are reset and redone."""
    interrupt_at("site.yml", JOIN_TASK, 4)
    _assert_converged(core, ssm, lab_env, instances)


def test_two_runs_at_once_initialise_once(bare_lab, core, ssm, lab_env, instances):
    """Two site.yml runs started together on bare nodes: one cluster. The other run either waits and
    joins the same cluster or stops naming the lock holder; a later run converges."""
    results: list[subprocess.CompletedProcess] = []
    threads = [threading.Thread(target=lambda: results.append(run_playbook("site.yml"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r.returncode == 0]
    failed = [r for r in results if r.returncode != 0]
    assert ok, "neither run succeeded:\n" + "\n".join(r.stdout[-2000:] for r in results)
    for r in failed:
        assert "is held by" in r.stdout or "records it as initialised" in r.stdout, r.stdout[-3000:]
    cp1 = next(i for i in instances if tags_of(i)["kubeadm-aws/role"] == "control-plane")
    uids = _docker(tags_of(cp1)["lab/container"], "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf",
                   "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "name")
    assert uids.returncode == 0, uids.stderr
    _assert_converged(core, ssm, lab_env, instances)


def test_revoked_token_is_replaced_before_a_join(bare_lab, core, ssm, lab_env, instances):
    """The token SSM records is deleted on the cluster before it expires: a worker joining later still
    joins (the stored token is checked against the cluster and replaced)."""
    worker = next(i for i in instances if tags_of(i)["kubeadm-aws/role"] == "worker")
    # Without Argo CD: the lab's other worker carries a NoSchedule taint (lab/lab.conf), so with this one
    # held back no node runs Argo CD's pods and its install would wait for its timeout.
    p = run_playbook("site.yml", "--limit", f"all:!{worker['PrivateDnsName']}", "-e", "argocd_enabled=false")
    assert p.returncode == 0, p.stdout[-4000:]
    prefix = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}"
    bundle = ssm.get_parameter(Name=f"{prefix}/join/worker", WithDecryption=True)["Parameter"]["Value"]
    token_id = json.loads(bundle)["token"].split(".")[0]
    cp1 = next(i for i in instances if tags_of(i)["kubeadm-aws/role"] == "control-plane")
    _docker(tags_of(cp1)["lab/container"], "kubeadm", "token", "delete", token_id, check=True)
    j = run_playbook("join_workers.yml", "--limit", worker["PrivateDnsName"])
    assert j.returncode == 0, j.stdout[-4000:]
    wait_for(lambda: worker["PrivateDnsName"] in _ready_nodes(core), what="the worker Ready")
    stored = json.loads(ssm.get_parameter(Name=f"{prefix}/join/worker", WithDecryption=True)["Parameter"]["Value"])
    assert stored["token"].split(".")[0] != token_id, "SSM still holds the revoked token"


def test_secrets_stay_out_of_output_fact_cache_and_journals(bare_lab, ssm, lab_env, instances):
    """A -vvv run prints no bootstrap token, certificate key or CA key; neither do the fact cache and
    the nodes' journals."""
    p = run_playbook("site.yml", "-vvv", "-e", "argocd_enabled=false",
                     "-e", "join_material_control_plane=true")
    assert p.returncode == 0, p.stdout[-4000:]
    prefix = f"/kubeadm-aws/{lab_env['LAB_CLUSTER']}"
    worker = json.loads(ssm.get_parameter(Name=f"{prefix}/join/worker", WithDecryption=True)["Parameter"]["Value"])
    control = json.loads(ssm.get_parameter(Name=f"{prefix}/join/control-plane", WithDecryption=True)["Parameter"]["Value"])
    secrets = {"bootstrap token": worker["token"], "token secret": worker["token"].split(".")[1],
               "certificate key": control["certificate_key"]}
    cp1 = next(i for i in instances if tags_of(i)["kubeadm-aws/role"] == "control-plane")
    ca_key = _docker(tags_of(cp1)["lab/container"], "cat", "/etc/kubernetes/pki/ca.key", check=True).stdout
    secrets["CA key"] = "".join(ca_key.strip().splitlines()[1:3])
    places = {"ansible-playbook -vvv output": p.stdout + p.stderr}
    facts = Path(__file__).resolve().parents[2] / ".ansible" / "facts"
    places["fact cache"] = "".join(f.read_text(errors="replace") for f in facts.glob("*")) if facts.is_dir() else ""
    for i in instances:
        c = tags_of(i)["lab/container"]
        places[f"journal of {c}"] = _docker(c, "journalctl", "--no-pager", "-o", "cat").stdout
    hits = [f"{what} in {where}" for what, value in secrets.items() for where, text in places.items() if value in text]
    assert not hits, hits
