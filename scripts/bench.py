#!/usr/bin/env python3
"""Converge benchmark on the lab: cold bring-up, no-op re-run, scale-out, AWS calls.

    scripts/bench.sh            # full: fresh lab (1 control plane, 2 workers), cold, re-run, scale-out
    scripts/bench.sh --quick    # re-run only, on the running lab cluster (what `make test` exercises)

Writes bench/results.json and the table in docs/benchmarks.md. Times come from the runs themselves
(wall clock) and from the ansible.posix.json callback's per-host task timings (floor_s, join_one_s).
AWS calls are the requests moto_server logged during each run (one line per API request).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOOR_TASKS = (  # steps no tool can skip: installs on the slowest node, kubeadm init, one kubeadm join
    "Install the packages the Kubernetes roles need",
    "Download and verify the release archives",
    "Unpack containerd into /usr/local",
    "Install runc",
    "Unpack the CNI plugins",
    "Unpack crictl into /usr/local/bin",
    "Install the pinned packages",
)


def lab_env() -> dict[str, str]:
    out = subprocess.run(["bash", "-c", f". '{REPO}/lab/lab.env' && env -0"], check=True, capture_output=True).stdout
    return dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)


ENV = {**os.environ, **lab_env(), "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}


def moto_requests() -> int:
    log = Path(ENV["LAB_STATE_DIR"]) / "moto.log"
    if not log.exists():
        return -1
    return sum(1 for line in log.read_text(errors="replace").splitlines() if '"POST ' in line or '"GET ' in line)


def playbook(name: str, *args: str, env: dict | None = None) -> tuple[float, dict, int]:
    """Run a playbook with the JSON callback; return (seconds, parsed JSON, AWS requests)."""
    before = moto_requests()
    cmd = [str(REPO / ".venv/bin/ansible-playbook"), "-i", "inventory/lab.aws_ec2.yml", "-e", "@lab/lab-vars.yml",
           "-e", "argocd_enabled=false", f"playbooks/{name}", *args]
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                       env={**ENV, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_CALLBACKS_ENABLED": "",
                            **(env or {})})
    seconds = time.monotonic() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-5000:] + p.stderr[-3000:])
        raise SystemExit(f"{name} failed (rc={p.returncode})")
    return seconds, json.loads(p.stdout[p.stdout.index("{"):]), moto_requests() - before


def task_durations(result: dict) -> list[tuple[str, str, float]]:
    """(task name, host, seconds) for every task result of a run."""
    out = []
    for play in result["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                d = task["task"].get("duration", {})
                if "start" in d and "end" in d:
                    s = dt.datetime.fromisoformat(d["start"].rstrip("Z"))
                    e = dt.datetime.fromisoformat(d["end"].rstrip("Z"))
                    out.append((task["task"]["name"], host, (e - s).total_seconds()))
    return out


def floor_seconds(result: dict) -> float:
    per_host: dict[str, float] = {}
    init = join = 0.0
    for name, host, sec in task_durations(result):
        if name in FLOOR_TASKS:
            per_host[host] = per_host.get(host, 0.0) + sec
        elif name == "Run kubeadm init":
            init = max(init, sec)
        elif name == "Run kubeadm join":
            join = max(join, sec)
    return round(max(per_host.values(), default=0.0) + init + join, 1)


def join_seconds(result: dict) -> float:
    return round(max((s for n, _, s in task_durations(result) if n == "Run kubeadm join"), default=0.0), 1)


def changed(result: dict) -> int:
    return sum(s.get("changed", 0) for s in result["stats"].values())


def lab(*args: str, **env: str) -> None:
    subprocess.run([str(REPO / "lab/lab.sh"), *args], cwd=REPO, check=True, env={**ENV, **env})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="re-run only, on the running lab cluster")
    args = ap.parse_args()
    res: dict = {"cores": os.cpu_count(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    versions = dict(line.split("=", 1) for line in (REPO / "lab/versions.env").read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    res["versions"] = {k: versions[k] for k in ("KUBE_VERSION", "CONTAINERD_VERSION", "RUNC_VERSION", "ETCD_VERSION")}
    if not args.quick:
        lab("down")
        lab("up", LAB_CONTROL_PLANES="1", LAB_WORKERS="2")
        cold_s, cold, cold_calls = playbook("site.yml")
        res.update(cold_s=round(cold_s, 1), floor_s=floor_seconds(cold), join_one_s=join_seconds(cold),
                   tasks_per_host={h: s["ok"] + s.get("failures", 0) for h, s in cold["stats"].items()},
                   aws_calls={"cold_3_hosts": cold_calls})
    rerun_s, rerun, rerun_calls = playbook("site.yml")
    res.update(rerun_s=round(rerun_s, 1), rerun_changed=changed(rerun))
    res.setdefault("aws_calls", {})["rerun_3_hosts"] = rerun_calls
    if not args.quick:
        lab("up", LAB_WORKERS="3")
        new = "ip-10-213-0-23.ec2.internal"
        scale_s, scale, scale_calls = playbook("join_workers.yml", "--limit", new)
        res.update(scale_out_s=round(scale_s, 1), scale_out_hosts=sorted(scale["stats"]))
        res["aws_calls"]["scale_out"] = scale_calls
        res["cold_over_floor"] = round(res["cold_s"] / res["floor_s"], 2) if res["floor_s"] else None
        res["rerun_over_cold"] = round(res["rerun_s"] / res["cold_s"], 2)
        res["scale_out_over_join_one"] = round(res["scale_out_s"] / res["join_one_s"], 2) if res["join_one_s"] else None
    res["aws_calls"]["10_hosts"] = None  # not measured: see docs/benchmarks.md
    out = REPO / "bench" / ("results-quick.json" if args.quick else "results.json")
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    if not args.quick:
        write_table(res)


def write_table(res: dict) -> None:
    rows = [("cores", res["cores"]), ("cold_s", res["cold_s"]), ("floor_s", res["floor_s"]),
            ("cold_s / floor_s (target ≤ 1.5)", res["cold_over_floor"]), ("rerun_s", res["rerun_s"]),
            ("rerun_changed (target 0)", res["rerun_changed"]), ("rerun_s / cold_s (target ≤ 0.2)", res["rerun_over_cold"]),
            ("join_one_s", res["join_one_s"]), ("scale_out_s", res["scale_out_s"]),
            ("scale_out_s / join_one_s (target ≤ 1.3)", res["scale_out_over_join_one"]),
            ("hosts in the scale-out run", ", ".join(res["scale_out_hosts"])),
            ("tasks_per_host (cold)", ", ".join(f"{h.split('.')[0]}: {n}" for h, n in res["tasks_per_host"].items())),
            ("AWS calls, cold / re-run / scale-out (3 hosts)",
             f"{res['aws_calls']['cold_3_hosts']} / {res['aws_calls']['rerun_3_hosts']} / {res['aws_calls']['scale_out']}"),
            ("versions", ", ".join(f"{k}={v}" for k, v in res["versions"].items()))]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    doc = REPO / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else ""
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    block = f"{start}\nLast run: {res['date']}\n\n| measure | value |\n|---|---|\n{table}\n{end}"
    text = text.split(start)[0] + block + (text.split(end)[1] if end in text else "\n")
    doc.write_text(text)


if __name__ == "__main__":
    main()
