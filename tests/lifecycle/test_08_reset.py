"""reset.yml tears the cluster down only with the cluster's name as confirmation: every node reset (no
kubeadm files, no CNI state), the cluster's SSM parameters gone, the collection's tags removed from the
instances (the ones that select them stay), the controller's kubeconfig gone. A second run changes nothing;
S3 backups stay."""

from __future__ import annotations

import os

from conftest import (CLUSTER, PREFIX, assert_refused, changed_hosts, lab_counts, node_exec, run_playbook, ssm_names, tail,
                      tags_of)


def test_reset_refuses_without_confirmation(ssm):
    assert_refused(run_playbook("reset.yml", "-e", "confirm_cluster=not-%s" % CLUSTER, env=lab_counts()),
                   "-e confirm_cluster=%s" % CLUSTER)
    assert ssm_names(ssm), "a refused reset deleted SSM parameters"


def test_reset_tears_the_cluster_down(ssm, ec2, lab_env, kubeconfig):
    p = run_playbook("reset.yml", "-e", "confirm_cluster=%s" % CLUSTER, env=lab_counts())
    assert p.returncode == 0, tail(p)
    assert ssm_names(ssm) == [], ssm_names(ssm)
    assert not os.path.exists(kubeconfig)
    res = ec2.describe_instances(Filters=[{"Name": "tag:kubeadm-aws/cluster", "Values": [CLUSTER]},
                                          {"Name": "instance-state-name", "Values": ["running"]}])
    instances = [i for r in res["Reservations"] for i in r["Instances"]]
    assert instances, "the instances lost the tags that select them"
    for i in instances:
        tags = tags_of(i)
        assert "kubernetes.io/cluster/%s" % CLUSTER not in tags and "kubeadm-aws/provider-id" not in tags, tags
        assert tags["kubeadm-aws/role"] in ("control-plane", "worker")
        left = node_exec(tags["lab/container"], "ls /etc/kubernetes /etc/kubernetes/manifests /etc/cni/net.d 2>/dev/null;"
                                                "ls -d /var/lib/etcd/member /var/lib/cni 2>/dev/null || true")
        assert not any(x in left for x in ("admin.conf", "kubelet.conf", "etcd.yaml", "flannel", "/var/lib/cni")), left
    again = run_playbook("reset.yml", "-e", "confirm_cluster=%s" % CLUSTER, env=lab_counts())
    assert again.returncode == 0 and changed_hosts(again) == {}, tail(again)
