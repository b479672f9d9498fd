"""No dead variables: every variable a role documents in meta/argument_specs.yml (any entry point) is
read somewhere in the collection.

"Read" means the name appears, as a whole word, in a YAML or Jinja file (``.yml``, ``.yaml``, ``.j2``)
under roles/, playbooks/, inventory/, molecule/ or awx/, anywhere but:

* a ``meta/argument_specs.yml`` (declaring a variable is not reading it) or a Markdown file;
* a comment line (``# ...``) or a Jinja comment (``{# ... #}``);
* a line that sets it: the YAML key ``<name>:`` (defaults, vars, set_fact, inventory and play vars),
  ``register: <name>``, ``loop_var: <name>`` or an AWX survey's ``variable: <name>``.

So a default that refers to another variable (``kubeadm_aws_ssm_prefix: "/kubeadm-aws/{{
kubeadm_aws_cluster_name }}"``) reads it, while the line defining a variable does not count for that
variable. A variable that is only documented and set is dead: the test names it.
"""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SEARCHED = ("roles", "playbooks", "inventory", "molecule", "awx")
SUFFIXES = (".yml", ".yaml", ".j2")


def documented():
    """{variable: [role/entry point, ...]} of every argument spec."""
    out = {}
    for path in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        role = path.parent.parent.name
        for entry, spec in (yaml.safe_load(path.read_text())["argument_specs"] or {}).items():
            for name in ((spec or {}).get("options") or {}):
                out.setdefault(name, []).append("%s/%s" % (role, entry))
    return out


def searched_text():
    """The searched files' lines, without comments and without the lines that set a variable, as one text
    (with the definitions kept apart so a name is found only where it is read)."""
    chunks = []
    for top in SEARCHED:
        for path in sorted((REPO / top).rglob("*")):
            if not path.is_file() or not path.name.endswith(SUFFIXES) or path.name == "argument_specs.yml":
                continue
            text = re.sub(r"\{#.*?#\}", " ", path.read_text(errors="replace"), flags=re.S)
            for line in text.split("\n"):
                if line.lstrip().startswith("#"):
                    continue
                chunks.append(line)
    return "\n".join(chunks)


SETTERS = r"^\s*(?:-\s+)?(?:{name}\s*:|(?:register|loop_var|variable)\s*:\s*[\"']?{name}[\"']?\s*$)"


def reads(name, text):
    word = re.compile(r"(?<!\w){}(?!\w)".format(re.escape(name)))
    setter = re.compile(SETTERS.format(name=re.escape(name)))
    for line in text.split("\n"):
        if not word.search(line):
            continue
        if setter.match(line):
            # "name: {{ name | default(...) }}" sets it and reads another scope's value: count the rest
            rest = line.split(":", 1)[1] if ":" in line else ""
            if not word.search(rest) or re.match(r"^\s*[\"']?{}[\"']?\s*$".format(re.escape(name)), rest):
                continue
        return True
    return False


DOCUMENTED = documented()


@pytest.fixture(scope="module")
def text():
    return searched_text()


def test_there_are_documented_variables():
    assert len(DOCUMENTED) > 50


def test_no_dead_variables(text):
    dead = sorted(name for name in DOCUMENTED if not reads(name, text))
    assert not dead, "documented in meta/argument_specs.yml but read nowhere: %s" % ", ".join(
        "%s (%s)" % (name, ", ".join(DOCUMENTED[name])) for name in dead)


@pytest.mark.parametrize("line, name, read", [
    ("kubeadm_aws_worker_group: kube_workers", "kubeadm_aws_worker_group", False),
    ("    - kubeadm_aws_worker_group: x", "kubeadm_aws_worker_group", False),
    ("  register: node_labels_nodes", "node_labels_nodes", False),
    ("    variable: kubeadm_aws_cluster_name", "kubeadm_aws_cluster_name", False),
    ("  hosts: \"{{ kubeadm_aws_control_plane_group }}\"", "kubeadm_aws_control_plane_group", True),
    ("  when: argocd_enabled | bool", "argocd_enabled", True),
    ("x: \"{{ hostvars[h].kubeadm_aws_tag_labels }}\"", "kubeadm_aws_tag_labels", True),
    ("cni_x: \"{{ cni_x_extra }}\"", "cni_x", False),  # a longer name is another variable
    ("kubeadm_aws_x: \"{{ kubeadm_aws_x | default('a') }}\"", "kubeadm_aws_x", True),  # reads another scope's
])
def test_read_detection(line, name, read):
    assert reads(name, line) is read
