#!/usr/bin/env bash
# Create (or reuse) the Python virtualenv and make the collection visible to Ansible.
# The venv lives outside the repository, keyed by the hash of requirements.txt, so a fresh clone
# with the same requirements reuses it and a changed requirements.txt gets a new one.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${KUBEADM_AWS_CACHE:-$HOME/.cache/kubeadm-aws}"
key=$(sha256sum requirements.txt | cut -c1-12)
venv="$CACHE/venv-py$(python3 -c 'import sys;print(f"{sys.version_info[0]}{sys.version_info[1]}")')-$key"
if [ ! -x "$venv/bin/ansible-playbook" ] || [ ! -f "$venv/.complete" ]; then
  echo ">> creating virtualenv $venv"
  mkdir -p "$CACHE"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r requirements.txt
  touch "$venv/.complete"
else
  echo ">> reusing virtualenv $venv"
fi
ln -sfn "$venv" .venv
# The checkout is the collection: expose it where ansible.cfg's collections_path looks.
mkdir -p .ansible/collections/ansible_collections/sesacthon
ln -sfn ../../../.. .ansible/collections/ansible_collections/sesacthon/kubeadm_aws
