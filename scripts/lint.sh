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
work="$CACHE/sanity/ansible_collections/sesacthon/kubeadm_aws"
rm -rf "$work"; mkdir -p "$work"
git ls-files -z --cached --others --exclude-standard | grep -zvE '^(lab/|\.ci/)' | \
  xargs -0 -I{} cp --parents {} "$work/" 2>/dev/null || true
site=$(python -c 'import ansible_collections,os;print(os.path.dirname(ansible_collections.__path__[0]))' 2>/dev/null || true)
(
  cd "$work"
  # ansible-test looks for the collection's dependencies next to it.
  for dep in amazon/aws community/aws; do
    ns=${dep%/*}; mkdir -p "../../$ns"
    [ -e "../../$dep" ] || ln -s "$site/ansible_collections/$dep" "../../$dep"
  done
  ansible-test sanity --python 3.11 --test validate-modules --test compile --test yamllint \
    --test import --test pep8 plugins/ 2>&1
)
echo ">> lint ok"
