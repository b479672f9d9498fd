"""The collection's filters through the real Ansible CLIs with the project's ansible.cfg (cwd: the
checkout): the FQCNs resolve, ansible-doc finds every filter's documentation, node_input_errors works on
Ansible's own hostvars, and the aws_ec2 inventory's compose can call tag_labels / tag_taints."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FILTERS = ["tag_labels", "tag_taints", "node_input_errors", "split_node_labels", "kubelet_extra_args",
           "kubeadm_taints", "ready_node_names", "labels_to_patch"]


@pytest.fixture(scope="module")
def env(base_env, tmp_path_factory):
    assert (REPO / ".ansible/collections/ansible_collections/sesacthon/kubeadm_aws").exists(), "run `make setup`"
    e = dict(base_env)
    e.pop("PYTHONPATH", None)  # the collection must come from ansible.cfg's collections_path
    e["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    e["ANSIBLE_NOCOLOR"] = "1"
    e["ANSIBLE_LOCAL_TEMP"] = str(tmp_path_factory.mktemp("ansible-tmp"))
    return e


def run(env, *cmd):
    return subprocess.run([str(BIN / cmd[0])] + list(cmd[1:]), cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)


def test_adhoc_fqcn_resolves(env):
    expr = "{{ {'Name': 'w1', 'k8s.io/label/lab.sesacthon.io/tier': 'backend'} | sesacthon.kubeadm_aws.tag_labels }}"
    p = run(env, "ansible", "localhost", "-i", "localhost,", "-c", "local", "-m", "ansible.builtin.debug",
            "-a", "msg=%s" % expr)
    assert p.returncode == 0, p.stdout
    assert '"lab.sesacthon.io/tier": "backend"' in p.stdout, p.stdout


@pytest.mark.parametrize("name", FILTERS)
def test_ansible_doc(env, name):
    p = run(env, "ansible-doc", "-t", "filter", "--json", "sesacthon.kubeadm_aws." + name)
    assert p.returncode == 0, p.stdout
    doc = json.loads(p.stdout)["sesacthon.kubeadm_aws." + name]
    assert doc["doc"]["name"] == name and doc["doc"]["description"] and doc["examples"] and doc["return"]


def test_node_input_errors_on_hostvars(env, tmp_path):
    """The way the settings role calls it: hostvars of a real inventory (tag variables as the aws_ec2
    inventory sets them, plus inventory variables), the play's hosts; the play stops naming the host."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(textwrap.dedent("""\
        all:
          hosts:
            cp1:
              kubeadm_aws_tag_labels: {}
              kubeadm_aws_tag_taints: []
              kubeadm_aws_node_labels: {node-restriction.kubernetes.io/pool: control}
            w1:
              kubeadm_aws_tag_labels: {lab.sesacthon.io/tier: backend}
              kubeadm_aws_tag_taints: [{key: dedicated, value: "", effect: infra}]
            w2:
              kubeadm_aws_tag_labels: {node-restriction.kubernetes.io/pool: gpu}
          vars:
            ansible_connection: local
            ansible_python_interpreter: "%s"
        """ % sys.executable))
    playbook = tmp_path / "check.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: all
          gather_facts: false
          tasks:
            - name: Check the labels and taints of every host
              ansible.builtin.assert:
                that: _errors | length == 0
                fail_msg: "{{ _errors | join(' | ') }}"
                quiet: true
              vars:
                _errors: "{{ hostvars | sesacthon.kubeadm_aws.node_input_errors(ansible_play_hosts_all) }}"
              run_once: true
        """))
    p = run(env, "ansible-playbook", "-i", str(inventory), str(playbook))
    assert p.returncode != 0, p.stdout
    assert ("Host w1: taint 'dedicated:infra' is malformed (from the EC2 tag k8s.io/taint/dedicated)") in p.stdout
    assert ("Host w2: label 'node-restriction.kubernetes.io/pool=gpu' is not allowed (from the EC2 tag "
            "k8s.io/label/node-restriction.kubernetes.io/pool)") in p.stdout
    assert "Host cp1" not in p.stdout  # administrators may set it through the variable


def test_inventory_compose_calls_the_filters(env, moto, ec2, ami, cluster, tmp_path):
    """An aws_ec2 inventory (same options as inventory/aws_ec2.yml) against moto: the tags of each
    instance become kubeadm_aws_tag_labels / kubeadm_aws_tag_taints through the filters."""
    tags = {
        "kubeadm-aws/cluster": cluster,
        "kubeadm-aws/role": "worker",
        "k8s.io/label/lab.sesacthon.io/tier": "backend",
        "k8s.io/label/node-role.kubernetes.io/infra": "",
        "k8s.io/taint/lab.sesacthon.io/dedicated": "infra:NoSchedule",
        "k8s.io/taint/gpu": "NoExecute",
    }
    ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "kubeadm-aws/cluster", "Value": cluster}]}])
    inventory = tmp_path / "test.aws_ec2.yml"
    inventory.write_text(textwrap.dedent("""\
        plugin: amazon.aws.aws_ec2
        regions: [us-east-1]
        endpoint_url: %s
        filters:
          tag:kubeadm-aws/cluster: %s
          instance-state-name: running
        hostnames: [private-dns-name]
        strict: true
        hostvars_prefix: ec2_
        compose:
          kubeadm_aws_tag_labels: ec2_tags | sesacthon.kubeadm_aws.tag_labels
          kubeadm_aws_tag_taints: ec2_tags | sesacthon.kubeadm_aws.tag_taints
        """ % (moto, cluster)))
    p = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"], cwd=REPO, env=env,
                       text=True, capture_output=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    # ansible-inventory marks the strings that came from AWS as {"__ansible_unsafe": "..."}
    hostvars = json.loads(p.stdout, object_hook=lambda d: d.get("__ansible_unsafe", d))["_meta"]["hostvars"]
    assert len(hostvars) == 2, p.stderr
    by_role = {hv["ec2_tags"].get("kubeadm-aws/role", "none"): hv for hv in hostvars.values()}
    assert by_role["worker"]["kubeadm_aws_tag_labels"] == {"lab.sesacthon.io/tier": "backend",
                                                         "node-role.kubernetes.io/infra": ""}
    assert by_role["worker"]["kubeadm_aws_tag_taints"] == [
        {"key": "gpu", "value": "", "effect": "NoExecute"},
        {"key": "lab.sesacthon.io/dedicated", "value": "infra", "effect": "NoSchedule"},
    ]
    assert by_role["none"]["kubeadm_aws_tag_labels"] == {} and by_role["none"]["kubeadm_aws_tag_taints"] == []
