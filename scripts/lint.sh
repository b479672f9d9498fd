#!/usr/bin/env bash
# Static checks: yamllint, ansible-lint (production profile) and ansible-test sanity (which checks
# that each module's DOCUMENTATION agrees with its argument spec). Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$PWD/.venv/bin:$PATH"
CACHE="${KUBEADM_AWS_CACHE:-$HOME/.cache/kubeadm-aws}"

echo ">> yamllint"
yamllint -s .

echo ">> ansible-lint --profile production"
ansible-lint --profile production --offline

echo ">> ansible-test sanity (from a copy at ansible_collections/sesacthon/kubeadm_aws)"
# ansible-test bootstraps pip in its test venvs with a get-pip script it downloads; that host is not
# reachable from our machines, so give it a stand-in that uses the interpreter's bundled pip.
getpip_dir="$HOME/.ansible/test/cache"; mkdir -p "$getpip_dir"
for v in 24_2 24_0 23_1; do
  [ -f "$getpip_dir/get_pip_$v.py" ] || cat >"$getpip_dir/get_pip_$v.py" <<'PY'
import ensurepip, os, subprocess, sys
ensurepip.bootstrap(upgrade=True)
os.environ.pop("PIP_CONFIG_FILE", None)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade"] + args))
PY
done
root="$CACHE/sanity"
work="$root/ansible_collections/sesacthon/kubeadm_aws"
rm -rf "$work"; mkdir -p "$work"
git ls-files -z --cached --others --exclude-standard | grep -zvE '^(lab/|\.ci/|molecule/|awx/)' | \
  xargs -0 cp --parents -t "$work/"
site=$(python -c 'import ansible_collections,os;print(os.path.dirname(list(ansible_collections.__path__)[0]))')
for dep in amazon/aws community/aws; do
  mkdir -p "$root/ansible_collections/${dep%/*}"
  ln -sfn "$site/ansible_collections/$dep" "$root/ansible_collections/$dep"
done
(
  cd "$work"
  ansible-test sanity --python 3.11 --test validate-modules --test pylint --test pep8 --test import \
    --test compile --test yamllint plugins/
)
echo ">> lint ok"
