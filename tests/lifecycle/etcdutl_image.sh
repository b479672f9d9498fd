#!/usr/bin/env bash
# Lab only, until the lab's etcd image carries etcdutl as registry.k8s.io's does: build etcdutl (from the Go
# module proxy, the version of lab/versions.env's ETCD_VERSION or $1) and serve it from the lab registry as
# registry.k8s.io/lab/etcdutl:<version>, for etcd_restore.yml's etcd_restore_image. Prints the image.
#   tests/lifecycle/etcdutl_image.sh [v3.6.8]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=lab/lab.env
. "$REPO/lab/lab.env"
# shellcheck source=lab/versions.env
. "$REPO/lab/versions.env"
V="${1:-$ETCD_VERSION}"
BUILD="$KUBEADM_AWS_CACHE/build"
OUT="$BUILD/etcdutl-$V" STORAGE="$KUBEADM_AWS_CACHE/registry"
REPO_PATH="lab/etcdutl" IMAGE="registry.k8s.io/lab/etcdutl:$V"
log() { printf '>> %s\n' "$*" >&2; }

if [ ! -x "$OUT/bin/etcdutl" ]; then
  log "building etcdutl $V"
  src="$BUILD/src/etcdutl-$V"
  rm -rf "$src" "$OUT"; mkdir -p "$src" "$OUT/bin"
  (
    cd "$src"
    export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN=local
    go mod init kubeadm-aws.lab/build/etcdutl >/dev/null 2>&1
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/etcdutl/v3"\n' >tools.go
    go mod edit -require="go.etcd.io/etcd/etcdutl/v3@$V"
    go mod tidy >/dev/null 2>&1
    go build -p 2 -ldflags "-s -w" -o "$OUT/bin/etcdutl" go.etcd.io/etcd/etcdutl/v3
  )
fi

if [ ! -f "$STORAGE/docker/registry/v2/repositories/$REPO_PATH/_manifests/tags/$V/current/link" ]; then
  port="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
  REGISTRY_HTTP_ADDR="127.0.0.1:$port" REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$STORAGE" OTEL_TRACES_EXPORTER=none \
    "$BUILD/distribution-$DISTRIBUTION_VERSION/bin/registry" serve "$REPO/lab/build/registry/config.yml" \
    >"$BUILD/etcdutl-registry.log" 2>&1 &
  reg=$!
  trap 'kill $reg 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
  ctx="$(mktemp -d)"
  cp "$OUT/bin/etcdutl" "$ctx/etcdutl"
  printf 'FROM scratch\nCOPY etcdutl /usr/local/bin/etcdutl\nENV PATH=/usr/local/bin\nENTRYPOINT ["/usr/local/bin/etcdutl"]\n' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "127.0.0.1:$port/$REPO_PATH:$V" "$ctx" >/dev/null
  docker push -q "127.0.0.1:$port/$REPO_PATH:$V" >/dev/null
  docker rmi "127.0.0.1:$port/$REPO_PATH:$V" >/dev/null
  rm -rf "$ctx"
  log "pushed $IMAGE"
fi
echo "$IMAGE"
