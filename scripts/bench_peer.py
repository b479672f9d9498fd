#!/usr/bin/env python3
"""This collection and kubespray side by side on the same lab nodes (issue 18, docs/benchmarks.md).

    scripts/bench_peer.sh                      # both sides, then bench/peer.json and the docs table
    scripts/bench_peer.sh --side this          # one side only (its result: bench/runs/peer-this.json)
    scripts/bench_peer.sh --side kubespray     # (bench/runs/peer-kubespray.json)
    scripts/bench_peer.sh --report             # bench/peer.json and the docs table from both side files

Each side starts from bare node containers (`lab/lab.sh down` then `up`: 1 control plane + 2 workers
of the same node image, an empty fact cache) and runs, timed with scripts/bench.py's run_playbook
(wall time, task results, changed, CPU seconds): a cold bring-up, a no-op re-run and one worker added
(a fourth node container, then the tool's scale-out playbook limited to it). After the cold run and
after the scale-out the cluster is checked the same way on both sides: every node Ready, CoreDNS
answers a pod's lookup, a pod on one worker reaches a pod on another. A side whose cluster fails a
check gets no times.

kubespray comes from the fixture tarball (KUBESPRAY_TARBALL, default
../shared/fixtures/kubespray/kubespray-46dbdd39.tar.gz), unpacked under
$KUBEADM_AWS_CACHE/kubespray/ with its own virtualenv (its requirements.txt), never into this
repository. Its inventory (written per run under $KUBEADM_AWS_CACHE/kubespray/run/) reaches the
node containers with community.docker.docker, like the collection's lab inventory; its offline
settings (files_repo, registry, versions and sha256 sums of the lab's builds) are in kubespray_vars().
Whatever the lab did not serve for kubespray is built by lab/build/kubespray/build.sh.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (scripts/bench.py: the shared machinery)

REPO = bench.REPO
ENV = bench.ENV
CACHE = Path(ENV["KUBEADM_AWS_CACHE"])
TARBALL = Path(os.environ.get("KUBESPRAY_TARBALL", f"{ENV['LAB_FIXTURES_DIR']}/kubespray/kubespray-46dbdd39.tar.gz"))
KS_ROOT = CACHE / "kubespray"
GATEWAY = ENV["LAB_GATEWAY"]
MIRROR = f"http://{GATEWAY}:{ENV['LAB_MIRROR_PORT']}"
REGISTRY = f"{GATEWAY}:{ENV['LAB_REGISTRY_PORT']}"
VERSIONS = dict(line.split("=", 1) for line in (REPO / "lab/versions.env").read_text().splitlines()
                if "=" in line and not line.startswith("#"))
NERDCTL_VERSION = "v2.2.2"  # lab/build/kubespray/build.sh: kubespray 46dbdd39's default
WORKERS = 2
# Same forks as the collection's ansible.cfg; pipelining on for both (kubespray's ansible.cfg sets it
# for SSH only; the docker connection reads the [connection] setting, i.e. this variable).
PEER_ENV = {"ANSIBLE_FORKS": "50", "ANSIBLE_PIPELINING": "True"}
# The test image of the checks: the lab's redis (Debian's redis-server and redis-cli, getent).
CHECK_IMAGE = "lab/redis:debian-bookworm"
TARGETS = {"cold": 0.3, "rerun": 0.2, "scale_out": 0.15}


def v(key: str) -> str:
    return VERSIONS[key].removeprefix("v")


def node_containers(workers: int) -> list[tuple[str, str, str, str]]:
    """(container, role, ip, private DNS name) of the lab's nodes, as lab/lab.sh lays them out."""
    def dns(ip: str) -> str:
        region = ENV["LAB_REGION"]
        suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
        return f"ip-{ip.replace('.', '-')}.{suffix}"
    nodes = [("kubeadm-aws-lab-cp1", "control-plane", "10.213.0.11")]
    nodes += [(f"kubeadm-aws-lab-w{i}", "worker", f"10.213.0.{20 + i}") for i in range(1, workers + 1)]
    return [(c, r, ip, dns(ip)) for c, r, ip in nodes]


# ----------------------------------------------------------------------------------------------
# Cluster checks (the same for both sides): kubectl in the control plane container
# ----------------------------------------------------------------------------------------------
def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", "-i", "kubeadm-aws-lab-cp1", "kubectl",
                           "--kubeconfig", "/etc/kubernetes/admin.conf", *args],
                          input=stdin, capture_output=True, text=True, check=check, timeout=300)


def check_cluster(expected_nodes: int, image: str) -> dict:
    """Every node Ready, CoreDNS answers a pod's lookup of the API service, a pod on the first worker
    reaches a pod on the second (their pod IPs, across nodes). Returns {check: bool, ...} plus details."""
    out: dict = {}
    deadline = time.monotonic() + 240
    ready: list[str] = []
    while time.monotonic() < deadline:
        got = kubectl("get", "nodes", "-o", "json", check=False)
        if got.returncode != 0:
            time.sleep(3)
            continue
        nodes = json.loads(got.stdout)["items"]
        ready = [n["metadata"]["name"] for n in nodes if any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
        if len(nodes) == expected_nodes and len(ready) == expected_nodes:
            break
        time.sleep(3)
    out["nodes_ready"] = len(ready) == expected_nodes
    out["nodes"] = sorted(ready)
    workers = sorted(n for n in ready if n.split(".")[0] != "ip-10-213-0-11")
    if len(workers) < 2:
        return {**out, "coredns": False, "pod_to_pod": False, "passed": False}
    tol = [{"operator": "Exists"}]
    ns = "peer-check"
    kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true")
    kubectl("create", "namespace", ns)
    server = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "server", "namespace": ns},
              "spec": {"nodeName": workers[0], "tolerations": tol, "containers": [{
                  "name": "redis", "image": image, "command": ["redis-server", "--protected-mode", "no"]}]}}
    kubectl("apply", "-f", "-", stdin=json.dumps(server))
    w = kubectl("wait", "-n", ns, "pod/server", "--for=condition=Ready", "--timeout=180s", check=False)
    ip = kubectl("get", "-n", ns, "pod/server", "-o", "jsonpath={.status.podIP}").stdout.strip()
    kubectl("rollout", "status", "-n", "kube-system", "deployment/coredns", "--timeout=180s", check=False)
    script = ("getent hosts kubernetes.default.svc.cluster.local && echo DNS-OK; "
              f"redis-cli -h {ip} -p 6379 ping")
    client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": ns},
              "spec": {"nodeName": workers[1], "tolerations": tol, "restartPolicy": "Never", "containers": [{
                  "name": "cli", "image": image, "command": ["sh", "-c", script]}]}}
    logs = ""
    if w.returncode == 0 and ip:
        kubectl("apply", "-f", "-", stdin=json.dumps(client))
        kubectl("wait", "-n", ns, "pod/client", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=180s",
                check=False)
        logs = kubectl("logs", "-n", ns, "pod/client", check=False).stdout
    out["coredns"] = "DNS-OK" in logs
    out["pod_to_pod"] = "PONG" in logs
    out["check_output"] = logs.strip()[-300:]
    kubectl("delete", "namespace", ns, "--wait=false", check=False)
    out["passed"] = out["nodes_ready"] and out["coredns"] and out["pod_to_pod"]
    return out


def summary(cold: dict, rerun: dict, scale: dict, checks: dict, **extra) -> dict:
    passed = all(c["passed"] for c in checks.values())
    res = {
        "checks": checks,
        "passed": passed,
        # A side whose cluster fails a check has no time.
        "cold_s": cold["seconds"] if passed else None,
        "rerun_s": rerun["seconds"] if passed else None,
        "rerun_changed": bench.changed(rerun),
        "scale_out_s": scale["seconds"] if passed else None,
        "tasks": {"cold": cold["tasks"], "rerun": rerun["tasks"], "scale_out": scale["tasks"]},
        "tasks_per_host_cold": {h.split(".")[0]: s["ok"] + s.get("failures", 0) for h, s in cold["stats"].items()},
        "scale_out_hosts": sorted(h.split(".")[0] for h in scale["stats"]),
        "cpu_s": {"cold": cold["cpu"], "rerun": rerun["cpu"], "scale_out": scale["cpu"]},
        "top_tasks_cold": top_tasks(cold),
        "top_tasks_scale_out": top_tasks(scale),
        "roles_cold": role_seconds(cold),
        "roles_rerun": role_seconds(rerun),
        "roles_scale_out": role_seconds(scale),
        **extra,
    }
    return res


def role_seconds(result: dict, n: int = 12) -> list[tuple[str, float]]:
    """Where the time goes, per role (or play, for tasks outside roles): the summed wall time of
    its tasks, largest first."""
    per: dict[str, float] = {}
    for play in result["plays"]:
        for task in play["tasks"]:
            d = task["task"].get("duration", {})
            if "start" not in d or "end" not in d:
                continue
            s = dt.datetime.fromisoformat(d["start"].rstrip("Z"))
            e = dt.datetime.fromisoformat(d["end"].rstrip("Z"))
            name = task["task"]["name"]
            key = name.partition(" : ")[0] if " : " in name else f"play: {play['play']['name']}"
            per[key] = per.get(key, 0.0) + (e - s).total_seconds()
    return [(k, round(v, 1)) for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:n]]


def top_tasks(result: dict, n: int = 12) -> list[tuple[str, float]]:
    """Where the time goes: the longest tasks of a run (their wall time over all their hosts)."""
    rows = sorted(((name, s) for name, s, _ in bench.task_durations(result)), key=lambda r: -r[1])
    return [(name, round(s, 1)) for name, s in rows[:n]]


# ----------------------------------------------------------------------------------------------
# This collection
# ----------------------------------------------------------------------------------------------
# kubespray deploys no cloud controller manager: the collection runs without one here too
# (kubeadm_aws_cloud_provider "", the setting molecule's ha scenario tests); Argo CD off.
THIS_EXTRA_VARS = ('{"kubeadm_aws_cloud_provider": ""}',)


def run_this() -> dict:
    b = bench.Bench(bench.AwsCallCounter(ENV["AWS_ENDPOINT_URL"]))
    b.fresh_lab(1, WORKERS)
    cold = b.playbook("peer-this-cold", "site.yml", extra_vars=THIS_EXTRA_VARS)
    checks = {"cold": check_cluster(1 + WORKERS, f"registry.k8s.io/{CHECK_IMAGE}")}
    rerun = b.playbook("peer-this-rerun", "site.yml", extra_vars=THIS_EXTRA_VARS)
    before = bench.instance_names()
    bench.lab("up", LAB_CONTROL_PLANES="1", LAB_WORKERS=str(WORKERS + 1))
    new = sorted(bench.instance_names() - before)
    if len(new) != 1:
        raise SystemExit(f"bench-peer: expected one new lab instance, found {new}")
    scale = b.playbook("peer-this-scale-out", "join_workers.yml", "--limit", new[0], extra_vars=THIS_EXTRA_VARS)
    checks["scale_out"] = check_cluster(2 + WORKERS, f"registry.k8s.io/{CHECK_IMAGE}")
    return summary(cold, rerun, scale, checks, tool="sesacthon.kubeadm_aws",
                   commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                         text=True).stdout.strip(),
                   playbooks={"cold": "playbooks/site.yml", "rerun": "playbooks/site.yml",
                              "scale_out": "playbooks/join_workers.yml --limit <new worker>"})


# ----------------------------------------------------------------------------------------------
# kubespray
# ----------------------------------------------------------------------------------------------
def kubespray_dir() -> Path:
    """The fixture unpacked under $KUBEADM_AWS_CACHE/kubespray/<tarball stem>/kubespray (once)."""
    root = KS_ROOT / TARBALL.name.removesuffix(".tar.gz").removeprefix("kubespray-")
    ks = root / "kubespray"
    if not (ks / "cluster.yml").is_file():
        if not TARBALL.is_file():
            raise SystemExit(f"bench-peer: {TARBALL} is missing (KUBESPRAY_TARBALL)")
        tmp = Path(tempfile.mkdtemp(dir=KS_ROOT if KS_ROOT.exists() else None))
        with tarfile.open(TARBALL) as tf:
            tf.extractall(tmp, filter="data")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (tmp / "kubespray").rename(ks)
        shutil.rmtree(tmp)
    return ks


def kubespray_venv(ks: Path) -> Path:
    """kubespray's own virtualenv, pinned by its requirements.txt (keyed by the file's hash)."""
    req = ks / "requirements.txt"
    venv = KS_ROOT / f"venv-{hashlib.sha256(req.read_bytes()).hexdigest()[:12]}"
    if not (venv / ".complete").is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run(["nice", "-n", "19", sys.executable if sys.version_info >= (3, 11) else "python3",
                        "-m", "venv", str(venv)], check=True)
        subprocess.run(["nice", "-n", "19", str(venv / "bin/pip"), "install", "-q", "-r", str(req)], check=True)
        (venv / ".complete").write_text(dt.datetime.now(dt.timezone.utc).isoformat())
    return venv


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def node_nofile_limit() -> int:
    """The hard RLIMIT_NOFILE inside a lab node container (the sandbox's), 65535 when unknown."""
    got = subprocess.run(["docker", "exec", "kubeadm-aws-lab-cp1", "sh", "-c", "ulimit -Hn"], capture_output=True,
                         text=True)
    out = got.stdout.strip()
    return int(out) if got.returncode == 0 and out.isdigit() else 65535


def kubespray_vars() -> dict:
    """kubespray's inventory variables for the lab: every change from its defaults, with why."""
    m = CACHE / "mirror"
    kv, gh = v("KUBE_VERSION"), m / "github.com"
    k8s_bin = m / f"dl.k8s.io/release/v{kv}/bin/linux/amd64"
    return {
        # Offline: files from the lab mirror (kubespray's documented offline variables), images from
        # the lab registry (its registry overrides), containerd told the registry speaks plain HTTP.
        "files_repo": MIRROR,
        "github_url": "{{ files_repo }}/github.com",
        "dl_k8s_io_url": "{{ files_repo }}/dl.k8s.io",
        "storage_googleapis_url": "{{ files_repo }}/storage.googleapis.com",
        "get_helm_url": "{{ files_repo }}/get.helm.sh",
        "registry_host": REGISTRY,
        "kube_image_repo": "{{ registry_host }}",
        "gcr_image_repo": "{{ registry_host }}",
        "docker_image_repo": "{{ registry_host }}",
        "quay_image_repo": "{{ registry_host }}",
        "github_image_repo": "{{ registry_host }}",
        "containerd_registries_mirrors": [{"prefix": REGISTRY, "server": f"http://{REGISTRY}", "mirrors": [{
            "host": f"http://{REGISTRY}", "capabilities": ["pull", "resolve"], "skip_verify": True}]}],
        # The versions the collection installs (lab/versions.env, built by the lab) and their sums.
        "kube_version": kv,
        "kubeadm_binary_checksum": sha256(k8s_bin / "kubeadm"),
        "kubelet_binary_checksum": sha256(k8s_bin / "kubelet"),
        "kubectl_binary_checksum": sha256(k8s_bin / "kubectl"),
        "containerd_version": v("CONTAINERD_VERSION"),
        "containerd_archive_checksum": sha256(
            gh / f"containerd/containerd/releases/download/v{v('CONTAINERD_VERSION')}/containerd-{v('CONTAINERD_VERSION')}-linux-amd64.tar.gz"),
        "runc_version": v("RUNC_VERSION"),
        "runc_binary_checksum": sha256(gh / f"opencontainers/runc/releases/download/v{v('RUNC_VERSION')}/runc.amd64"),
        "cni_version": v("CNI_PLUGINS_VERSION"),
        "cni_binary_checksum": sha256(
            gh / f"containernetworking/plugins/releases/download/v{v('CNI_PLUGINS_VERSION')}/cni-plugins-linux-amd64-v{v('CNI_PLUGINS_VERSION')}.tgz"),
        "crictl_version": v("CRICTL_VERSION"),
        "crictl_binary_checksum": sha256(
            gh / f"kubernetes-sigs/cri-tools/releases/download/v{v('CRICTL_VERSION')}/crictl-v{v('CRICTL_VERSION')}-linux-amd64.tar.gz"),
        "etcd_version": v("ETCD_VERSION"),
        "etcd_binary_checksum": sha256(
            gh / f"etcd-io/etcd/releases/download/v{v('ETCD_VERSION')}/etcd-v{v('ETCD_VERSION')}-linux-amd64.tar.gz"),
        "nerdctl_version": NERDCTL_VERSION.removeprefix("v"),
        "nerdctl_archive_checksum": sha256(
            gh / f"containerd/nerdctl/releases/download/{NERDCTL_VERSION}/nerdctl-{NERDCTL_VERSION.removeprefix('v')}-linux-amd64.tar.gz"),
        "coredns_version": v("COREDNS_VERSION"),
        "pod_infra_version": VERSIONS["PAUSE_VERSION"],
        # CNI: flannel as on the collection's side (the lab's flannel build and host-gw backend).
        "kube_network_plugin": "flannel",
        "flannel_backend_type": "host-gw",
        "flannel_image_repo": "{{ registry_host }}/lab/flannel",
        "flannel_image_tag": VERSIONS["FLANNEL_VERSION"],
        "flannel_init_image_repo": "{{ registry_host }}/lab/flannel-cni-plugin",
        "flannel_init_image_tag": VERSIONS["FLANNEL_CNI_PLUGIN_VERSION"],
        # No add-ons: the collection deploys neither a node-local DNS cache nor a DNS autoscaler.
        "enable_nodelocaldns": False,
        "enable_dns_autoscaler": False,
        # The same cluster as the collection's: kube-proxy in its kubeadm default (iptables) mode and
        # workers talking to the control plane's address (no nginx proxy static pod per worker).
        "kube_proxy_mode": "iptables",
        "loadbalancer_apiserver_localhost": False,
        # What the sandbox forces, as lab/lab-vars.yml does for the collection: cgroup v1 allowed,
        # the node's Docker-managed resolv.conf left alone and the kubelet's pointing at the lab
        # gateway, no host-wide conntrack sysctl, low eviction thresholds on the shared disk, and
        # containerd's CRI not lowering oom_score_adj (no CAP_SYS_RESOURCE in the node containers).
        "kubelet_fail_cgroup_v1": False,
        "kubeadm_ignore_preflight_errors": ["SystemVerification"],
        "resolvconf_mode": "none",
        "kube_resolv_conf": "/etc/kubeadm-aws-lab/resolv.conf",
        "kube_proxy_conntrack_max_per_core": 0,
        "eviction_hard": {"memory.available": "100Mi", "nodefs.available": "2%", "imagefs.available": "2%",
                          "nodefs.inodesFree": "2%"},
        "containerd_extra_runtime_args": {"restrict_oom_score_adj": True},
        # kubespray's base runtime spec raises every container's RLIMIT_NOFILE to 65535; a process
        # without CAP_SYS_RESOURCE cannot raise its hard limit, so runc fails with "error setting
        # rlimit type 7" above the node container's own limit (20000 here): cap it there.
        "containerd_base_runtime_spec_rlimit_nofile": min(65535, node_nofile_limit()),
        # Its preinstall pings each node's access_ip, but installs ping (iputils-ping) only when
        # main_access_ip is known before its network facts are gathered, which it is not here.
        "ping_access_ip": False,
    }


def kubespray_inventory(workers: int) -> Path:
    """A YAML inventory of the lab's node containers (docker connection) and group_vars/all."""
    inv = KS_ROOT / "run" / "inventory"
    shutil.rmtree(inv, ignore_errors=True)
    (inv / "group_vars/all").mkdir(parents=True)
    nodes = node_containers(workers)
    hosts = {dns: {"ansible_host": c, "ip": ip, "access_ip": ip} for c, _, ip, dns in nodes}
    cps = {dns: None for _, r, _, dns in nodes if r == "control-plane"}
    ws = {dns: None for _, r, _, dns in nodes if r == "worker"}
    doc = {"all": {
        "vars": {"ansible_connection": "community.docker.docker", "ansible_user": "root"},
        "hosts": hosts,
        "children": {
            "kube_control_plane": {"hosts": cps},
            "etcd": {"hosts": cps},
            "kube_node": {"hosts": ws},
            "k8s_cluster": {"children": {"kube_control_plane": None, "kube_node": None}},
        }}}
    (inv / "hosts.json").write_text(json.dumps(doc, indent=1))
    (inv / "group_vars/all/lab.json").write_text(json.dumps(kubespray_vars(), indent=1))
    return inv


def kubespray_setup(facts: Path) -> tuple[Path, Path, dict]:
    """Artifacts, the unpacked tree, its virtualenv and the environment its runs get."""
    subprocess.run(["nice", "-n", "19", str(REPO / "lab/build/kubespray/build.sh")], check=True)
    ks = kubespray_dir()
    venv = kubespray_venv(ks)
    env = {**ENV, **PEER_ENV, "ANSIBLE_CONFIG": str(ks / "ansible.cfg"), "VIRTUAL_ENV": str(venv),
           "PATH": f"{venv / 'bin'}:{ENV['PATH']}", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(facts)}
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    return ks, venv, env


def kubespray_dev(playbook: str, fresh: bool, workers: int, args: list[str]) -> None:
    """Development aid: one kubespray playbook on the running lab (fresh: bare nodes first), its
    default output in bench/runs/kubespray-dev.log; the fact cache is kept between calls."""
    facts = KS_ROOT / "run" / "facts"
    if fresh:
        bench.lab("down")
        bench.lab("up", LAB_CONTROL_PLANES="1", LAB_WORKERS=str(workers))
        shutil.rmtree(facts, ignore_errors=True)
    facts.mkdir(parents=True, exist_ok=True)
    ks, venv, env = kubespray_setup(facts)
    inv = kubespray_inventory(workers)
    log = REPO / "bench" / "runs" / "kubespray-dev.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with log.open("w") as f:
        rc = subprocess.run([str(venv / "bin/ansible-playbook"), "-i", str(inv / "hosts.json"), "-b", playbook, *args],
                            cwd=ks, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    print(f"kubespray {playbook}: rc={rc} in {time.monotonic() - t0:.0f} s (log: {log})")
    if rc == 0:
        print(json.dumps(check_cluster(1 + workers, f"{REGISTRY}/{CHECK_IMAGE}"), indent=1))


def run_kubespray() -> dict:
    facts = Path(tempfile.mkdtemp(prefix="kubespray-bench-facts-"))
    ks, venv, env = kubespray_setup(facts)

    def play(label: str, playbook: str, inv: Path, *args: str) -> dict:
        cmd = [str(venv / "bin/ansible-playbook"), "-i", str(inv / "hosts.json"), "-b", playbook, *args]
        return bench.run_playbook(label, cmd, ks, env)

    b = bench.Bench(bench.AwsCallCounter(ENV["AWS_ENDPOINT_URL"]))
    b.fresh_lab(1, WORKERS)
    shutil.rmtree(facts, ignore_errors=True)
    facts.mkdir()
    inv = kubespray_inventory(WORKERS)
    cold = play("peer-kubespray-cold", "cluster.yml", inv)
    checks = {"cold": check_cluster(1 + WORKERS, f"{REGISTRY}/{CHECK_IMAGE}")}
    rerun = play("peer-kubespray-rerun", "cluster.yml", inv)
    bench.lab("up", LAB_CONTROL_PLANES="1", LAB_WORKERS=str(WORKERS + 1))
    inv = kubespray_inventory(WORKERS + 1)
    new = node_containers(WORKERS + 1)[-1][3]
    scale = play("peer-kubespray-scale-out", "scale.yml", inv, "--limit", new)
    checks["scale_out"] = check_cluster(2 + WORKERS, f"{REGISTRY}/{CHECK_IMAGE}")
    ver = subprocess.run([str(venv / "bin/ansible"), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return summary(cold, rerun, scale, checks, tool="kubespray", commit=TARBALL.name, ansible=ver,
                   playbooks={"cold": "cluster.yml", "rerun": "cluster.yml", "scale_out": "scale.yml --limit <new worker>"},
                   vars=kubespray_vars())


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------
def side_file(side: str) -> Path:
    return REPO / "bench" / "runs" / f"peer-{side}.json"


def report() -> dict:
    this, ks = (json.loads(side_file(s).read_text()) for s in ("this", "kubespray"))
    ratios = {k: bench.ratio(this.get(f"{k}_s"), ks.get(f"{k}_s")) for k in ("cold", "rerun", "scale_out")}
    res = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "nodes": "1 control plane + 2 workers, then 1 worker added",
        "this": this,
        "kubespray": ks,
        "ratios_this_over_kubespray": ratios,
        "targets": {k: {"max": t, "ratio": ratios[k], "met": ratios[k] is not None and ratios[k] <= t}
                    for k, t in TARGETS.items()},
    }
    out = REPO / "bench" / "peer.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    write_table(res)
    return res


def fmt_cpu(c: dict) -> str:
    return f"{c['busy_s']} ({c['controller_s']} / {c['nodes_s']})"


def write_table(res: dict) -> None:
    t, k, r = res["this"], res["kubespray"], res["ratios_this_over_kubespray"]

    def row(label, a, b, ratio=""):
        return f"| {label} | {a} | {b} | {ratio} |"

    def target(key):
        tg = res["targets"][key]
        return f"{r[key]} (target ≤ {tg['max']}: **{'met' if tg['met'] else 'missed'}**)"

    def cpu_ratio(key):
        return bench.ratio(t["cpu_s"][key]["busy_s"], k["cpu_s"][key]["busy_s"])
    rows = [
        row("cluster checks (cold / after scale-out): nodes Ready, CoreDNS, pod to pod across nodes",
            " / ".join("passed" if c["passed"] else "FAILED" for c in t["checks"].values()),
            " / ".join("passed" if c["passed"] else "FAILED" for c in k["checks"].values())),
        row("**cold_s** (bare → all Ready)", t["cold_s"], k["cold_s"], target("cold")),
        row("**rerun_s** (no-op)", t["rerun_s"], k["rerun_s"], target("rerun")),
        row("rerun_changed", t["rerun_changed"], k["rerun_changed"]),
        row("**scale_out_s** (one worker)", t["scale_out_s"], k["scale_out_s"], target("scale_out")),
        row("tasks run (cold / re-run / scale-out, summed over hosts)",
            " / ".join(str(t["tasks"][x]) for x in ("cold", "rerun", "scale_out")),
            " / ".join(str(k["tasks"][x]) for x in ("cold", "rerun", "scale_out"))),
        row("CPU s cold: all (controller / nodes)", fmt_cpu(t["cpu_s"]["cold"]), fmt_cpu(k["cpu_s"]["cold"]), cpu_ratio("cold")),
        row("CPU s re-run", fmt_cpu(t["cpu_s"]["rerun"]), fmt_cpu(k["cpu_s"]["rerun"]), cpu_ratio("rerun")),
        row("CPU s scale-out", fmt_cpu(t["cpu_s"]["scale_out"]), fmt_cpu(k["cpu_s"]["scale_out"]), cpu_ratio("scale_out")),
        row("hosts in the scale-out run", ", ".join(t["scale_out_hosts"]), ", ".join(k["scale_out_hosts"])),
    ]
    block = "\n".join([
        "<!-- bench-peer:start -->",
        f"Last run: {res['date']} ({res['cores']} cores; {res['nodes']}).", "",
        "| measure | this collection | kubespray | this / kubespray |", "|---|---|---|---|", *rows, "",
        "The longest tasks of each cold run (wall time over all hosts, seconds):", "",
        "| this collection | s | kubespray | s |", "|---|---|---|---|",
        *(f"| {a[0]} | {a[1]} | {b[0]} | {b[1]} |" for a, b in zip(t["top_tasks_cold"], k["top_tasks_cold"])),
        "<!-- bench-peer:end -->"])
    doc = REPO / "docs" / "benchmarks.md"
    text = doc.read_text()
    start, end = "<!-- bench-peer:start -->", "<!-- bench-peer:end -->"
    if start in text:
        text = text.split(start)[0] + block + text.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", choices=("this", "kubespray", "both"), default="both")
    ap.add_argument("--report", action="store_true", help="only write bench/peer.json and the table")
    ap.add_argument("--kubespray-dev", metavar="PLAYBOOK", help="development: run one kubespray playbook on the lab")
    ap.add_argument("--fresh", action="store_true", help="with --kubespray-dev: bare nodes first")
    ap.add_argument("--workers", type=int, default=WORKERS, help="with --kubespray-dev: workers in the inventory")
    args, rest = ap.parse_known_args()
    if args.kubespray_dev:
        kubespray_dev(args.kubespray_dev, args.fresh, args.workers, rest)
        return
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if not args.report:
        for side in (("this", "kubespray") if args.side == "both" else (args.side,)):
            t0 = time.monotonic()
            res = run_this() if side == "this" else run_kubespray()
            res["side_s"] = round(time.monotonic() - t0)
            side_file(side).parent.mkdir(parents=True, exist_ok=True)
            side_file(side).write_text(json.dumps(res, indent=2) + "\n")
            print(f"bench-peer: {side}: cold {res['cold_s']} s, re-run {res['rerun_s']} s "
                  f"(changed {res['rerun_changed']}), scale-out {res['scale_out_s']} s, checks passed: {res['passed']}",
                  flush=True)
    if all(side_file(s).is_file() for s in ("this", "kubespray")):
        res = report()
        print(json.dumps(res["ratios_this_over_kubespray"]))


if __name__ == "__main__":
    main()
