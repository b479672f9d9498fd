#!/usr/bin/env bash
# Lab images for Argo CD and its redis, built without any container registry:
#   - argocd: the argocd binary built from the Go module proxy (github.com/argoproj/argo-cd/v2), on a
#     Debian rootfs (debootstrap) with git, ssh, gpg, tini and the lab's helm;
#   - redis: Debian's redis-server package on a Debian rootfs.
# Both are pushed into the lab registry storage ($KUBEADM_AWS_CACHE/registry) under
# registry.k8s.io/lab/<name>:<tag>, which the nodes reach through their registry.k8s.io mirror.
# Cached by version; a second run does nothing.
#
#   lab/build/argocd/build.sh [modules|binary|images|all]     (default: all)
#
# Why Argo CD v2: v3's go.mod replaces github.com/argoproj/argo-cd/gitops-engine with ./gitops-engine,
# a nested module the proxy does not serve at the required pseudo-version; v2.14 depends on the
# separate github.com/argoproj/gitops-engine module, which the proxy serves.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAB="$(cd "$HERE/../.." && pwd)"
# shellcheck source=lab/versions.env
. "$LAB/versions.env"
export KUBEADM_AWS_CACHE="${KUBEADM_AWS_CACHE:-$HOME/.cache/kubeadm-aws}"
CACHE="$KUBEADM_AWS_CACHE"
BUILD="$CACHE/build"
REGISTRY_STORAGE="$CACHE/registry"
ARGOCD_VERSION="${ARGOCD_VERSION:-v2.14.21}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
# The chart's repo-server init container runs `cp --update=none` (GNU coreutils >= 9.2): trixie.
ARGOCD_DEBIAN_SUITE="${ARGOCD_DEBIAN_SUITE:-trixie}"
REDIS_IMAGE_TAG="${REDIS_IMAGE_TAG:-debian-$DEBIAN_SUITE}"
IMAGE_PREFIX="lab"
RECIPE=1
# Bump when an image's content changes without a version change (the tag is then pushed again).
IMAGE_RECIPE=3
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath -mod=mod" GOTOOLCHAIN=local
export GOMODCACHE="${GOMODCACHE:-$(go env GOMODCACHE)}" GOCACHE="${GOCACHE:-$(go env GOCACHE)}"
GO_P="${GO_P:-2}"

SRC="$BUILD/argocd-src-$ARGOCD_VERSION"
OUT="$BUILD/argocd-$ARGOCD_VERSION"
M=github.com/argoproj/argo-cd/v2

log() { printf '>> [%s] argocd: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf '!! [%s] argocd: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; exit 1; }

# A wrapper module: argo-cd's own go.mod (its requires and replaces, which a dependent module would
# otherwise ignore) under another module name, plus a require of argo-cd itself.
step_modules() {
  [[ -f "$SRC/.complete" ]] && return
  log "modules for $M@$ARGOCD_VERSION (log: $SRC.log)"
  rm -rf "$SRC"; mkdir -p "$SRC"
  (
    cd "$SRC"
    go mod download -json "$M@$ARGOCD_VERSION" >mod.json
    gomod="$(python3 -c 'import json,sys;print(json.load(open("mod.json"))["GoMod"])')"
    sed -e "s#^module .*#module lab.invalid/argocd-build#" "$gomod" >go.mod
    go mod edit -require="$M@$ARGOCD_VERSION"
    printf 'package main\n\nimport _ "%s/cmd"\n\nfunc main() {}\n' "$M" >tools.go
    go mod tidy -e >>"$SRC.log" 2>&1 || true
    go mod download >>"$SRC.log" 2>&1
  ) || die "module download failed (see $SRC.log)"
  date -u +%FT%TZ >"$SRC/.complete"
  log "modules ready in $SRC"
}

step_binary() {
  [[ -f "$OUT/.complete" ]] && return
  step_modules
  log "building argocd $ARGOCD_VERSION (log: $OUT.log)"
  rm -rf "$OUT"; mkdir -p "$OUT/bin"
  local t0=$SECONDS
  (
    cd "$SRC"
    go build -p "$GO_P" -o "$OUT/bin/argocd" \
      -ldflags "-s -w -X $M/common.version=${ARGOCD_VERSION#v} -X $M/common.gitTreeState=clean -X $M/common.buildDate=1970-01-01T00:00:00Z" \
      "$M/cmd"
  ) >"$OUT.log" 2>&1 || { tail -30 "$OUT.log" >&2; die "go build failed (see $OUT.log)"; }
  "$OUT/bin/argocd" version --client --short >>"$OUT.log" 2>&1 || die "the argocd binary does not run"
  printf '%s\tbuilding argocd %s\t%ss\n' "$(date -u +%FT%TZ)" "$ARGOCD_VERSION" "$((SECONDS - t0))" >>"$BUILD/timings.log"
  date -u +%FT%TZ >"$OUT/.complete"
}

# rootfs NAME PACKAGES [SUITE]: a Debian minbase rootfs tarball, cached by its inputs
rootfs() {
  local name="$1" pkgs="$2" suite="${3:-$DEBIAN_SUITE}" hash dir
  hash="$(printf '%s %s %s %s' "$RECIPE" "$suite" "$pkgs" "$name" | sha256sum | cut -c1-12)"
  dir="$BUILD/argocd-rootfs-$name-$hash"
  if [[ ! -f "$dir/rootfs.tar" ]]; then
    command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    log "debootstrap $suite rootfs for $name ($pkgs)"
    rm -rf "$dir"; mkdir -p "$dir" "$CACHE/debootstrap-cache/$suite"
    debootstrap --variant=minbase --include="$pkgs" --cache-dir="$CACHE/debootstrap-cache/$suite" \
      "$suite" "$dir/root" >"$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; die "debootstrap failed"; }
    # The images run as uid 999 (the chart's securityContext): Argo CD's user "argocd", and redis.
    chroot "$dir/root" /bin/sh -c 'getent passwd 999 >/dev/null || useradd -u 999 -U -m -d /home/argocd -s /bin/sh argocd' \
      >>"$dir.log" 2>&1
    rm -rf "$dir/root"/var/lib/apt/lists/* "$dir/root"/var/cache/apt/archives/*.deb
    tar --sort=name --numeric-owner -C "$dir/root" -cf "$dir/rootfs.tar" .
    rm -rf "$dir/root"
  fi
  echo "$dir/rootfs.tar"
}

registry_has() { [[ -f "$REGISTRY_STORAGE/docker/registry/v2/repositories/$1/_manifests/tags/$2/current/link" ]]; }

REG_PID=""
registry_start() {
  local bin="$BUILD/distribution-$DISTRIBUTION_VERSION/bin/registry" port
  [[ -x "$bin" ]] || die "$bin is missing: run 'make lab-artifacts' first"
  port="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
  REG_ADDR="127.0.0.1:$port"
  REGISTRY_HTTP_ADDR="$REG_ADDR" REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$REGISTRY_STORAGE" \
    OTEL_TRACES_EXPORTER=none "$bin" serve "$LAB/build/registry/config.yml" >"$BUILD/argocd-registry.log" 2>&1 &
  REG_PID=$!
  trap 'kill "$REG_PID" 2>/dev/null || true' EXIT
  local _; for _ in $(seq 50); do curl -fsS "http://$REG_ADDR/v2/" >/dev/null 2>&1 && return; sleep 0.2; done
  die "temporary registry did not start; see $BUILD/argocd-registry.log"
}

# push LOCAL_IMAGE REPO TAG
push() {
  docker tag "$1" "$REG_ADDR/$2:$3"
  docker push -q "$REG_ADDR/$2:$3" >/dev/null
  docker rmi "$REG_ADDR/$2:$3" >/dev/null
  curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG_ADDR/v2/$2/manifests/$3" || die "registry does not serve $2:$3"
  log "pushed registry.k8s.io/$2:$3"
}

step_images() {
  local argo_repo="$IMAGE_PREFIX/argocd" redis_repo="$IMAGE_PREFIX/redis"
  local stamp="$BUILD/argocd-images-$ARGOCD_VERSION-$REDIS_IMAGE_TAG-r$IMAGE_RECIPE.done"
  [[ -f "$stamp" ]] || rm -f "$REGISTRY_STORAGE/docker/registry/v2/repositories/$argo_repo/_manifests/tags/$ARGOCD_VERSION/current/link" \
    "$REGISTRY_STORAGE/docker/registry/v2/repositories/$redis_repo/_manifests/tags/$REDIS_IMAGE_TAG/current/link"
  if registry_has "$argo_repo" "$ARGOCD_VERSION" && registry_has "$redis_repo" "$REDIS_IMAGE_TAG"; then
    log "images cached: registry.k8s.io/$argo_repo:$ARGOCD_VERSION, registry.k8s.io/$redis_repo:$REDIS_IMAGE_TAG"
    return
  fi
  docker info >/dev/null 2>&1 || "$LAB/lab.sh" engine
  step_binary
  local helm="$BUILD/helm-$HELM_VERSION/bin/helm"
  [[ -x "$helm" ]] || die "$helm is missing: run 'make lab-artifacts' first"
  local ctx; ctx="$(mktemp -d)"
  registry_start

  if ! registry_has "$argo_repo" "$ARGOCD_VERSION"; then
    docker import "$(rootfs argocd ca-certificates,git,git-lfs,openssh-client,gnupg,tini,tzdata,passwd "$ARGOCD_DEBIAN_SUITE")" \
      "kubeadm-aws-lab/argocd-base:$ARGOCD_VERSION" >/dev/null
    # Argo CD's own image adds its gpg and git wrappers (the repo server execs gpg-wrapper.sh).
    local src="$GOMODCACHE/$M@$ARGOCD_VERSION"
    cp "$OUT/bin/argocd" "$helm" "$src/hack/gpg-wrapper.sh" "$src/hack/git-verify-wrapper.sh" "$ctx/"
    chmod 0755 "$ctx"/*.sh
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM kubeadm-aws-lab/argocd-base:$ARGOCD_VERSION
COPY argocd helm gpg-wrapper.sh git-verify-wrapper.sh /usr/local/bin/
RUN cd /usr/local/bin && for n in argocd-server argocd-repo-server argocd-cmp-server argocd-application-controller \
      argocd-dex argocd-notifications argocd-applicationset-controller argocd-k8s-auth argocd-commit-server; do \
      ln -s argocd \$n; done && mkdir -p /app/config/ssh /app/config/tls /app/config/gpg/source /app/config/gpg/keys \
    && chown -R 999:999 /app/config /home/argocd
ENV USER=argocd HOME=/home/argocd PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin
USER 999
WORKDIR /home/argocd
ENTRYPOINT ["/usr/bin/tini", "--"]
LABEL org.opencontainers.image.source=kubeadm-aws-lab
DOCKERFILE
    DOCKER_BUILDKIT=0 docker build -q -t "kubeadm-aws-lab/img/$argo_repo:$ARGOCD_VERSION" "$ctx" >/dev/null
    push "kubeadm-aws-lab/img/$argo_repo:$ARGOCD_VERSION" "$argo_repo" "$ARGOCD_VERSION"
  fi

  if ! registry_has "$redis_repo" "$REDIS_IMAGE_TAG"; then
    docker import --change 'ENTRYPOINT ["/usr/bin/redis-server"]' --change 'USER 999' \
      --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin' \
      "$(rootfs redis redis-server,passwd)" "kubeadm-aws-lab/img/$redis_repo:$REDIS_IMAGE_TAG" >/dev/null
    push "kubeadm-aws-lab/img/$redis_repo:$REDIS_IMAGE_TAG" "$redis_repo" "$REDIS_IMAGE_TAG"
  fi
  rm -rf "$ctx"
  date -u +%FT%TZ >"$stamp"
}

case "${1:-all}" in
  modules) step_modules ;;
  binary) step_binary ;;
  images | all) step_images ;;
  *) echo "usage: $0 [modules|binary|images|all]" >&2; exit 2 ;;
esac
