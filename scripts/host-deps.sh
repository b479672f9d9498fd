#!/usr/bin/env bash
# Debian packages the lab needs on the build machine (a fresh machine or CI has none of them):
# the Docker engine, debootstrap for node and image root filesystems, apt-ftparchive and gpg for the
# signed apt repository, libseccomp-dev for runc. Installs only what is missing.
set -euo pipefail
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v apt-ftparchive >/dev/null || need+=(apt-utils)
command -v gpg >/dev/null || need+=(gnupg)
command -v curl >/dev/null || need+=(curl)
[ -f /usr/lib/x86_64-linux-gnu/libseccomp.a ] || need+=(libseccomp-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo ">> installing host packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
