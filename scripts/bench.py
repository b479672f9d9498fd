#!/usr/bin/env python3
"""Converge benchmark on the lab: cold bring-up, no-op re-run, scale-out, AWS calls.

    scripts/bench.sh            # full: 1 control plane + 2 workers, then the same with 10 hosts
    scripts/bench.sh --quick    # 1 control plane + 1 worker, no 10-host round (what `make test` runs)

Each round starts from bare lab nodes (`lab/lab.sh down` then `up`) and an empty fact cache, and
runs the playbooks users run (Argo CD left out). Times are wall clock; floor_s and join_one_s come
from the task timings of the ansible.posix.json callback (the task's wall time, i.e. its slowest
host). AWS calls are counted by a loopback proxy between Ansible and moto_server, per API action.

Writes bench/results.json (full) or bench/results-quick.json, and with the full run the table in
docs/benchmarks.md. It fails when a run fails; it never fails on a time.
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import glob
import http.server
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[1]
# Steps no tool can skip: package and binary installs (their wall time, i.e. on the slowest node),
# kubeadm init, one kubeadm join.
INSTALL_TASKS = (
    "Install the packages the Kubernetes roles need",
    "Install what the deb822 repository module needs",
    "Install the pinned packages",
    "Download and verify the release archives",
    "Unpack containerd into /usr/local",
    "Install runc",
    "Unpack the CNI plugins",
    "Unpack crictl into /usr/local/bin",
)
INIT_TASK, JOIN_TASK = "Run kubeadm init", "Run kubeadm join"


def lab_env() -> dict[str, str]:
    out = subprocess.run(["bash", "-c", f". '{REPO}/lab/lab.env' && env -0"], check=True, capture_output=True).stdout
    return dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)


ENV = {**os.environ, **lab_env(), "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}


class AwsCallCounter:
    """HTTP proxy on loopback in front of moto_server that counts requests by service and action."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.calls: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's naming
                self._forward()

            def do_GET(self):  # noqa: N802
                self._forward()

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                counter.count(self.headers, self.path, body)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(counter.upstream + self.path, data=body or None, headers=headers,
                                             method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        status, rheaders, rbody = resp.status, resp.getheaders(), resp.read()
                except urllib.error.HTTPError as e:
                    status, rheaders, rbody = e.code, e.headers.items(), e.read()
                self.send_response(status)
                for k, v in rheaders:
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(rbody)))
                self.end_headers()
                self.wfile.write(rbody)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, headers, path: str, body: bytes) -> None:
        target = headers.get("X-Amz-Target")  # JSON protocol (SSM, KMS): AmazonSSM.PutParameter
        if target:
            service, action = target.split(".", 1)
            service = service.replace("Amazon", "").lower()
        else:  # query protocol (EC2, IAM, STS): Action=DescribeInstances in the form body or the URL
            form = urllib.parse.parse_qs(body.decode(errors="replace")) or urllib.parse.parse_qs(
                urllib.parse.urlsplit(path).query)
            action = (form.get("Action") or ["?"])[0]
            auth = headers.get("Authorization", "")
            service = auth.split("/")[3] if auth.count("/") >= 4 else "?"  # Credential=AKID/date/region/service/...
        with self.lock:
            self.calls[f"{service}:{action}"] += 1

    def take(self) -> dict[str, int]:
        with self.lock:
            calls, self.calls = dict(sorted(self.calls.items())), collections.Counter()
        return calls


class CpuMeter:
    """CPU seconds a run used on this machine: all of it (/proc/stat), the controller's (ansible-playbook,
    its workers and the docker CLI they start: the children's rusage) and the lab nodes' (the node
    containers' cgroups: module runs, apt, unpacking, the kubelet and its pods). busy / cores is the
    shortest wall time the run could take here, however well its steps overlapped."""

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float | None]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        nodes = [Path(p) for p in glob.glob("/sys/fs/cgroup/cpuacct/docker/*/cpuacct.usage")]  # cgroup v1 (the lab's)
        node_s = sum(int(p.read_text()) for p in nodes) / 1e9 if nodes else None
        return busy, ru.ru_utime + ru.ru_stime, node_s

    def take(self) -> dict:
        (b0, c0, n0), (b1, c1, n1) = self.start, self._read()
        out = {"busy_s": round(b1 - b0, 1), "controller_s": round(c1 - c0, 1),
               "nodes_s": round(n1 - n0, 1) if n0 is not None and n1 is not None else None}
        out["cpu_bound_s"] = round(out["busy_s"] / (os.cpu_count() or 1), 1)
        return out


def run_playbook(label: str, cmd: list[str], cwd: Path, env: dict[str, str],
                 before=None, after=None) -> dict:
    """Run one ansible-playbook command with the ansible.posix.json callback, timed: the callback's
    parsed result plus `seconds` (wall time), `cpu` (CpuMeter) and `tasks` (task results that ran,
    ok or failed, summed over the hosts). Shared by this bench and scripts/bench_peer.py (which runs
    kubespray with it). `before`/`after` run right around the command (the AWS call counter).
    The callback's output is kept in bench/runs/<label>.json for a closer look; a failed run ends
    the benchmark with its output's tail."""
    env = {**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    if before:
        before()
    cpu = CpuMeter()
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    seconds = round(time.monotonic() - t0, 1)
    cpu_used = cpu.take()
    extra = after() if after else {}
    if p.returncode != 0:
        runs = REPO / "bench" / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        (runs / f"{label}.failed.log").write_text(p.stdout + "\n--- stderr ---\n" + p.stderr)
        sys.stderr.write(p.stdout[-8000:] + p.stderr[-3000:])
        raise SystemExit(f"bench: {label}: {' '.join(cmd[-4:])} failed (rc={p.returncode}); "
                         f"output in bench/runs/{label}.failed.log")
    # The JSON document starts on a line of its own; other callbacks (profile_tasks) print around it.
    start = 0 if p.stdout.startswith("{\n") else p.stdout.index("\n{\n") + 1
    result, _ = json.JSONDecoder().raw_decode(p.stdout, start)
    result.update(seconds=seconds, cpu=cpu_used, tasks=tasks_run(result), **extra)
    runs = REPO / "bench" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    (runs / f"{label}.json").write_text(json.dumps(result, indent=1))
    print(f"bench: {label}: {seconds} s, changed={changed(result)}, tasks={result['tasks']}, cpu={cpu_used}"
          + (f", aws_calls={sum(extra['aws_calls'].values())}" if "aws_calls" in extra else ""), flush=True)
    return result


class Bench:
    def __init__(self, counter: AwsCallCounter):
        self.counter = counter
        self.facts = Path(tempfile.mkdtemp(prefix="kubeadm-aws-bench-facts-"))

    def playbook(self, label: str, name: str, *args: str, extra_vars: tuple[str, ...] = ()) -> dict:
        """Run a playbook of this collection against the lab (run_playbook), counting AWS calls."""
        cmd = [str(REPO / ".venv/bin/ansible-playbook"), "-i", "inventory/lab.aws_ec2.yml", "-e", "@lab/lab-vars.yml",
               "-e", "argocd_enabled=false", *(a for v in extra_vars for a in ("-e", v)), f"playbooks/{name}", *args]
        env = {**ENV, "AWS_ENDPOINT_URL": self.counter.url, "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(self.facts)}
        return run_playbook(label, cmd, REPO, env, before=self.counter.take,
                            after=lambda: {"aws_calls": self.counter.take()})

    def fresh_lab(self, control_planes: int, workers: int) -> None:
        # lab/lab.sh down itself keeps (with a warning) a network the engine will not release.
        lab("down")
        lab("up", LAB_CONTROL_PLANES=str(control_planes), LAB_WORKERS=str(workers))
        shutil.rmtree(self.facts, ignore_errors=True)
        self.facts.mkdir()

    def round(self, control_planes: int, workers: int, scale_out: bool) -> dict:
        """Cold run, no-op re-run and (optionally) one worker added with join_workers.yml."""
        self.fresh_lab(control_planes, workers)
        hosts = control_planes + workers
        cold = self.playbook(f"{hosts}-hosts-cold", "site.yml")
        rerun = self.playbook(f"{hosts}-hosts-rerun", "site.yml")
        out = {
            "hosts": hosts,
            "cold_s": cold["seconds"],
            "floor_s": floor_seconds(cold),
            # One worker joining: every task the first worker ran in the cold run (preparation,
            # identity, join material, kubeadm join, labels), without the control plane's init.
            "join_one_s": host_path_seconds(cold, sorted(instance_names('worker'))[0]),
            "kubeadm_join_s": task_seconds(cold, JOIN_TASK),
            "rerun_s": rerun["seconds"],
            "rerun_changed": changed(rerun),
            "tasks_per_host": {h.split(".")[0]: s["ok"] + s.get("failures", 0) for h, s in cold["stats"].items()},
            "cold_cpu": cold["cpu"],
            "rerun_cpu": rerun["cpu"],
            "aws_calls": {"cold": cold["aws_calls"], "rerun": rerun["aws_calls"]},
        }
        if scale_out:
            before = instance_names()
            lab("up", LAB_CONTROL_PLANES=str(control_planes), LAB_WORKERS=str(workers + 1))
            new = sorted(instance_names() - before)
            if len(new) != 1:
                raise SystemExit(f"bench: expected one new lab instance, found {new}")
            scale = self.playbook(f"{hosts}-hosts-scale-out", "join_workers.yml", "--limit", new[0])
            out.update(scale_out_s=scale["seconds"], scale_out_changed_hosts=sorted(
                h.split(".")[0] for h, s in scale["stats"].items() if s.get("changed", 0)),
                scale_out_hosts=sorted(h.split(".")[0] for h in scale["stats"]),
                scale_out_join_s=task_seconds(scale, JOIN_TASK))
            out["aws_calls"]["scale_out"] = scale["aws_calls"]
        return out


def task_durations(result: dict):
    """(task name, seconds, hosts it ran on) for every task of a run; seconds is the task's wall time
    over all its hosts (the json callback records no per-host times)."""
    for play in result["plays"]:
        for task in play["tasks"]:
            d = task["task"].get("duration", {})
            ran = {h for h, r in task["hosts"].items() if not r.get("skipped")}
            if "start" in d and "end" in d and ran:
                s = dt.datetime.fromisoformat(d["start"].rstrip("Z"))
                e = dt.datetime.fromisoformat(d["end"].rstrip("Z"))
                # Role tasks are named "<role> : <task name>".
                yield task["task"]["name"].rpartition(" : ")[2], (e - s).total_seconds(), ran


def task_seconds(result: dict, name: str) -> float:
    return round(max((s for n, s, _ in task_durations(result) if n == name), default=0.0), 1)


def floor_seconds(result: dict) -> float:
    """Installs on the slowest node, plus kubeadm init and one kubeadm join. Under the linear strategy
    a task's time is its slowest host's; under the free strategy (the preparation play) each host's
    tasks are recorded apart, so the installs are summed per host and the largest sum counts."""
    per_host: collections.Counter[str] = collections.Counter()
    for name, seconds, ran in task_durations(result):
        if name in INSTALL_TASKS:
            for host in ran:
                per_host[host] += seconds
    installs = max(per_host.values(), default=0.0)
    return round(installs + task_seconds(result, INIT_TASK) + task_seconds(result, JOIN_TASK), 1)


def host_path_seconds(result: dict, host: str) -> float:
    """What one host went through in a run: the wall time of every task that ran on it."""
    return round(sum(s for _, s, ran in task_durations(result) if host in ran), 1)


def changed(result: dict) -> int:
    return sum(s.get("changed", 0) for s in result["stats"].values())


def tasks_run(result: dict) -> int:
    """Task results that ran (ok, which counts changed, or failed), summed over the hosts."""
    return sum(s.get("ok", 0) + s.get("failures", 0) for s in result["stats"].values())


def lab(*args: str, **env: str) -> None:
    subprocess.run([str(REPO / "lab/lab.sh"), *args], cwd=REPO, check=True, env={**ENV, **env},
                   stdout=subprocess.DEVNULL)


def instance_names(role: str | None = None) -> set[str]:
    """Private DNS names (the inventory's host names) of the lab's running instances, of one role or all."""
    ec2 = boto3.client("ec2", region_name=ENV["LAB_REGION"], endpoint_url=ENV["AWS_ENDPOINT_URL"],
                       aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"])
    filters = [{"Name": "tag:kubeadm-aws/cluster", "Values": [ENV["LAB_CLUSTER"]]},
               {"Name": "instance-state-name", "Values": ["running"]}]
    if role:
        filters.append({"Name": "tag:kubeadm-aws/role", "Values": [role]})
    res = ec2.describe_instances(Filters=filters)
    return {i["PrivateDnsName"] for r in res["Reservations"] for i in r["Instances"]}


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 control plane + 1 worker, no 10-host round")
    args = ap.parse_args()
    versions = dict(line.split("=", 1) for line in (REPO / "lab/versions.env").read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    res: dict = {
        "variant": "quick" if args.quick else "full",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "versions": {k.lower().removesuffix("_version"): versions[k] for k in (
            "KUBE_VERSION", "CONTAINERD_VERSION", "RUNC_VERSION", "ETCD_VERSION", "CNI_PLUGINS_VERSION")
            if k in versions},
    }
    t0 = time.monotonic()
    bench = Bench(AwsCallCounter(ENV["AWS_ENDPOINT_URL"]))
    main_round = bench.round(1, 1 if args.quick else 2, scale_out=True)
    res.update({k: v for k, v in main_round.items() if k != "aws_calls"})
    res["aws_calls"] = {f"{main_round['hosts']}_hosts": main_round["aws_calls"]}
    if not args.quick:
        big = bench.round(1, 9, scale_out=False)
        res["aws_calls"][f"{big['hosts']}_hosts"] = big["aws_calls"]
        res["ten_hosts"] = {k: big[k] for k in ("cold_s", "floor_s", "rerun_s", "rerun_changed", "cold_cpu")}
    res["cold_over_floor"] = ratio(res["cold_s"], res["floor_s"])
    res["rerun_over_cold"] = ratio(res["rerun_s"], res["cold_s"])
    res["scale_out_over_join_one"] = ratio(res["scale_out_s"], res["join_one_s"])
    res["bench_s"] = round(time.monotonic() - t0)
    out = REPO / "bench" / ("results-quick.json" if args.quick else "results.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    if not args.quick:
        write_table(res)


def total(calls: dict) -> int:
    return sum(calls.values())


def write_table(res: dict) -> None:
    a3, a10 = res["aws_calls"]["3_hosts"], res["aws_calls"]["10_hosts"]
    rows = [
        ("machine", f"{res['cores']} cores; {', '.join(f'{k} {v}' for k, v in res['versions'].items())}"),
        ("cold_s (1 control plane + 2 workers, bare → all Ready)", res["cold_s"]),
        ("floor_s (installs + kubeadm init + one join)", res["floor_s"]),
        ("**cold_s / floor_s** (target ≤ 1.5)", res["cold_over_floor"]),
        ("cold run CPU seconds: all / controller / lab nodes",
         f"{res['cold_cpu']['busy_s']} / {res['cold_cpu']['controller_s']} / {res['cold_cpu']['nodes_s']}"),
        (f"cold run CPU-bound minimum (all CPU / {res['cores']} cores)", res["cold_cpu"]["cpu_bound_s"]),
        ("rerun_s", res["rerun_s"]),
        ("rerun_changed (target 0)", res["rerun_changed"]),
        ("**rerun_s / cold_s** (target ≤ 0.2)", res["rerun_over_cold"]),
        ("join_one_s (tasks a worker ran in the cold run)", res["join_one_s"]),
        ("kubeadm join task", res["kubeadm_join_s"]),
        ("scale_out_s (join_workers.yml --limit new worker)", res["scale_out_s"]),
        ("**scale_out_s / join_one_s** (target ≤ 1.3)", res["scale_out_over_join_one"]),
        ("hosts in the scale-out run / changed", f"{', '.join(res['scale_out_hosts'])} / "
                                                  f"{', '.join(res['scale_out_changed_hosts']) or 'none'}"),
        ("tasks_per_host (cold)", ", ".join(f"{h}: {n}" for h, n in res["tasks_per_host"].items())),
        ("aws_calls 3 hosts: cold / re-run / scale-out",
         f"{total(a3['cold'])} / {total(a3['rerun'])} / {total(a3['scale_out'])}"),
        ("aws_calls 10 hosts: cold / re-run", f"{total(a10['cold'])} / {total(a10['rerun'])}"),
        ("10 hosts: cold_s / rerun_s", f"{res['ten_hosts']['cold_s']} / {res['ten_hosts']['rerun_s']} "
                                       f"(changed {res['ten_hosts']['rerun_changed']})"),
    ]
    calls = sorted(set(a3["cold"]) | set(a3["rerun"]) | set(a10["cold"]) | set(a10["rerun"]))
    call_rows = "\n".join(f"| {c} | {a3['cold'].get(c, 0)} | {a10['cold'].get(c, 0)} | {a3['rerun'].get(c, 0)} | "
                          f"{a10['rerun'].get(c, 0)} |" for c in calls)
    block = "\n".join([
        "<!-- bench:start -->", f"Last full run: {res['date']} ({res['bench_s']} s for the whole benchmark).", "",
        "| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), "",
        "AWS calls per API action (counted at the proxy in front of moto_server):", "",
        "| action | cold, 3 hosts | cold, 10 hosts | re-run, 3 hosts | re-run, 10 hosts |", "|---|---|---|---|---|",
        call_rows, "<!-- bench:end -->"])
    doc = REPO / "docs" / "benchmarks.md"
    text = doc.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start in text:
        text = text.split(start)[0] + block + text.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


if __name__ == "__main__":
    main()
