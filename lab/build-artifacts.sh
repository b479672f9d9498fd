#!/usr/bin/env bash
# Build the lab's real Kubernetes artifacts from the Go module proxy and lay out the mirror tree.
#
#   lab/build-artifacts.sh            # everything (what `make lab-artifacts` runs)
#   lab/build-artifacts.sh STEP...    # only some steps: kubernetes etcd coredns containerd runc
#                                     #   crictl cni helm flannel registry pause ccm imds rootfs
#                                     #   apt archives images
#
# Every artifact is built once and cached under $KUBEADM_AWS_CACHE/build/<name>-<version>/ with a
# `.complete` stamp; a second run builds nothing. See lab/build/README.md for the layout.
set -Eeuo pipefail
# shellcheck disable=SC2154
trap 'rc=$?; printf "!! [%s] failed (exit %s): %s\n" "$(date -u +%H:%M:%S)" "$rc" "$BASH_COMMAND" >&2' ERR

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="$HERE/build"
# Environment overrides win over lab/versions.env (e.g. KUBE_VERSIONS="v1.36.3 v1.37.2").
_env_kube_versions="${KUBE_VERSIONS:-}"
# shellcheck source=versions.env
source "$HERE/versions.env"
KUBE_VERSIONS="${_env_kube_versions:-$KUBE_VERSION}"

export KUBEADM_AWS_CACHE="${KUBEADM_AWS_CACHE:-$HOME/.cache/kubeadm-aws}"
CACHE="$KUBEADM_AWS_CACHE"
BUILD="$CACHE/build"
MIRROR="$CACHE/mirror"
REGISTRY_STORAGE="$CACHE/registry"
mkdir -p "$BUILD" "$MIRROR" "$REGISTRY_STORAGE"
# One build at a time per cache (`make lab-up` and `make lab-artifacts` may overlap).
exec 9>"$BUILD/.lock"
if ! flock -n 9; then
  printf '>> [%s] waiting for another lab/build-artifacts.sh run (lock %s)\n' "$(date -u +%H:%M:%S)" "$BUILD/.lock"
  flock 9
fi

export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN=local
# Keep go's own caches (defaults are outside the repo); make them explicit for CI caching.
export GOMODCACHE="${GOMODCACHE:-$(go env GOMODCACHE)}" GOCACHE="${GOCACHE:-$(go env GOCACHE)}"
# The machine is small and shared: never more than 2 parallel compile jobs.
GO_P="${GO_P:-2}"

log() { printf '>> [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '!! [%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; exit 1; }
# timed NAME CMD...: run CMD, log start and elapsed time, append to $BUILD/timings.log
timed() {
  local name="$1"; shift
  local t0=$SECONDS
  log "$name..."
  "$@"
  local dt=$((SECONDS - t0))
  log "$name: done in $((dt / 60))m$((dt % 60))s"
  printf '%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "$name" "$dt" >>"$BUILD/timings.log"
}
is_complete() { [[ -f "$1/.complete" ]]; }
stamp() { date -u +%FT%TZ >"$1/.complete"; }
minor_of() { local v="${1#v}"; v="${v#*.}"; echo "${v%%.*}"; }
major_of() { local v="${1#v}"; echo "${v%%.*}"; }

# gomod DIR MODULE_PATH: start a throw-away wrapper module in DIR
gomod() {
  rm -rf "$1"; mkdir -p "$1"
  (cd "$1" && go mod init "$2" >/dev/null 2>&1)
}

################################################################################ kubernetes
# k8s.io/kubernetes replaces its staging modules with ./staging paths, so it cannot be
# `go install`ed: a wrapper module requires it and replaces every staging module that its go.mod
# requires at v0.0.0 with the published v0.<minor>.<patch>.
KUBE_BINARIES=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
kube_out() { echo "$BUILD/kubernetes-$1"; }

build_kubernetes_version() {
  local ver="$1" out; out="$(kube_out "$ver")"
  is_complete "$out" && { log "kubernetes $ver: cached ($out)"; return; }
  local staging; staging="v0.$(minor_of "$ver").${ver##*.}"
  local src="$BUILD/src/kubernetes-$ver"
  gomod "$src" kubeadm-aws.lab/build/kubernetes
  (
    cd "$src"
    go mod download -json "k8s.io/kubernetes@$ver" >module.json
    local gomodfile; gomodfile="$(python3 -c 'import json,sys;print(json.load(open("module.json"))["GoMod"])')"
    # staging modules = k8s.io/* required at v0.0.0
    local mods; mods="$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomodfile" | sort -u)"
    [[ -n "$mods" ]] || die "no staging modules found in $gomodfile"
    {
      echo "require k8s.io/kubernetes $ver"
      echo "replace ("
      for m in $mods; do echo "	$m => $m $staging"; done
      echo ")"
    } >>go.mod
    {
      echo "//go:build tools"
      echo
      echo "package tools"
      echo
      echo "import ("
      for b in "${KUBE_BINARIES[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
      echo ")"
    } >tools.go
    go mod tidy
  )
  # No git commit is known from the module proxy: gitCommit is the module's go.sum dirhash (h1:,
  # sha256 of the exact source tree) in hex; buildDate is the version's publication time.
  local h1; h1="$(awk -v v="$ver" '$1=="k8s.io/kubernetes" && $2==v {print $3}' "$src/go.sum")"
  h1="$(python3 -c 'import base64,sys;print(base64.b64decode(sys.argv[1][3:]).hex())' "$h1")"
  local date; date="$(cd "$src" && go list -m -json "k8s.io/kubernetes" | python3 -c 'import json,sys;print(json.load(sys.stdin).get("Time",""))')"
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$ver -X $p.gitMajor=$(major_of "$ver") -X $p.gitMinor=$(minor_of "$ver")"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date -X $p.gitCommit=$h1"
  done
  mkdir -p "$out/bin.tmp"
  local pkgs=(); for b in "${KUBE_BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  (cd "$src" && go build -p "$GO_P" -ldflags "$ld" -o "$out/bin.tmp/" "${pkgs[@]}")
  rm -rf "${out:?}/bin"; mv "$out/bin.tmp" "$out/bin"
  cp "$src/go.mod" "$src/go.sum" "$out/"
  "$out/bin/kubeadm" version -o short | grep -qx "$ver" || die "kubeadm does not report $ver"
  stamp "$out"
}
step_kubernetes() {
  local v
  for v in $KUBE_VERSIONS; do
    is_complete "$(kube_out "$v")" && { log "kubernetes $v: cached"; continue; }
    timed "building kubernetes $v (${#KUBE_BINARIES[@]} binaries)" build_kubernetes_version "$v"
  done
}

################################################################################ other Go binaries
# origin_rev MODULE VERSION: VCS revision recorded by the module proxy ("" if it has none)
origin_rev() {
  (cd /tmp && go mod download -json "$1@$2") |
    python3 -c 'import json,sys;print((json.load(sys.stdin).get("Origin") or {}).get("Hash",""))'
}

# gobin NAME VERSION LDFLAGS PKG...: `go install PKG@VERSION` (the module's own go.mod decides every
# dependency, exactly as an upstream build) into $BUILD/NAME-VERSION/bin
gobin() {
  local name="$1" ver="$2" ld="$3"; shift 3
  local out="$BUILD/$name-$ver"
  is_complete "$out" && { log "$name $ver: cached"; return; }
  rm -rf "$out"; mkdir -p "$out/bin"
  local pkgs=() p; for p in "$@"; do pkgs+=("$p@$ver"); done
  timed "building $name $ver ($# binaries)" \
    env GOBIN="$out/bin" go install -p "$GO_P" -ldflags "-s -w $ld" "${pkgs[@]}"
  stamp "$out"
}

# gowrap NAME VERSION LDFLAGS "MODULE@VER..." PKG...: wrapper module for modules that cannot be
# `go install`ed (local replace directives) or need a lab main (lab/build/NAME/main.go, built as
# ./cmd/NAME). PKG may be empty when only the lab main is built.
gowrap() {
  local name="$1" ver="$2" ld="$3" get="$4"; shift 4
  local out="$BUILD/$name-$ver" src="$BUILD/src/$name-$ver"
  is_complete "$out" && { log "$name $ver: cached"; return; }
  rm -rf "$out"; mkdir -p "$out/bin"
  gomod "$src" "kubeadm-aws.lab/build/$name"
  local pkgs=("$@")
  {
    echo "//go:build tools"; echo; echo "package tools"; echo
    local p; for p in "${pkgs[@]}"; do echo "import _ \"$p\""; done
  } >"$src/tools.go"
  if [[ -f "$BUILD_DIR/$name/main.go" ]]; then
    mkdir -p "$src/cmd/$name"; cp "$BUILD_DIR/$name/main.go" "$src/cmd/$name/"
    pkgs+=("./cmd/$name")
  elif declare -F "gowrap_main_$name" >/dev/null; then
    mkdir -p "$src/cmd/$name"; "gowrap_main_$name" "$src/cmd/$name" "$ver"
    pkgs+=("./cmd/$name")
  fi
  # `go mod edit -require` rather than `go get`: go get would load the module's root package too
  local r req=(); for r in $get; do req+=("-require=$r"); done
  _gowrap() { (cd "$src" && go mod edit "${req[@]}" && go mod tidy && go build -p "$GO_P" -ldflags "-s -w $ld" -o "$out/bin/" "${pkgs[@]}"); }
  timed "building $name $ver (${#pkgs[@]} binaries)" _gowrap
  cp "$src/go.mod" "$src/go.sum" "$out/"
  stamp "$out"
}

step_etcd() {
  local v="${1:-$ETCD_VERSION}"
  is_complete "$BUILD/etcd-$v" && { log "etcd $v: cached"; return; }
  gowrap etcd "$v" "-X go.etcd.io/etcd/api/v3/version.GitSHA=$(origin_rev go.etcd.io/etcd/server/v3 "$v" | cut -c1-7)" \
    "go.etcd.io/etcd/server/v3@$v"
}
step_coredns() {
  local v="${1:-$COREDNS_VERSION}"
  is_complete "$BUILD/coredns-$v" && { log "coredns $v: cached"; return; }
  local rev; rev="$(origin_rev github.com/coredns/coredns "$v")"
  gowrap coredns "$v" \
    "-X github.com/coredns/coredns/coremain.GitCommit=${rev:0:7} -X github.com/coredns/coredns/coremain.gitNearestTag=$v" \
    "github.com/coredns/coredns@$v"
}
step_containerd() {
  local m=github.com/containerd/containerd/v2
  gobin containerd "$CONTAINERD_VERSION" \
    "-X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Revision=$(origin_rev $m "$CONTAINERD_VERSION") -X $m/version.Package=$m" \
    $m/cmd/containerd $m/cmd/containerd-shim-runc-v2 $m/cmd/ctr
}
step_runc() {
  # runc needs cgo (nsenter) and, for seccomp, libseccomp: link it statically like upstream's runc.amd64
  local out="$BUILD/runc-$RUNC_VERSION"
  is_complete "$out" && { log "runc $RUNC_VERSION: cached"; return; }
  local tags="netgo osusergo"
  if [[ ! -f /usr/lib/x86_64-linux-gnu/libseccomp.a ]] && [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing libseccomp-dev for runc's seccomp support"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libseccomp-dev >/dev/null || true
  fi
  if [[ -f /usr/lib/x86_64-linux-gnu/libseccomp.a ]]; then tags+=" seccomp"; else log "WARNING: no libseccomp.a: runc built without seccomp"; fi
  CGO_ENABLED=1 GOFLAGS="$GOFLAGS -tags=${tags// /,}" gobin runc "$RUNC_VERSION" \
    "-X main.version=${RUNC_VERSION#v} -X main.gitCommit=$(origin_rev github.com/opencontainers/runc "$RUNC_VERSION") -linkmode external -extldflags -static" \
    github.com/opencontainers/runc
  "$out/bin/runc" --version | grep -q seccomp || true
}
step_crictl() {
  gobin cri-tools "$CRICTL_VERSION" "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
}
CNI_PLUGINS=(ipam/dhcp ipam/host-local ipam/static main/bridge main/dummy main/host-device main/ipvlan
  main/loopback main/macvlan main/ptp main/tap main/vlan meta/bandwidth meta/firewall meta/portmap
  meta/sbr meta/tuning meta/vrf)
step_cni() {
  local m=github.com/containernetworking/plugins pkgs=() p
  for p in "${CNI_PLUGINS[@]}"; do pkgs+=("$m/plugins/$p"); done
  gobin cni-plugins "$CNI_PLUGINS_VERSION" "-X $m/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" "${pkgs[@]}"
}
step_helm() {
  local m=helm.sh/helm/v3
  gobin helm "$HELM_VERSION" \
    "-X $m/internal/version.version=$HELM_VERSION -X $m/internal/version.gitCommit=$(origin_rev $m "$HELM_VERSION") -X $m/internal/version.gitTreeState=clean" \
    $m/cmd/helm
}
# flanneld: upstream's main.go links every backend. The Tencent Cloud VPC backend's SDK
# (github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc) is not on the module proxy and the
# deprecated udp backend needs cgo, so the wrapper builds upstream's main.go without those two
# imports (vxlan, host-gw, ipip, ipsec, wireguard, alloc and extension stay).
FLANNEL_DROPPED_BACKENDS="tencentvpc udp"
gowrap_main_flanneld() {
  local m="github.com/flannel-io/flannel@$2" dir b
  dir="$(cd /tmp && go mod download -json "$m" | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')"
  cp "$dir/main.go" "$1/main.go"; chmod u+w "$1/main.go"
  for b in $FLANNEL_DROPPED_BACKENDS; do
    grep -q "\"github.com/flannel-io/flannel/pkg/backend/$b\"" "$1/main.go" || die "flannel main.go has no $b import"
    sed -i "\|\"github.com/flannel-io/flannel/pkg/backend/$b\"|d" "$1/main.go"
  done
}
step_flannel() {
  gowrap flanneld "$FLANNEL_VERSION" "-X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" \
    "github.com/flannel-io/flannel@$FLANNEL_VERSION"
  # The flannel CNI plugin (type "flannel" in kube-flannel's cni-conf.json): its repository
  # (flannel-io/cni-plugin) is not on the module proxy, so it is built from the code it was forked
  # from, containernetworking/plugins' plugins/meta/flannel, with a current golang.org/x/sys.
  gowrap flannel-cni-plugin "$FLANNEL_CNI_PLUGIN_VERSION" \
    "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$FLANNEL_CNI_PLUGIN_VERSION" \
    "github.com/containernetworking/plugins@$FLANNEL_CNI_PLUGIN_VERSION golang.org/x/sys@$FLANNEL_CNI_XSYS_VERSION" \
    github.com/containernetworking/plugins/plugins/meta/flannel
}
step_registry() {
  local m=github.com/distribution/distribution/v3
  gobin distribution "$DISTRIBUTION_VERSION" \
    "-X $m/version.version=$DISTRIBUTION_VERSION -X $m/version.revision=$(origin_rev $m "$DISTRIBUTION_VERSION")" $m/cmd/registry
}
# cloud-provider-aws (aws-cloud-controller-manager): the version roles/cloud_controller deploys for
# each Kubernetes minor built (its table cloud_controller_versions is the one place it is pinned).
# Its go.mod has a replace directive, so it cannot be `go install`ed: a wrapper module takes its
# go.mod (requires and replaces) under another name, requires the module itself and builds
# cmd/aws-cloud-controller-manager with upstream's ldflags (gitVersion). One replace is dropped:
# github.com/google/cel-go => github.com/cel-expr/cel-go (the project's new home) at the same version;
# the module proxy does not serve the new path (403) but serves the same release under the module's
# own path, github.com/google/cel-go, which the build then uses.
CCM_DROP_REPLACES="github.com/google/cel-go"
CCM_MODULE=k8s.io/cloud-provider-aws
CCM_TABLE="$HERE/../roles/cloud_controller/defaults/main.yml"
ccm_out() { echo "$BUILD/cloud-provider-aws-$1"; }
# ccm_version KUBE_VERSION: cloud_controller_versions[<minor>] of the role's defaults
ccm_version() {
  local py="$HERE/../.venv/bin/python" minor
  [[ -x "$py" ]] || py=python3
  minor="$(major_of "$1").$(minor_of "$1")"
  "$py" -c 'import sys, yaml
table = yaml.safe_load(open(sys.argv[1]))["cloud_controller_versions"]
print(table.get(sys.argv[2], ""))' "$CCM_TABLE" "$minor" ||
    die "cannot read cloud_controller_versions from $CCM_TABLE (needs Python with PyYAML: run 'make setup')"
}
# ccm_versions: the versions for every Kubernetes version of KUBE_VERSIONS, one per line (status 1
# and a message when the table has none for one of them)
ccm_versions() {
  local kv v out=()
  for kv in $KUBE_VERSIONS; do
    v="$(ccm_version "$kv")" || return 1
    if [[ -z "$v" ]]; then
      printf '!! %s has no cloud_controller_versions entry for Kubernetes %s\n' "$CCM_TABLE" "$(major_of "$kv").$(minor_of "$kv")" >&2
      return 1
    fi
    [[ " ${out[*]} " == *" $v "* ]] || out+=("$v")
  done
  printf '%s\n' "${out[@]}"
}
build_ccm_version() {
  local ver="$1" out src; out="$(ccm_out "$ver")" src="$BUILD/src/cloud-provider-aws-$ver"
  rm -rf "$src"; mkdir -p "$src"
  (
    cd "$src"
    go mod download -json "$CCM_MODULE@$ver" >module.json
    local gomodfile dir
    gomodfile="$(python3 -c 'import json;print(json.load(open("module.json"))["GoMod"])')"
    dir="$(python3 -c 'import json;print(json.load(open("module.json"))["Dir"])')"
    sed -e 's#^module .*#module kubeadm-aws.lab/build/cloud-provider-aws#' "$gomodfile" >go.mod
    [[ -f "$dir/go.sum" ]] && cp "$dir/go.sum" go.sum && chmod u+w go.sum
    go mod edit -require="$CCM_MODULE@$ver"
    local r; for r in $CCM_DROP_REPLACES; do go mod edit -dropreplace="$r"; done
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/aws-cloud-controller-manager"\n' "$CCM_MODULE" >tools.go
    go mod tidy
  )
  mkdir -p "$out/bin.tmp"
  (cd "$src" && go build -p "$GO_P" -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$ver -X main.gitVersion=$ver" \
    -o "$out/bin.tmp/" "$CCM_MODULE/cmd/aws-cloud-controller-manager")
  rm -rf "${out:?}/bin"; mv "$out/bin.tmp" "$out/bin"
  cp "$src/go.mod" "$src/go.sum" "$out/"
  local reported; reported="$("$out/bin/aws-cloud-controller-manager" --version 2>&1 || true)"
  [[ "$reported" == *"$ver"* ]] || die "aws-cloud-controller-manager does not report $ver: $reported"
  stamp "$out"
}
step_ccm() {
  local v vs; vs="$(ccm_versions)" || die "no cloud-provider-aws version for KUBE_VERSIONS=$KUBE_VERSIONS"
  for v in $vs; do
    is_complete "$(ccm_out "$v")" && { log "cloud-provider-aws $v: cached"; continue; }
    timed "building cloud-provider-aws $v (aws-cloud-controller-manager)" build_ccm_version "$v"
  done
}
# The lab's instance metadata service: one amazon-ec2-metadata-mock per node (lab/lab.sh runs it in
# the node's network namespace on 169.254.169.254:80; lab/lib/imds_mock.py configures it from moto).
step_imds() {
  gobin ec2-metadata-mock "$EC2_METADATA_MOCK_VERSION" "" github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock
}
step_pause() {
  local v="${1:-$PAUSE_VERSION}"
  local out="$BUILD/pause-$v"
  is_complete "$out" && { log "pause $v: cached"; return; }
  rm -rf "$out"; mkdir -p "$out/bin"
  timed "building pause $v" \
    cc -Os -s -static -DVERSION="\"$v\"" -o "$out/bin/pause" "$BUILD_DIR/pause/pause.c"
  stamp "$out"
}

################################################################################ Debian rootfs
# Base for images that need iptables/nftables/conntrack (kube-proxy, flannel).
ROOTFS_PACKAGES="iptables,nftables,conntrack,ipset,iproute2,ca-certificates"
rootfs_dir() { echo "$BUILD/rootfs-$DEBIAN_SUITE-$(printf '%s' "$ROOTFS_PACKAGES" | sha256sum | cut -c1-12)"; }
step_rootfs() {
  local out; out="$(rootfs_dir)"
  is_complete "$out" && { log "rootfs $DEBIAN_SUITE: cached"; return; }
  rm -rf "$out"; mkdir -p "$out"
  _rootfs() {
    local dir="$out/tree"
    debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" "$DEBIAN_SUITE" "$dir" >"$out/debootstrap.log" 2>&1 ||
      { tail -20 "$out/debootstrap.log" >&2; return 1; }
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/usr/share/doc/* \
      "$dir"/usr/share/man/* "$dir"/usr/share/locale/* "$dir"/var/log/*
    tar --numeric-owner -C "$dir" -cf "$out/rootfs.tar" .
    rm -rf "$dir"
  }
  timed "debootstrap $DEBIAN_SUITE rootfs ($ROOTFS_PACKAGES)" _rootfs
  stamp "$out"
}

################################################################################ apt repository
# A signed flat repository shaped like pkgs.k8s.io/core:/stable:/v1.X/deb/ built with dpkg-deb.
GNUPGHOME_LAB="$CACHE/gnupg"
DEB_REV="1.1"
apt_key() {
  mkdir -p "$GNUPGHOME_LAB"; chmod 700 "$GNUPGHOME_LAB"
  if ! GNUPGHOME="$GNUPGHOME_LAB" gpg --batch --list-secret-keys 2>/dev/null | grep -q 'kubeadm-aws lab'; then
    log "generating the lab apt signing key in $GNUPGHOME_LAB"
    GNUPGHOME="$GNUPGHOME_LAB" gpg --batch --quiet --passphrase '' \
      --quick-gen-key "kubeadm-aws lab apt repository <apt@kubeadm-aws.invalid>" rsa3072 sign never
  fi
}
# mkdeb OUTDIR NAME VERSION DEPENDS DESCRIPTION ROOTDIR [MAINTSCRIPTS_DIR]
mkdeb() {
  local outdir="$1" name="$2" ver="$3" deps="$4" desc="$5" root="$6" scripts="${7:-}"
  mkdir -p "$root/DEBIAN"
  {
    echo "Package: $name"
    echo "Version: $ver"
    echo "Architecture: amd64"
    echo "Maintainer: kubeadm-aws lab build <apt@kubeadm-aws.invalid>"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    [[ -n "$deps" ]] && echo "Depends: $deps"
    echo "Section: admin"
    echo "Priority: optional"
    echo "Homepage: https://kubernetes.io"
    echo "Description: $desc"
    echo " Built from the Go module proxy sources by the kubeadm-aws lab (lab/build-artifacts.sh)."
  } >"$root/DEBIAN/control"
  if [[ -n "$scripts" ]]; then cp "$scripts"/* "$root/DEBIAN/"; chmod 0755 "$root"/DEBIAN/p*; fi
  dpkg-deb --root-owner-group -Zgzip --build "$root" "$outdir/${name}_${ver}_amd64.deb" >/dev/null
}
build_debs() {
  local kv="$1" out="$2"
  local kbin; kbin="$(kube_out "$kv")/bin"
  local v="${kv#v}-$DEB_REV" tmp="$out/tmp"
  rm -rf "$out"; mkdir -p "$out/amd64" "$tmp"
  # kubelet: binary, systemd unit, manifests directory; enabled and started like upstream's
  install -D -m0755 "$kbin/kubelet" "$tmp/kubelet/usr/bin/kubelet"
  install -D -m0644 "$BUILD_DIR/deb/kubelet.service" "$tmp/kubelet/usr/lib/systemd/system/kubelet.service"
  install -d "$tmp/kubelet/etc/kubernetes/manifests"
  # shellcheck source=build/deb/depends.env
  . "$BUILD_DIR/deb/depends.env"
  mkdeb "$out/amd64" kubelet "$v" "$KUBELET_DEPENDS" \
    "Node agent for Kubernetes clusters" "$tmp/kubelet" "$BUILD_DIR/deb/kubelet"
  install -D -m0755 "$kbin/kubectl" "$tmp/kubectl/usr/bin/kubectl"
  mkdeb "$out/amd64" kubectl "$v" "" "Command-line utility for interacting with a Kubernetes cluster" "$tmp/kubectl"
  install -D -m0755 "$kbin/kubeadm" "$tmp/kubeadm/usr/bin/kubeadm"
  install -D -m0644 "$BUILD_DIR/deb/10-kubeadm.conf" "$tmp/kubeadm/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
  mkdeb "$out/amd64" kubeadm "$v" "$KUBEADM_DEPENDS" \
    "Command-line utility for administering a Kubernetes cluster" "$tmp/kubeadm" "$BUILD_DIR/deb/kubeadm"
  local f
  mkdir -p "$tmp/cni/opt/cni/bin"
  for f in "$BUILD/cni-plugins-$CNI_PLUGINS_VERSION"/bin/*; do install -m0755 "$f" "$tmp/cni/opt/cni/bin/"; done
  mkdeb "$out/amd64" kubernetes-cni "${CNI_PLUGINS_VERSION#v}-$DEB_REV" "" \
    "Binaries required to provision kubernetes container networking" "$tmp/cni"
  install -D -m0755 "$BUILD/cri-tools-$CRICTL_VERSION/bin/crictl" "$tmp/cri-tools/usr/bin/crictl"
  mkdeb "$out/amd64" cri-tools "${CRICTL_VERSION#v}-$DEB_REV" "" \
    "Command-line utility for interacting with a container runtime" "$tmp/cri-tools"
  rm -rf "$tmp"
}
publish_apt_repo() {
  local debs="$1" repo="$2" minor="$3"
  rm -rf "$repo"; mkdir -p "$repo"
  cp -r "$debs/amd64" "$repo/"
  (
    cd "$repo"
    apt-ftparchive packages amd64 >Packages
    gzip -9nk Packages
    apt-ftparchive \
      -o APT::FTPArchive::Release::Origin="kubeadm-aws-lab" \
      -o APT::FTPArchive::Release::Label="kubeadm-aws-lab core:stable:v$minor" \
      -o APT::FTPArchive::Release::Architectures="amd64" \
      -o APT::FTPArchive::Release::Description="kubeadm-aws lab mirror of core:/stable:/v$minor/deb" \
      release . >"$repo.Release.tmp"
    mv "$repo.Release.tmp" Release
    export GNUPGHOME="$GNUPGHOME_LAB"
    gpg --batch --yes --armor --detach-sign -o Release.gpg Release
    gpg --batch --yes --clearsign -o InRelease Release
    gpg --batch --armor --export >Release.key
    gpg --batch --verify InRelease 2>/dev/null
  )
}
step_apt() {
  apt_key
  local kv
  for kv in $KUBE_VERSIONS; do
    local minor; minor="$(major_of "$kv").$(minor_of "$kv")"
    local key; key="$kv-cni$CNI_PLUGINS_VERSION-crictl$CRICTL_VERSION-$(find "$BUILD_DIR/deb" -type f | sort | xargs cat | sha256sum | cut -c1-12)"
    local debs="$BUILD/debs-$key" repo="$MIRROR/pkgs.k8s.io/core:/stable:/v$minor/deb"
    if ! is_complete "$debs"; then
      timed "packaging debs for kubernetes $kv" build_debs "$kv" "$debs"; stamp "$debs"
      find "$BUILD" -maxdepth 1 -name "debs-$kv-*" ! -name "$(basename "$debs")" -exec rm -rf {} +
    fi
    if [[ -f "$BUILD/stamps/apt-v$minor" && "$(cat "$BUILD/stamps/apt-v$minor")" == "$key" && -f "$repo/InRelease" ]]; then
      log "apt repository v$minor: cached"; continue
    fi
    timed "publishing signed apt repository core:/stable:/v$minor/deb" publish_apt_repo "$debs" "$repo" "$minor"
    mkdir -p "$BUILD/stamps"; echo "$key" >"$BUILD/stamps/apt-v$minor"
  done
}

################################################################################ release archives
# Release-style archives with the upstream asset names and checksum files, so a role differs from
# production only by its base URL.
TAR_OPTS=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)
tgz() { local out="$1"; shift; tar "${TAR_OPTS[@]}" "$@" -cf - | gzip -9n >"$out"; }
sum_named() { (cd "$(dirname "$1")" && "$2" "$(basename "$1")"); }   # "<hash>  <name>"
sum_only() { "$2" "$1" | cut -d' ' -f1; }                               # "<hash>"
build_archives() {
  local gh="$MIRROR/github.com" t d
  t="$(mktemp -d)"
  # containerd: bin/containerd bin/containerd-shim-runc-v2 bin/ctr
  d="$gh/containerd/containerd/releases/download/$CONTAINERD_VERSION"; mkdir -p "$d" "$t/containerd/bin"
  cp "$BUILD/containerd-$CONTAINERD_VERSION"/bin/* "$t/containerd/bin/"
  local ca="containerd-${CONTAINERD_VERSION#v}-linux-amd64.tar.gz"
  tgz "$d/$ca" -C "$t/containerd" bin
  sum_named "$d/$ca" sha256sum >"$d/$ca.sha256sum"
  mkdir -p "$gh/containerd/containerd/raw/$CONTAINERD_VERSION"
  cp "$GOMODCACHE/github.com/containerd/containerd/v2@$CONTAINERD_VERSION/containerd.service" \
    "$gh/containerd/containerd/raw/$CONTAINERD_VERSION/containerd.service"
  chmod 0644 "$gh/containerd/containerd/raw/$CONTAINERD_VERSION/containerd.service"
  # runc: runc.amd64 + runc.sha256sum
  d="$gh/opencontainers/runc/releases/download/$RUNC_VERSION"; mkdir -p "$d"
  install -m0755 "$BUILD/runc-$RUNC_VERSION/bin/runc" "$d/runc.amd64"
  sum_named "$d/runc.amd64" sha256sum >"$d/runc.sha256sum"
  # CNI plugins: ./<plugin> at the archive root
  d="$gh/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION"; mkdir -p "$d" "$t/cni"
  cp "$BUILD/cni-plugins-$CNI_PLUGINS_VERSION"/bin/* "$t/cni/"
  local cn="cni-plugins-linux-amd64-$CNI_PLUGINS_VERSION.tgz"
  tgz "$d/$cn" -C "$t/cni" .
  sum_named "$d/$cn" sha256sum >"$d/$cn.sha256"
  sum_named "$d/$cn" sha512sum >"$d/$cn.sha512"
  # crictl: crictl at the archive root; the .sha256 holds the bare digest like upstream's
  d="$gh/kubernetes-sigs/cri-tools/releases/download/$CRICTL_VERSION"; mkdir -p "$d"
  local cr="crictl-$CRICTL_VERSION-linux-amd64.tar.gz"
  tgz "$d/$cr" -C "$BUILD/cri-tools-$CRICTL_VERSION/bin" crictl
  sum_only "$d/$cr" sha256sum >"$d/$cr.sha256"
  # helm: linux-amd64/helm
  d="$MIRROR/get.helm.sh"; mkdir -p "$d" "$t/helm/linux-amd64"
  cp "$BUILD/helm-$HELM_VERSION/bin/helm" "$t/helm/linux-amd64/"
  local hn="helm-$HELM_VERSION-linux-amd64.tar.gz"
  tgz "$d/$hn" -C "$t/helm" linux-amd64
  sum_named "$d/$hn" sha256sum >"$d/$hn.sha256sum"
  sum_only "$d/$hn" sha256sum >"$d/$hn.sha256"
  # flannel daemon and its CNI plugin (for roles that install the plugin from the mirror)
  d="$gh/flannel-io/flannel/releases/download/$FLANNEL_VERSION"; mkdir -p "$d"
  local fn="flannel-$FLANNEL_VERSION-linux-amd64.tar.gz"
  mkdir -p "$t/flannel"; cp "$BUILD/flanneld-$FLANNEL_VERSION/bin/flanneld" "$t/flannel/flanneld"
  tgz "$d/$fn" -C "$t/flannel" flanneld
  sum_named "$d/$fn" sha256sum >"$d/$fn.sha256"
  d="$gh/flannel-io/cni-plugin/releases/download/$FLANNEL_CNI_PLUGIN_VERSION"; mkdir -p "$d" "$t/fcni"
  cp "$BUILD/flannel-cni-plugin-$FLANNEL_CNI_PLUGIN_VERSION/bin/flannel" "$t/fcni/flannel-amd64"
  local fc="cni-plugin-flannel-linux-amd64-$FLANNEL_CNI_PLUGIN_VERSION.tgz"
  tgz "$d/$fc" -C "$t/fcni" flannel-amd64
  sum_named "$d/$fc" sha256sum >"$d/$fc.sha256"
  rm -rf "$t"
}
step_archives() {
  local key="containerd$CONTAINERD_VERSION-runc$RUNC_VERSION-cni$CNI_PLUGINS_VERSION-crictl$CRICTL_VERSION-helm$HELM_VERSION-flannel$FLANNEL_VERSION-fcni$FLANNEL_CNI_PLUGIN_VERSION"
  if [[ -f "$BUILD/stamps/archives" && "$(cat "$BUILD/stamps/archives")" == "$key" ]]; then
    log "release archives: cached"; return
  fi
  timed "writing release archives into the mirror" build_archives
  mkdir -p "$BUILD/stamps"; echo "$key" >"$BUILD/stamps/archives"
}

################################################################################ images
# Minimal images for every image kubeadm deploys (names asserted against `kubeadm config images
# list`) plus the lab CNI's, pushed into a distribution registry whose storage is
# $KUBEADM_AWS_CACHE/registry. Base layers are `docker import`ed rootfs tarballs (a static base with
# /etc/passwd, /etc/nsswitch.conf, CA certificates and /tmp; a Debian minbase with iptables,
# nftables, conntrack, ipset); each image adds its binaries on top, so the base layer is shared.
LAB_IMAGE_PREFIX="lab"   # lab CNI images: registry.k8s.io/lab/<name>:<tag>
STATIC_BASE="kubeadm-aws-lab/static-base:1"
debian_base() { echo "kubeadm-aws-lab/debian-base:$DEBIAN_SUITE-$(basename "$(rootfs_dir)" | sed 's/.*-//')"; }

# The engine is started in one place, lab/lab.sh (which also installs it when missing).
docker_ready() {
  docker info >/dev/null 2>&1 || "$HERE/lab.sh" engine 9>&-   # 9: our lock, not dockerd's
}
import_bases() {
  if ! docker image inspect "$STATIC_BASE" >/dev/null 2>&1; then
    local t; t="$(mktemp -d)"
    mkdir -p "$t/etc/ssl/certs" "$t/tmp" "$t/var/run" "$t/root" "$t/home/nonroot"
    chmod 1777 "$t/tmp"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$t/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$t/etc/group"
    printf 'hosts: files dns\nnetworks: files\npasswd: files\ngroup: files\n' >"$t/etc/nsswitch.conf"
    cp /etc/ssl/certs/ca-certificates.crt "$t/etc/ssl/certs/"
    tar "${TAR_OPTS[@]}" -C "$t" -c . | docker import \
      --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin' - "$STATIC_BASE" >/dev/null
    rm -rf "$t"
  fi
  local db; db="$(debian_base)"
  if ! docker image inspect "$db" >/dev/null 2>&1; then
    docker import --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin' \
      "$(rootfs_dir)/rootfs.tar" "$db" >/dev/null
  fi
}
# image REPO:TAG BASE ENTRYPOINT_JSON SRC:DEST...: build an image FROM BASE adding files
image() {
  local ref="$1" base="$2" entry="$3"; shift 3
  local ctx; ctx="$(mktemp -d)"
  {
    echo "FROM $base"
    local i=0 f
    for f in "$@"; do
      cp "${f%%:*}" "$ctx/f$i"
      echo "COPY f$i ${f#*:}"
      i=$((i + 1))
    done
    echo "ENTRYPOINT $entry"
    echo "LABEL org.opencontainers.image.source=kubeadm-aws-lab"
  } >"$ctx/Dockerfile"
  # legacy builder: BuildKit is not part of Debian's docker.io 20.10 and FROM is a local image
  DOCKER_BUILDKIT=0 docker build -q -t "kubeadm-aws-lab/img/$ref" "$ctx" >"$ctx.log" 2>&1 ||
    { cat "$ctx.log" >&2; die "docker build of $ref failed"; }
  rm -rf "$ctx" "$ctx.log"
}
registry_has() {   # REPO:TAG -> present in the registry storage?
  local repo="${1%:*}" tag="${1##*:}"
  [[ -f "$REGISTRY_STORAGE/docker/registry/v2/repositories/$repo/_manifests/tags/$tag/current/link" ]]
}
REG_PID=""
registry_start() {
  local port; port="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
  REG_ADDR="127.0.0.1:$port"
  local bin="$BUILD/distribution-$DISTRIBUTION_VERSION/bin/registry"
  REGISTRY_HTTP_ADDR="$REG_ADDR" REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$REGISTRY_STORAGE" \
    OTEL_TRACES_EXPORTER=none "$bin" serve "$BUILD_DIR/registry/config.yml" >"$BUILD/registry-build.log" 2>&1 9>&- &
  REG_PID=$!
  trap registry_stop EXIT
  local i; for i in $(seq 50); do curl -fsS "http://$REG_ADDR/v2/" >/dev/null 2>&1 && return; sleep 0.2; done
  die "temporary registry did not start; see $BUILD/registry-build.log"
}
registry_stop() {
  if [[ -n "$REG_PID" ]]; then kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; fi
  REG_PID=""
}

# kube_images KUBE_VERSION: the image list kubeadm itself prints (the contract)
kube_images() { "$(kube_out "$1")/bin/kubeadm" config images list --kubernetes-version "$1" 2>/dev/null; }

# expected_images: every image reference the lab serves (registry.k8s.io/...)
expected_images() {
  local kv
  for kv in $KUBE_VERSIONS; do kube_images "$kv"; done
  echo "registry.k8s.io/$LAB_IMAGE_PREFIX/flannel:$FLANNEL_VERSION"
  echo "registry.k8s.io/$LAB_IMAGE_PREFIX/flannel-cni-plugin:$FLANNEL_CNI_PLUGIN_VERSION"
  local v vs; vs="$(ccm_versions)" || return 1
  for v in $vs; do echo "registry.k8s.io/provider-aws/cloud-controller-manager:$v"; done
}
build_image() {   # registry.k8s.io/REPO:TAG -> build it
  local ref="$1" path="${1#registry.k8s.io/}"
  local repo="${path%:*}" tag="${path##*:}" db; db="$(debian_base)"
  case "$repo" in
    kube-apiserver | kube-controller-manager | kube-scheduler)
      image "$path" "$STATIC_BASE" "[\"/usr/local/bin/$repo\"]" "$(kube_out "$tag")/bin/$repo:/usr/local/bin/$repo" ;;
    kube-proxy)
      image "$path" "$db" '["/usr/local/bin/kube-proxy"]' "$(kube_out "$tag")/bin/kube-proxy:/usr/local/bin/kube-proxy" ;;
    etcd)
      local ev="v${tag%-*}"; step_etcd "$ev"
      image "$path" "$STATIC_BASE" '["/usr/local/bin/etcd"]' "$BUILD/etcd-$ev/bin/etcd:/usr/local/bin/etcd" ;;
    coredns/coredns)
      step_coredns "$tag"
      image "$path" "$STATIC_BASE" '["/coredns"]' "$BUILD/coredns-$tag/bin/coredns:/coredns" ;;
    pause)
      step_pause "$tag"
      image "$path" "$STATIC_BASE" '["/pause"]' "$BUILD/pause-$tag/bin/pause:/pause" ;;
    "$LAB_IMAGE_PREFIX/flannel")
      image "$path" "$db" '["/opt/bin/flanneld"]' "$BUILD/flanneld-$tag/bin/flanneld:/opt/bin/flanneld" \
        "$BUILD/flannel-cni-plugin-$FLANNEL_CNI_PLUGIN_VERSION/bin/flannel:/flannel" ;;
    "$LAB_IMAGE_PREFIX/flannel-cni-plugin")
      image "$path" "$db" '["/bin/cp"]' "$BUILD/flannel-cni-plugin-$tag/bin/flannel:/flannel" ;;
    provider-aws/cloud-controller-manager)
      # upstream's image: the binary at /bin/aws-cloud-controller-manager, its ENTRYPOINT
      is_complete "$(ccm_out "$tag")" || timed "building cloud-provider-aws $tag (aws-cloud-controller-manager)" build_ccm_version "$tag"
      image "$path" "$STATIC_BASE" '["/bin/aws-cloud-controller-manager"]' \
        "$(ccm_out "$tag")/bin/aws-cloud-controller-manager:/bin/aws-cloud-controller-manager" ;;
    *) die "no recipe for image $ref" ;;
  esac
  docker tag "kubeadm-aws-lab/img/$path" "$REG_ADDR/$path"
  docker push -q "$REG_ADDR/$path" >/dev/null
  docker rmi "$REG_ADDR/$path" >/dev/null
}
step_images() {
  local refs_s refs=() missing=() r
  refs_s="$(expected_images)"; mapfile -t refs <<<"$refs_s"
  for r in "${refs[@]}"; do registry_has "${r#registry.k8s.io/}" || missing+=("$r"); done
  if [[ ${#missing[@]} -gt 0 ]]; then
    docker_ready
    step_rootfs
    import_bases
    registry_start
    _images() { local r; for r in "${missing[@]}"; do log "  image $r"; build_image "$r"; done; }
    timed "building and pushing ${#missing[@]} images" _images
    # every expected reference must now resolve through the registry API
    for r in "${refs[@]}"; do
      local p="${r#registry.k8s.io/}"
      curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REG_ADDR/v2/${p%:*}/manifests/${p##*:}" || die "registry does not serve $r"
    done
    registry_stop
  else
    log "images: all ${#refs[@]} cached in $REGISTRY_STORAGE"
  fi
  # images.txt: every reference the registry storage holds (all Kubernetes versions ever built)
  local repos="$REGISTRY_STORAGE/docker/registry/v2/repositories"
  find "$repos" -path '*/_manifests/tags/*/current/link' | sed -e "s|^$repos/||" \
    -e 's|/_manifests/tags/\([^/]*\)/current/link$|:\1|' -e 's|^|registry.k8s.io/|' | sort >"$MIRROR/images.txt.tmp"
  mv "$MIRROR/images.txt.tmp" "$MIRROR/images.txt"
}

################################################################################ checks and links
# The versions in lab/versions.env must be the ones kubeadm deploys for KUBE_VERSION.
step_check() {
  local list; list="$(kube_images "$KUBE_VERSION")"
  local want
  want="$(printf '%s\n' \
    "registry.k8s.io/kube-apiserver:$KUBE_VERSION" "registry.k8s.io/kube-controller-manager:$KUBE_VERSION" \
    "registry.k8s.io/kube-scheduler:$KUBE_VERSION" "registry.k8s.io/kube-proxy:$KUBE_VERSION" \
    "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "registry.k8s.io/pause:$PAUSE_VERSION" \
    "registry.k8s.io/etcd:$ETCD_IMAGE_TAG")"
  if [[ "$(sort <<<"$list")" != "$(sort <<<"$want")" ]]; then
    printf 'kubeadm %s lists:\n%s\nlab/versions.env implies:\n%s\n' "$KUBE_VERSION" "$list" "$want" >&2
    die "lab/versions.env (ETCD/COREDNS/PAUSE) does not match kubeadm $KUBE_VERSION"
  fi
  [[ "v${ETCD_IMAGE_TAG%-*}" == "$ETCD_VERSION" ]] || die "ETCD_IMAGE_TAG $ETCD_IMAGE_TAG != ETCD_VERSION $ETCD_VERSION"
  log "kubeadm $KUBE_VERSION image list matches lab/versions.env"
}
# Stable links to host-side tools for lab.sh and developers: $KUBEADM_AWS_CACHE/bin/
step_links() {
  mkdir -p "$CACHE/bin"
  ln -sfn "$(kube_out "$KUBE_VERSION")/bin/kubectl" "$CACHE/bin/kubectl"
  ln -sfn "$(kube_out "$KUBE_VERSION")/bin/kubeadm" "$CACHE/bin/kubeadm"
  ln -sfn "$BUILD/helm-$HELM_VERSION/bin/helm" "$CACHE/bin/helm"
  ln -sfn "$BUILD/distribution-$DISTRIBUTION_VERSION/bin/registry" "$CACHE/bin/registry"
  ln -sfn "$BUILD/cri-tools-$CRICTL_VERSION/bin/crictl" "$CACHE/bin/crictl"
  ln -sfn "$BUILD/etcd-$ETCD_VERSION/bin/etcd" "$CACHE/bin/etcd"
  ln -sfn "$BUILD/ec2-metadata-mock-$EC2_METADATA_MOCK_VERSION/bin/ec2-metadata-mock" "$CACHE/bin/ec2-metadata-mock"
  cp "$HERE/versions.env" "$MIRROR/versions.env"
}

################################################################################ main
# Order: the Kubernetes build is the critical path, then the other Go builds one at a time.
ALL_STEPS=(kubernetes check etcd coredns pause containerd runc crictl cni helm flannel registry
  ccm imds rootfs apt archives images links)
main() {
  local steps=("$@"); [[ ${#steps[@]} -gt 0 ]] || steps=("${ALL_STEPS[@]}")
  local t0=$SECONDS s
  log "kubeadm-aws lab artifacts: KUBE_VERSIONS=$KUBE_VERSIONS cache=$CACHE"
  for s in "${steps[@]}"; do
    declare -F "step_$s" >/dev/null || die "unknown step: $s (steps: ${ALL_STEPS[*]})"
    "step_$s"
  done
  log "artifacts ready in $CACHE ($((SECONDS - t0))s)"
}
main "$@"; exit $?
