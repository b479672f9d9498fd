"""Role asg and playbooks/asg.yml: the user data stub (its rendered size with realistic long values, what
it sends to AWX and how it retries, no join material in it), bad input refused before any AWS call, and
the launch template, Auto Scaling group (tags propagated at launch) and lifecycle hooks created in
moto_server, a second run changing nothing."""

import base64
import http.server
import json
import os
import re
import subprocess
import threading

import pytest
import yaml

from conftest import REPO

LONG_CALLBACK = ("https://automation-controller.platform-engineering.eu-west-1.internal.example-company.com"
                 "/api/v2/job_templates/123456/callback/")
LONG_KEY = "k" * 64 + "-" + "0123456789abcdef" * 3  # 113 characters, AWX's keys are 32
MAX_BYTES = 1024


def render_user_data(run_playbook, tmp_path, **variables):
    out = tmp_path / "user-data"
    play = [{
        "name": "Render the user data", "hosts": "localhost", "gather_facts": False,
        "vars": {"cluster_settings_validated": True, "kubeadm_aws_cluster_name": "a-long-production-cluster-name",
                 **variables},
        "tasks": [
            {"name": "Render", "ansible.builtin.include_role": {"name": "sesacthon.kubeadm_aws.asg",
                                                                "tasks_from": "user_data"}},
            {"name": "Write", "ansible.builtin.copy": {"content": "{{ asg_user_data }}", "dest": str(out),
                                                       "mode": "0600"}},
        ],
    }]
    p = run_playbook(yaml.safe_dump(play))
    return p, (out.read_text() if out.exists() else None)


@pytest.mark.parametrize("mode, variables", [
    ("callback", {"asg_callback_url": LONG_CALLBACK, "asg_callback_host_config_key": LONG_KEY,
                  "asg_callback_attempts": 1000, "asg_callback_max_delay": 3600}),
    ("pull", {"asg_pull_extra_vars": {"kubeadm_aws_kubernetes_version": "1.36.3",
                                      "kubeadm_aws_endpoint_url": "https://ssm.eu-west-1.amazonaws.com",
                                      "kubeadm_aws_kms_key_id": "arn:aws:kms:eu-west-1:123456789012:key/"
                                                                "0123abcd-45ef-67ab-89cd-0123456789ab"}}),
])
def test_user_data_stays_under_1_kb_with_long_values(run_playbook, tmp_path, mode, variables):
    p, text = render_user_data(run_playbook, tmp_path, asg_mode=mode, **variables)
    assert p.returncode == 0, p.stdout[-3000:]
    size = len(text.encode())
    print("%s user data: %d bytes" % (mode, size))
    assert text.startswith("#!/bin/sh\n") and size <= MAX_BYTES, (size, text)
    assert LONG_KEY not in p.stdout  # rendered under no_log
    # No join material: no token, CA hash, certificate key or kubeconfig, no AWS keys.
    for pattern in (r"[a-z0-9]{6}\.[a-z0-9]{16}", r"sha256:[0-9a-f]{64}", r"\b[0-9a-f]{64}\b", r"AKIA[0-9A-Z]{16}",
                    r"certificate-authority-data", r"BEGIN "):
        assert not re.search(pattern, text), pattern
    subprocess.run(["sh", "-n"], input=text, text=True, check=True)


def test_too_long_user_data_is_refused(run_playbook, tmp_path):
    p, _ = render_user_data(run_playbook, tmp_path, asg_mode="pull",
                            asg_pull_extra_vars={"kubeadm_aws_node_labels": {"x" * 60: "y" * 60 for _ in range(1)},
                                                 "padding": "p" * 1000})
    assert p.returncode != 0 and "more than 1024" in p.stdout, p.stdout[-2000:]


class Recorder(http.server.BaseHTTPRequestHandler):
    """AWX's callback endpoint as the stub sees it: 400 (no matching host) until the inventory sync
    has caught up, then 201 (job launched)."""
    answers = []
    requests = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        type(self).requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                    "body": body})
        code = type(self).answers.pop(0) if type(self).answers else 201
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"msg": "No matching host could be found!"}' if code == 400 else b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def awx_endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def run_stub(tmp_path, text):
    """The stub as cloud-init runs it (a #! script), with sleep and logger recorded instead of waited."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("sleep", "logger"):
        tool = bindir / name
        tool.write_text('#!/bin/sh\necho "%s $*" >> "%s"\n' % (name, tmp_path / "calls"))
        tool.chmod(0o755)
    script = tmp_path / "part-001"
    script.write_text(text)
    script.chmod(0o700)
    env = {**os.environ, "PATH": "%s:%s" % (bindir, os.environ["PATH"])}
    p = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    return p, calls


def test_callback_stub_retries_with_backoff_until_awx_launches_the_job(run_playbook, tmp_path, awx_endpoint):
    url = "http://127.0.0.1:%d/api/v2/job_templates/42/callback/" % awx_endpoint.server_port
    key = "0123456789abcdef0123456789abcdef"
    p, text = render_user_data(run_playbook, tmp_path, asg_mode="callback", asg_callback_url=url,
                               asg_callback_host_config_key=key, asg_callback_max_delay=20)
    assert p.returncode == 0, p.stdout[-3000:]
    Recorder.answers = [400, 400, 502, 400]  # the inventory sync has not seen the instance yet
    run, calls = run_stub(tmp_path, text)
    assert run.returncode == 0, run.stderr
    assert len(Recorder.requests) == 5
    for r in Recorder.requests:
        assert r["path"] == "/api/v2/job_templates/42/callback/"
        assert r["content_type"] == "application/json"
        assert json.loads(r["body"]) == {"host_config_key": key}
    assert [c for c in calls if c.startswith("sleep")] == ["sleep 5", "sleep 10", "sleep 20", "sleep 20"]
    assert "logger -t kubeadm-aws provisioning callback 5: HTTP 201" in calls


def test_callback_stub_gives_up(run_playbook, tmp_path, awx_endpoint):
    url = "http://127.0.0.1:%d/api/v2/job_templates/42/callback/" % awx_endpoint.server_port
    p, text = render_user_data(run_playbook, tmp_path, asg_mode="callback", asg_callback_url=url,
                               asg_callback_host_config_key="0123456789abcdef", asg_callback_attempts=3)
    assert p.returncode == 0, p.stdout[-3000:]
    Recorder.answers = [400] * 10
    run, _ = run_stub(tmp_path, text)
    assert run.returncode == 1 and len(Recorder.requests) == 3
    # A wrong key (403) is not retried.
    Recorder.requests, Recorder.answers = [], [403]
    (tmp_path / "bin").rename(tmp_path / "bin-1")
    run, _ = run_stub(tmp_path, text)
    assert run.returncode == 1 and len(Recorder.requests) == 1


# ------------------------------------------------------------------------------------------------
# playbooks/asg.yml against moto_server
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def subnet(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]


def run_asg(ansible_env, proxy, cluster, extra, check=False):
    variables = {"kubeadm_aws_cluster_name": cluster, "kubeadm_aws_region": "us-east-1",
                 "kubeadm_aws_endpoint_url": proxy.url, "kubeadm_aws_require_control_plane": False, **extra}
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", "localhost,", "-c", "local",
           str(REPO / "playbooks" / "asg.yml"), "-e", json.dumps(variables)]
    if check:
        cmd.append("--check")
    env = {**ansible_env, "ANSIBLE_PYTHON_INTERPRETER": os.path.join(os.path.dirname(ansible_env.get("_PY", "")), "")}
    env.pop("ANSIBLE_PYTHON_INTERPRETER")
    return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


def test_bad_input_is_refused_before_any_call(ansible_env, proxy, cluster):
    p = run_asg(ansible_env, proxy, cluster, {"asg_image_id": "", "asg_subnet_ids": [], "asg_mode": "callback",
                                              "asg_callback_url": "http://x/", "asg_callback_host_config_key": "k"})
    assert p.returncode != 0, p.stdout[-3000:]
    for message in ("asg_image_id must be an AMI id", "asg_subnet_ids must name at least one subnet",
                    "provisioning callback", "host config key"):
        assert message in p.stdout, p.stdout[-3000:]
    changing = [c.action for c in proxy.calls if not c.action.startswith(("Describe", "Get"))]
    assert not [c for c in proxy.calls if c.service in ("ec2", "autoscaling")] and not changing, proxy.calls


def test_asg_created_with_tags_hooks_and_small_user_data(ansible_env, proxy, cluster, ami, subnet, moto):
    import boto3

    extra = {"asg_image_id": ami, "asg_subnet_ids": [subnet], "asg_mode": "callback",
             "asg_callback_url": "https://awx.example.com/api/v2/job_templates/42/callback/",
             "asg_callback_host_config_key": "0123456789abcdef0123456789abcdef", "asg_max_size": 4,
             "asg_tags": {"k8s.io/label/lab.sesacthon.io/tier": "backend",
                          "k8s.io/taint/lab.sesacthon.io/dedicated": "infra:NoSchedule"}}
    preview = run_asg(ansible_env, proxy, cluster, extra, check=True)
    assert preview.returncode == 0, preview.stdout[-4000:]
    p = run_asg(ansible_env, proxy, cluster, extra)
    assert p.returncode == 0, p.stdout[-4000:]
    assert "0123456789abcdef0123456789abcdef" not in p.stdout
    kw = dict(endpoint_url=moto, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    asg = boto3.client("autoscaling", **kw)
    ec2 = boto3.client("ec2", **kw)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["%s-workers" % cluster])["AutoScalingGroups"][0]
    tags = {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group["Tags"]}
    assert tags["kubeadm-aws/cluster"] == (cluster, True)
    assert tags["kubeadm-aws/role"] == ("worker", True)
    assert tags["kubernetes.io/cluster/%s" % cluster] == ("owned", True)
    assert tags["k8s.io/taint/lab.sesacthon.io/dedicated"] == ("infra:NoSchedule", True)
    assert group["MinSize"] == 0 and group["MaxSize"] == 4 and group["VPCZoneIdentifier"] == subnet
    hooks = {h["LifecycleHookName"]: h for h in asg.describe_lifecycle_hooks(
        AutoScalingGroupName=group["AutoScalingGroupName"])["LifecycleHooks"]}
    assert hooks["kubeadm-aws-launch"]["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    assert hooks["kubeadm-aws-launch"]["DefaultResult"] == "ABANDON"
    assert hooks["kubeadm-aws-terminate"]["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    version = ec2.describe_launch_template_versions(LaunchTemplateName="%s-workers" % cluster,
                                                    Versions=["$Latest"])["LaunchTemplateVersions"][0]
    user_data = base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()
    assert len(user_data.encode()) <= MAX_BYTES and "job_templates/42/callback/" in user_data
    assert version["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    # A second run changes nothing (and no new template version).
    again = run_asg(ansible_env, proxy, cluster, extra)
    assert again.returncode == 0 and re.search(r"localhost\s+: ok=\d+\s+changed=0 ", again.stdout), again.stdout[-4000:]
    assert len(ec2.describe_launch_template_versions(LaunchTemplateName="%s-workers" % cluster)
               ["LaunchTemplateVersions"]) == 1
