"""etcd backups to S3 (moto's) with SSE-KMS: a verified snapshot under the cluster's prefix, the last N
kept; then the restore drill: a snapshot taken, the cluster's state changed, the snapshot restored onto
the control plane, and the cluster back at the snapshot's state."""

from __future__ import annotations

import hashlib
import subprocess

import boto3
import pytest

from conftest import HERE, CLUSTER, changed_hosts, node_exec, nodes, ready, run_playbook, tail, wait_for

BUCKET = "lab-etcd-backups"
PREFIX = "kubeadm-aws/%s/etcd/" % CLUSTER


@pytest.fixture(scope="module")
def s3(lab_env):
    c = boto3.client("s3", region_name=lab_env["LAB_REGION"], endpoint_url=lab_env["AWS_ENDPOINT_URL"])
    c.create_bucket(Bucket=BUCKET)
    return c


def etcd_image_has_etcdutl() -> bool:
    """Whether the etcd image the control plane runs carries etcdutl (registry.k8s.io's does)."""
    out = node_exec("kubeadm-aws-lab-cp1", "crictl exec $(crictl ps --name '^etcd$' -q | head -1) etcdutl version"
                    " >/dev/null 2>&1 && echo yes || echo no")
    return out.strip() == "yes"


def etcdutl_image() -> str:
    """The lab's etcd image lacks etcdutl: tests/lifecycle/etcdutl_image.sh serves one from the lab registry."""
    return subprocess.run([str(HERE / "etcdutl_image.sh")], check=True, capture_output=True, text=True).stdout.strip()


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", []))


def backup(*extra):
    p = run_playbook("etcd_backup.yml", "-e", "etcd_backup_bucket=%s" % BUCKET, *extra)
    assert p.returncode == 0, tail(p)
    return p


def test_a_backup_is_a_verified_encrypted_snapshot(s3, tmp_path):
    backup()
    found = keys(s3)
    assert len(found) == 1 and found[0].startswith(PREFIX + "snapshot-") and found[0].endswith(".db"), found
    head = s3.head_object(Bucket=BUCKET, Key=found[0])
    assert head["ServerSideEncryption"] == "aws:kms", head
    body = s3.get_object(Bucket=BUCKET, Key=found[0])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == head["Metadata"]["sha256"]
    assert hashlib.sha256(body[:-32]).digest() == body[-32:], "etcd's own checksum of the snapshot"
    assert head["Metadata"]["member"] == "ip-10-213-0-11.ec2.internal" and int(head["Metadata"]["revision"]) > 0


def test_only_the_last_ones_are_kept(s3):
    backup()
    backup("-e", "etcd_backup_keep=2")
    found = keys(s3)
    assert len(found) == 2, found
    backup("-e", "etcd_backup_keep=1")
    assert keys(s3) == found[-1:] or len(keys(s3)) == 1


def test_restore_drill(core, s3):
    """A ConfigMap that exists at the snapshot, one created after it: the restore brings back the first
    and forgets the second, and the cluster works."""
    from kubernetes import client

    v1 = client.CoreV1Api()
    v1.create_namespaced_config_map("default", {"metadata": {"name": "before-backup"}, "data": {"k": "v"}})
    backup()
    snapshot = keys(s3)[-1]
    v1.delete_namespaced_config_map("before-backup", "default")
    v1.create_namespaced_config_map("default", {"metadata": {"name": "after-backup"}, "data": {"k": "v"}})
    extra = ["-e", "etcd_restore_image=%s" % etcdutl_image()] if not etcd_image_has_etcdutl() else []
    p = run_playbook("etcd_restore.yml", "-e", "confirm_cluster=%s" % CLUSTER, "-e", "etcd_restore_bucket=%s" % BUCKET,
                     "-e", "snapshot=%s" % snapshot, *extra)
    assert p.returncode == 0, tail(p)
    names = wait_for(lambda: {c.metadata.name for c in v1.list_namespaced_config_map("default").items}, timeout=120,
                     what="the API after the restore")
    assert "before-backup" in names and "after-backup" not in names, names
    wait_for(lambda: all(ready(n) for n in nodes(core).values()), timeout=300, what="every node Ready after the restore")
    again = run_playbook("etcd_restore.yml", "-e", "confirm_cluster=%s" % CLUSTER, "-e", "etcd_restore_bucket=%s" % BUCKET,
                         "-e", "snapshot=%s" % snapshot, *extra)
    assert again.returncode == 0 and set(changed_hosts(again)) <= {"localhost"}, tail(again)
    v1.delete_namespaced_config_map("before-backup", "default")
