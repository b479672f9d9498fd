#!/usr/bin/env bash
# Build the execution environment's build context (no registry, no Galaxy needed):
#   1. the collection tarball, built by `ansible-galaxy collection build` from the files git knows
#      (tracked, or new and not ignored: no caches, no local state), renamed without its version so
#      that awx/ee/requirements.yml does not change with every release;
#   2. `ansible-builder create` from execution-environment.yml into CONTEXT_DIR (default:
#      $KUBEADM_AWS_CACHE/ee/context).
# Prints the context directory on stdout. Then build the image where the base image can be pulled:
#   podman build -f "$CONTEXT_DIR/Containerfile" -t kubeadm-aws-ee:<version> "$CONTEXT_DIR"
set -euo pipefail
cd "$(dirname "$0")/../.."
PATH="$PWD/.venv/bin:$PATH"
CACHE="${KUBEADM_AWS_CACHE:-$HOME/.cache/kubeadm-aws}"
context="${1:-$CACHE/ee/context}"

src="$(mktemp -d)"; dist="$(mktemp -d)"
trap 'rm -rf "$src" "$dist"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$src/" 2>/dev/null || true

out="awx/ee/collections"
mkdir -p "$out"
rm -f "$out"/sesacthon-kubeadm_aws*.tar.gz
ansible-galaxy collection build --force --output-path "$dist" "$src" >&2
built=("$dist"/sesacthon-kubeadm_aws-*.tar.gz)
[ "${#built[@]}" -eq 1 ] && [ -f "${built[0]}" ] || { echo "collection build produced: ${built[*]}" >&2; exit 1; }
mv "${built[0]}" "$out/sesacthon-kubeadm_aws.tar.gz"

rm -rf "$context"
mkdir -p "$(dirname "$context")"
ansible-builder create -f execution-environment.yml -c "$context" --output-filename Containerfile >&2
echo "$context"
