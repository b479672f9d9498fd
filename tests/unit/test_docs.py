"""ansible-doc renders every module, and each module's documented options are exactly the options its
argument spec accepts (the module itself lists them when given an unknown option)."""

import json
import re
import subprocess

import pytest

from conftest import VENV_BIN

MODULES = ["ssm_join_material", "ssm_node_status", "ssm_init_lock", "ec2_node_identity"]


@pytest.fixture(scope="module")
def docs(ansible_env):
    p = subprocess.run([str(VENV_BIN / "ansible-doc"), "--json"] + ["sesacthon.kubeadm_aws.%s" % m for m in MODULES],
                       env=ansible_env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("module", MODULES)
def test_doc_complete_and_matches_argument_spec(docs, run_module, module):
    entry = docs["sesacthon.kubeadm_aws.%s" % module]
    doc = entry["doc"]
    assert doc["short_description"] and doc["description"] and doc["author"]
    assert entry["examples"].strip() and entry["return"]
    assert doc["module"] == module
    args = {"zz_not_an_option": 1, "cluster_name": "c", "instance_ids": ["i-12345678"]}
    if module in ("ssm_node_status", "ssm_init_lock"):
        args["state"] = "query"
    r = run_module(module, args)
    assert r.rc != 0
    m = re.search(r"Supported parameters include: (.*)\.?$", r["msg"])
    assert m, r["msg"]
    names = re.sub(r"\s*\([^)]*\)", "", m.group(1)).rstrip(".")  # drop "(alias, alias)" groups
    supported = set(x.strip() for x in names.split(","))
    documented = set(doc["options"])
    assert supported == documented, (supported ^ documented)
