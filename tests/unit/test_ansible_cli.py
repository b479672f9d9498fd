"""The modules through the real ansible / ansible-playbook CLIs: FQCN resolution, the `aws` action
group in module_defaults, check mode from --check, and that secrets stay out of -vvv output and logs."""

import json
import re

import pytest

TOKEN = "q1w2e3.r4t5y6u7i8o9p0a1"
CERT_KEY = "deadbeef" * 8
CA_HASH = "sha256:" + "0c" * 32


def play(endpoint, cluster, read_no_log=True, instance_ids=(), only_join_material=False):
    text = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/sesacthon.kubeadm_aws.aws:
      endpoint_url: "%(endpoint)s"
      region: us-east-1
  tasks:
    - name: Publish join material (task without no_log on purpose)
      sesacthon.kubeadm_aws.ssm_join_material:
        cluster_name: %(cluster)s
        api_endpoint: 10.0.0.10:6443
        token: %(token)s
        ca_cert_hashes: ["%(hash)s"]
        certificate_key: %(key)s
    - name: Read join material
      sesacthon.kubeadm_aws.ssm_join_material:
        cluster_name: %(cluster)s
        state: read
        material: [control_plane]
        min_ttl: 1h
      register: jm
      no_log: %(read_no_log)s
    - name: The play can use the secrets
      ansible.builtin.assert:
        that:
          - jm.worker.token == '%(token)s'
          - jm.control_plane.certificate_key == '%(key)s'
          - jm.token_usable
        quiet: true
      no_log: true
#SPLIT
    - name: Lock
      sesacthon.kubeadm_aws.ssm_init_lock:
        cluster_name: %(cluster)s
        holder: cli-run
      register: lock
    - name: Node status
      sesacthon.kubeadm_aws.ssm_node_status:
        cluster_name: %(cluster)s
        node_name: cp1
        status: joined
    - name: Node identity
      sesacthon.kubeadm_aws.ec2_node_identity:
        cluster_name: %(cluster)s
        instance_ids: %(ids)s
      register: ident
    - name: Results are usable
      ansible.builtin.assert:
        that:
          - lock.acquired
          - ident.instances | length == %(n)d
""" % dict(endpoint=endpoint, cluster=cluster, token=TOKEN, key=CERT_KEY, hash=CA_HASH,
           read_no_log="true" if read_no_log else "false", ids=json.dumps(list(instance_ids)),
           n=len(instance_ids))
    return text.split("#SPLIT")[0] if only_join_material else text.replace("#SPLIT\n", "")


@pytest.fixture
def instance_ids(ec2, ami):
    return [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2)["Instances"]]


def test_playbook_vvv_keeps_secrets_out(run_playbook, proxy, cluster, instance_ids, ssm):
    p = run_playbook(play(proxy.url, cluster, instance_ids=instance_ids), verbosity=3)
    assert p.returncode == 0, p.stdout[-4000:]
    assert re.search(r"localhost\s+: ok=7\s+changed=4 .*failed=0", p.stdout), p.stdout[-2000:]
    # the secrets were really written and read (the assert task passed) but never shown or logged
    assert json.loads(ssm.get_parameter(Name="/kubeadm-aws/%s/join/worker" % cluster,
                                        WithDecryption=True)["Parameter"]["Value"])["token"] == TOKEN
    with open(run_playbook.log_path) as fh:
        log = fh.read()
    assert "Publish join material" in log  # the log is written
    for secret in (TOKEN, TOKEN.split(".")[1], CERT_KEY):
        assert secret not in p.stdout
        assert secret not in log
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in p.stdout  # -vvv shows the invocation, censored


def test_read_without_no_log_still_masks_the_secrets(run_playbook, proxy, cluster):
    """A read task that forgets no_log: the action plugin marks the read result no_log itself, so the
    token and certificate key are still not shown, even with -vvv, while the play can use them (the
    assert task in the play compares them)."""
    p = run_playbook(play(proxy.url, cluster, read_no_log=False, only_join_material=True), verbosity=3)
    assert p.returncode == 0, p.stdout[-4000:]
    assert "the output has been hidden" in p.stdout
    for secret in (TOKEN, TOKEN.split(".")[1], CERT_KEY):
        assert secret not in p.stdout


def test_adhoc_check_mode(run_adhoc, ssm, cluster):
    p = run_adhoc("sesacthon.kubeadm_aws.ssm_node_status",
                  dict(cluster_name=cluster, node_name="n1", status="pending", region="us-east-1"), check=True)
    assert p.returncode == 0 and "CHANGED" in p.stdout, p.stdout
    assert ssm.get_parameters(Names=["/kubeadm-aws/%s/nodes/n1" % cluster])["Parameters"] == []
    p = run_adhoc("sesacthon.kubeadm_aws.ssm_node_status",
                  dict(cluster_name=cluster, node_name="n1", status="pending", region="us-east-1"))
    assert p.returncode == 0 and len(ssm.get_parameters(Names=["/kubeadm-aws/%s/nodes/n1" % cluster])["Parameters"]) == 1


def test_adhoc_missing_cluster_name(run_adhoc):
    p = run_adhoc("sesacthon.kubeadm_aws.ssm_init_lock", dict(holder="x", region="us-east-1"))
    assert p.returncode != 0 and "missing required arguments: cluster_name" in p.stdout
