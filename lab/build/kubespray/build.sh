#!/usr/bin/env bash
# What kubespray (the peer of `make bench-peer`, docs/benchmarks.md) needs from the lab beyond what
# lab/build-artifacts.sh already serves, laid out in the mirror under the upstream download paths so
# kubespray differs from its online configuration only by `files_repo` and the registry:
#
#   dl.k8s.io/release/v<KUBE>/bin/linux/amd64/{kubeadm,kubelet,kubectl}[.sha256]    (the lab's build)
#   github.com/etcd-io/etcd/releases/download/v<ETCD>/etcd-v<ETCD>-linux-amd64.tar.gz (etcd, etcdctl, etcdutl)
#   github.com/containerd/nerdctl/releases/download/v<N>/nerdctl-<N>-linux-amd64.tar.gz
#
# nerdctl, etcdctl and etcdutl are built from the Go module proxy (nice -n 19), cached by version
# under $KUBEADM_AWS_CACHE/build/. containerd, runc, the CNI plugins, crictl and every image
# (kube-*, pause, coredns, the lab's flannel) are the lab's own, at lab/versions.env: kubespray
# runs with the same versions as the collection (scripts/bench_peer.py passes them and their
# sha256 sums). A second run does nothing.
#
#   lab/build/kubespray/build.sh          # needs the artifacts of lab/build-artifacts.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAB="$(cd "$HERE/../.." && pwd)"
# shellcheck source=lab/versions.env
. "$LAB/versions.env"
export KUBEADM_AWS_CACHE="${KUBEADM_AWS_CACHE:-$HOME/.cache/kubeadm-aws}"
BUILD="$KUBEADM_AWS_CACHE/build"
MIRROR="$KUBEADM_AWS_CACHE/mirror"
# kubespray 46dbdd39's nerdctl (the first key of nerdctl_archive_checksums).
NERDCTL_VERSION="${NERDCTL_VERSION:-v2.2.2}"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN=local
export GOMODCACHE="${GOMODCACHE:-$(go env GOMODCACHE)}" GOCACHE="${GOCACHE:-$(go env GOCACHE)}"
GO_P="${GO_P:-2}"

log() { printf '>> [%s] kubespray artifacts: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '!! kubespray artifacts: %s\n' "$*" >&2; exit 1; }
is_complete() { [[ -f "$1/.complete" ]]; }
stamp() { date -u +%FT%TZ >"$1/.complete"; }
TAR_OPTS=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)
tgz() { local out="$1"; shift; tar "${TAR_OPTS[@]}" "$@" -cf - | gzip -9n >"$out"; }
sha_file() { sha256sum "$1" | cut -d' ' -f1 >"$1.sha256"; }   # dl.k8s.io style: the bare digest

mkdir -p "$BUILD" "$MIRROR"
exec 9>"$BUILD/.kubespray.lock"
flock 9

# modbuild NAME VERSION MODULE LDFLAGS PKG...: build PKG in the module's own tree (from the module
# proxy) into $BUILD/NAME-VERSION/bin. Their go.mod files replace sibling or test-only modules with
# local directories the module zip does not hold, so they cannot be `go install`ed: the build uses a
# copy of the go.mod without those replace directives (the siblings then come from the proxy at the
# versions the go.mod requires; the test-only module, which no built package imports, is dropped).
modbuild() {
  local name="$1" ver="$2" m="$3" ld="$4"; shift 4
  local out="$BUILD/$name-$ver" src="$BUILD/src/$name-$ver"
  is_complete "$out" && { log "$name $ver: cached"; return; }
  log "building $name $ver (nice -n 19)"
  rm -rf "$out" "$src"; mkdir -p "$out/bin" "$BUILD/src"
  local dir; dir="$(cd /tmp && go mod download -json "$m@$ver" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
  cp -r "$dir" "$src"; chmod -R u+w "$src"
  local r
  for r in $(go mod edit -json "$src/go.mod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith((".", "/")):
        print(r["Old"]["Path"] + ("@" + r["Old"]["Version"] if r["Old"].get("Version") else ""))'); do
    go mod edit -dropreplace="$r" "$src/go.mod"
    # a module required at v0.0.0 exists only as that local directory
    if grep -q "^\s*${r%@*} v0.0.0" "$src/go.mod"; then go mod edit -droprequire="${r%@*}" "$src/go.mod"; fi
  done
  # Files of MODBUILD_BLANK (test helpers that import such a module) become empty files of their package.
  local f
  for f in ${MODBUILD_BLANK:-}; do printf '%s\n' "$(grep -m1 '^package ' "$src/$f")" >"$src/$f"; done
  (cd "$src" && nice -n 19 go build -mod=mod -p "$GO_P" -ldflags "-s -w $ld" -o "$out/bin/" "$@")
  cp "$src/go.mod" "$out/"
  rm -rf "$src"
  stamp "$out"
}
build_etcd_tools() {
  modbuild etcdctl "$ETCD_VERSION" go.etcd.io/etcd/etcdctl/v3 "" .
  modbuild etcdutl-kubespray "$ETCD_VERSION" go.etcd.io/etcd/etcdutl/v3 "" .
}
build_nerdctl() {
  local m=github.com/containerd/nerdctl/v2
  # cmd/nerdctl/helpers/testing_linux.go holds test helpers (used only by _test.go files) that
  # import the test-only module mod/tigron, which the module proxy does not serve.
  MODBUILD_BLANK="cmd/nerdctl/helpers/testing_linux.go" \
    modbuild nerdctl "$NERDCTL_VERSION" "$m" "-X $m/pkg/version.Version=$NERDCTL_VERSION" ./cmd/nerdctl
  "$BUILD/nerdctl-$NERDCTL_VERSION/bin/nerdctl" --version | grep -q "${NERDCTL_VERSION#v}" || die "nerdctl does not report $NERDCTL_VERSION"
}

publish() {
  local kv="${KUBE_VERSION#v}" ev="${ETCD_VERSION#v}" nv="${NERDCTL_VERSION#v}" t d f
  local key="kube$KUBE_VERSION-etcd$ETCD_VERSION-nerdctl$NERDCTL_VERSION"
  if [[ -f "$BUILD/stamps/kubespray" && "$(cat "$BUILD/stamps/kubespray")" == "$key" ]]; then
    log "mirror: cached"; return
  fi
  log "writing kubespray's downloads into the mirror"
  d="$MIRROR/dl.k8s.io/release/v$kv/bin/linux/amd64"; mkdir -p "$d"
  for f in kubeadm kubelet kubectl; do
    install -m0755 "$BUILD/kubernetes-$KUBE_VERSION/bin/$f" "$d/$f"; sha_file "$d/$f"
  done
  t="$(mktemp -d)"
  mkdir -p "$t/etcd-v$ev-linux-amd64"
  cp "$BUILD/etcd-$ETCD_VERSION/bin/etcd" "$BUILD/etcdctl-$ETCD_VERSION/bin/etcdctl" \
    "$BUILD/etcdutl-kubespray-$ETCD_VERSION/bin/etcdutl" "$t/etcd-v$ev-linux-amd64/"
  d="$MIRROR/github.com/etcd-io/etcd/releases/download/v$ev"; mkdir -p "$d"
  tgz "$d/etcd-v$ev-linux-amd64.tar.gz" -C "$t" "etcd-v$ev-linux-amd64"; sha_file "$d/etcd-v$ev-linux-amd64.tar.gz"
  d="$MIRROR/github.com/containerd/nerdctl/releases/download/v$nv"; mkdir -p "$d"
  tgz "$d/nerdctl-$nv-linux-amd64.tar.gz" -C "$BUILD/nerdctl-$NERDCTL_VERSION/bin" nerdctl
  sha_file "$d/nerdctl-$nv-linux-amd64.tar.gz"
  rm -rf "$t"
  mkdir -p "$BUILD/stamps"; echo "$key" >"$BUILD/stamps/kubespray"
}

is_complete "$BUILD/kubernetes-$KUBE_VERSION" && is_complete "$BUILD/etcd-$ETCD_VERSION" ||
  die "the lab's Kubernetes and etcd builds are missing: run 'make lab-artifacts' first"
build_etcd_tools
build_nerdctl
publish
log "ready"
