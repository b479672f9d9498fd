"""Fixtures of the autoscaling tests (molecule scenario `autoscaling`): the lab cluster it builds (1 control
plane, no static worker), the workers' Auto Scaling group from playbooks/asg.yml in moto (with the lifecycle
hooks of lab/lib/moto_lifecycle.py), lab/lib/asg_launcher.py playing EC2 for the group's instances, a
recorded AWX callback endpoint on the lab gateway, and AWX's join job run as AWX runs it (ansible-runner,
tests/awx/test_runner_join.py's private data directory, limit=<host>).

The tests run in file order and change the cluster as they go. A missing cluster is a failure.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

_spec = importlib.util.spec_from_file_location("cluster_conftest", REPO / "tests" / "cluster" / "conftest.py")
cluster = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster)

lab_env = cluster.lab_env
kubeconfig = cluster.kubeconfig
k8s = cluster.k8s
core = cluster.core
ec2 = cluster.ec2
ssm = cluster.ssm
recap = cluster.recap
wait_for = cluster.wait_for
tags_of = cluster.tags_of

sys.path.insert(0, str(REPO / "tests" / "awx"))
import test_runner_join as runner  # noqa: E402  (AWX's job, laid out as AWX lays it out)

CLUSTER = os.environ.get("LAB_CLUSTER", "lab")
PREFIX = "/kubeadm-aws/%s" % CLUSTER
GROUP = "%s-workers" % CLUSTER
HOST_CONFIG_KEY = "lab-host-config-key-0123456789abcdef"
LOG_DIR = REPO / ".ansible" / "autoscaling-logs"


def run_playbook(playbook: str, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    """ansible-playbook against the lab inventory with the lab's variables; the output is kept."""
    p = cluster.run_playbook(playbook, *args, timeout=timeout)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / ("%s-%s.log" % (time.strftime("%H%M%S"), playbook.replace("/", "_")))).write_text(
        "$ %s %s\n%s\n%s" % (playbook, " ".join(args), p.stdout, p.stderr))
    return p


def tail(p, n: int = 6000) -> str:
    return (p.stdout + p.stderr)[-n:]


@pytest.fixture(scope="session")
def autoscaling(lab_env):
    region = lab_env["LAB_REGION"]
    return boto3.client("autoscaling", region_name=region, endpoint_url=lab_env["AWS_ENDPOINT_URL"])


# ------------------------------------------------------------------------------------------------
# The recorded AWX callback endpoint
# ------------------------------------------------------------------------------------------------
class CallbackRecorder(http.server.BaseHTTPRequestHandler):
    """AWX's /api/v2/job_templates/<id>/callback/ as an instance sees it: every request recorded
    (source address, path, body), answered 201 (job launched). The test then runs the job itself."""

    requests: list[dict] = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        with self.lock:
            type(self).requests.append({"ip": self.client_address[0], "path": self.path, "body": body,
                                        "content_type": self.headers.get("Content-Type"), "time": time.time()})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"msg": "recorded"}')

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def callback_endpoint(lab_env):
    server = http.server.ThreadingHTTPServer((lab_env["LAB_GATEWAY"], 0), CallbackRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = "http://%s:%d/api/v2/job_templates/42/callback/" % (lab_env["LAB_GATEWAY"], server.server_port)
    yield {"url": url, "recorder": CallbackRecorder}
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------------------------------------
# The Auto Scaling group and the launcher
# ------------------------------------------------------------------------------------------------
def lab_image(ec2) -> str:
    sys.path.insert(0, str(REPO / "lab" / "lib"))
    import moto_ec2

    return moto_ec2.pick_image(ec2)


def asg_args(lab_env, ec2, callback_url: str, mode: str = "callback") -> list[str]:
    subnet = ec2.describe_subnets(Filters=[{"Name": "cidr-block", "Values": [lab_env["LAB_SUBNET"]]}])["Subnets"][0]
    variables = {
        "asg_image_id": lab_image(ec2),
        "asg_subnet_ids": [subnet["SubnetId"]],
        "asg_instance_type": lab_env.get("LAB_INSTANCE_TYPE", "t3.medium"),
        "asg_instance_profile": "%s-worker" % CLUSTER,
        "asg_min_size": 0,
        "asg_max_size": 8,
        "asg_mode": mode,
        "asg_callback_url": callback_url if mode == "callback" else "",
        "asg_callback_host_config_key": HOST_CONFIG_KEY if mode == "callback" else "",
        "asg_tags": {"k8s.io/label/lab.sesacthon.io/tier": "backend",
                     "k8s.io/taint/lab.sesacthon.io/dedicated": "infra:NoSchedule"},
    }
    return ["-e", json.dumps(variables)]


@pytest.fixture(scope="session")
def worker_profile(lab_env):
    sys.path.insert(0, str(REPO / "lab" / "lib"))
    import moto_ec2

    iam = boto3.client("iam", region_name=lab_env["LAB_REGION"], endpoint_url=lab_env["AWS_ENDPOINT_URL"])
    return moto_ec2.ensure_instance_profile(iam, CLUSTER, "worker")


@pytest.fixture(scope="session")
def group(lab_env, ec2, autoscaling, callback_endpoint, worker_profile, kubeconfig):
    """The workers' group, built by playbooks/asg.yml with the lab's values (desired capacity 0)."""
    p = run_playbook("asg.yml", *asg_args(lab_env, ec2, callback_endpoint["url"]))
    assert p.returncode == 0, tail(p)
    yield GROUP
    # Teardown: the group goes with its instances; the launcher removes their machines.
    try:
        autoscaling.delete_auto_scaling_group(AutoScalingGroupName=GROUP, ForceDelete=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


class Launcher:
    """lab/lib/asg_launcher.py in the background; its events are collected."""

    def __init__(self, group_name: str, env: dict):
        self.events: list[dict] = []
        log = LOG_DIR / ("%s-launcher.log" % time.strftime("%H%M%S"))
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.stderr = open(log, "w")
        self.proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "python"), str(REPO / "lab" / "lib" / "asg_launcher.py"),
                                      "run", "--group", group_name], stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def event(self, kind: str, instance_id: str) -> dict | None:
        return next((e for e in self.events if e["event"] == kind and e.get("instance_id") == instance_id), None)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.stderr.close()


@pytest.fixture(scope="session")
def launcher(group, lab_env):
    env = {**os.environ, **{k: v for k, v in lab_env.items() if k.startswith(("AWS_", "LAB_", "KUBEADM_AWS"))}}
    launcher = Launcher(group, env)
    yield launcher
    launcher.stop()
    # The group is deleted by now (fixture order): one last pass removes the machines left.
    subprocess.run([str(REPO / ".venv" / "bin" / "python"), str(REPO / "lab" / "lib" / "asg_launcher.py"), "run",
                    "--group", group, "--once"], env=env, capture_output=True, timeout=300)


# ------------------------------------------------------------------------------------------------
# AWX: the join job a callback launches
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def awx(tmp_path_factory, lab_env, kubeconfig):
    """What AWX has for a callback: the rendered configuration, the EE's collections, the project."""
    tmp = tmp_path_factory.mktemp("awx")
    (tmp / "cfg").mkdir()
    config = runner.render_awx_config(tmp / "cfg", {"kubeadm_aws_awx_host_config_key": HOST_CONFIG_KEY})
    context = subprocess.run([str(REPO / "awx" / "ee" / "build-context.sh"), str(tmp / "context")], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    assert context.returncode == 0, context.stderr
    cfg = tmp / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_GALAXY_DISABLE_GPG_VERIFY": "1"})
    res = runner.galaxy_install_from_context(tmp / "context" / "_build", tmp / "collections", env)
    assert res.returncode == 0, res.stdout + res.stderr
    (tmp / "project").mkdir()
    project = runner.checkout(tmp / "project")
    lab = {**lab_env, "KUBECONFIG_PATH": kubeconfig}
    template = next(t for t in config["job_templates"] if t["host_config_key"])
    return {"config": config, "collections": tmp / "collections", "project": project, "lab": lab,
            "template": template, "tmp": tmp}


def callback_job(awx, name: str, extra_vars: dict | None = None) -> runner.AwxJob:
    """The job AWX launches for a callback from host `name`: the callback template (its extra vars and
    survey defaults), the inventory as AWX's sync exports it, limit=<host>."""
    export = runner.inventory_update(awx["project"], awx["lab"], awx["config"], awx["collections"])
    assert name in export["_meta"]["hostvars"], "the inventory sync does not see %s" % name
    job = runner.AwxJob(awx["tmp"] / ("job-%s-%d" % (name, int(time.time() * 1000))), awx["lab"], awx["config"],
                        awx["collections"], awx["project"])
    job.template = awx["template"]
    inv = job.prepare(runner.job_inventory(export), limit=name)
    if extra_vars:
        import yaml

        path = job.pdd / "env" / "extravars"
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **extra_vars}))
    job.inventory_path = inv
    return job
