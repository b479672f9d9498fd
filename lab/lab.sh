#!/usr/bin/env bash
# The lab runtime: a Docker engine, systemd node containers that play EC2 instances, moto_server
# as the EC2/SSM/IAM API, each node's instance metadata service (IMDS, fed from moto), an HTTP mirror
# of the package sources and an image registry.
#
#   lab/lab.sh up          start (or reconcile) everything; idempotent
#   lab/lab.sh down        remove containers, their volumes, the network; stop moto, mirror, registry
#   lab/lab.sh status      what runs
#   lab/lab.sh smoke       pytest tests/lab: prove the parts are real
#   lab/lab.sh images      build the node images only (cached by their inputs)
#   lab/lab.sh engine      start the Docker engine only (the artifact builds need it for images)
#   lab/lab.sh cluster     (lead) playbooks/site.yml against the lab inventory
#   lab/lab.sh kubeconfig  (lead) print the lab cluster's admin kubeconfig path
#
# Topology and ports: lab/lab.conf; controller environment: lab/lab.env. See docs/lab.md.
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$LAB_DIR")"
# shellcheck source=lab/lab.env
. "$LAB_DIR/lab.env"

CACHE="$KUBEADM_AWS_CACHE"
STATE="$LAB_STATE_DIR"
VENV="$REPO/.venv"
LABEL=io.sesacthon.kubeadm-aws
# Bump when the node image recipe changes in a way the package list does not show.
NODE_IMAGE_RECIPE=4
# Bump when the container run flags change (containers are recreated when their spec changes).
NODE_SPEC_VERSION=4
# Bump when the instance metadata containers' run flags change.
IMDS_SPEC_VERSION=1
# Where EC2 instances (and the AWS SDKs) find the instance metadata service.
IMDS_ADDR=169.254.169.254
NODE_PACKAGES="systemd,systemd-sysv,dbus,python3,sudo,iproute2,ca-certificates,gnupg,curl,kmod,procps,netbase"

log() { printf '>> %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

suite_of() {
  case "$1" in
    debian12) echo bookworm ;;
    debian13) echo trixie ;;
    *) die "unknown LAB_OS '$1' (debian12 or debian13)" ;;
  esac
}

# --------------------------------------------------------------------------------------------
# Docker engine
# --------------------------------------------------------------------------------------------
ensure_engine() {
  if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io with apt"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  if docker info >/dev/null 2>&1; then return 0; fi
  if ! pidof dockerd >/dev/null 2>&1; then
    mkdir -p "$STATE"
    log "starting dockerd (log: $STATE/dockerd.log)"
    setsid nohup dockerd >>"$STATE/dockerd.log" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    echo $! >"$STATE/dockerd.pid"
  fi
  local i
  for i in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "the Docker engine does not answer (see $STATE/dockerd.log)"
}

# Every node's kubelet, containerd and pods share this machine's kernel, and with it the per-user
# inotify limits: the Debian default of 128 instances runs out at about 5 nodes ("inotify_init: too
# many open files" from the kubelet's cAdvisor). Raised, never lowered, as kind's docs advise.
ensure_host_limits() {
  local key want cur
  for key in fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288; do
    want=${key#*=} cur=$(sysctl -n "${key%%=*}")
    if [ "$cur" -lt "$want" ]; then
      log "raising ${key%%=*} from $cur to $want (host kernel, shared by the node containers)"
      sysctl -qw "$key" || log "could not raise ${key%%=*}: more than about 5 nodes may fail to start"
    fi
  done
}

# --------------------------------------------------------------------------------------------
# Node images: debootstrap minbase + systemd, imported into Docker; rebuilt when inputs change
# --------------------------------------------------------------------------------------------
node_image_hash() {
  local os="$1"
  { echo "recipe=$NODE_IMAGE_RECIPE"; echo "suite=$(suite_of "$os")"; echo "packages=$NODE_PACKAGES"
    declare -f customize_rootfs; } | sha256sum | cut -c1-16
}

customize_rootfs() {
  local root="$1"
  # A container has no consoles, udev or fstab-managed file systems: mask what cannot work there.
  local unit
  for unit in getty@tty1.service console-getty.service serial-getty@.service getty.target \
              systemd-remount-fs.service systemd-udevd.service systemd-udev-trigger.service \
              systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount \
              sys-kernel-tracing.mount systemd-firstboot.service systemd-hwdb-update.service \
              e2scrub_reap.service e2scrub_all.timer apt-daily.timer apt-daily-upgrade.timer \
              fstrim.timer; do
    ln -sfn /dev/null "$root/etc/systemd/system/$unit"
  done
  # journald must not re-read the host's kernel ring buffer in every node.
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nReadKMsg=no\nStorage=volatile\n' >"$root/etc/systemd/journald.conf.d/10-container.conf"
  # Every node gets its own machine-id at first boot (the kubelet reports it).
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  rm -f "$root/etc/hostname"
  # Smaller image, no stale lists: nodes run apt-get update like a fresh AMI.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  # Entrypoint: the container runs in its own cgroup namespace, where Docker mounts the cgroup
  # hierarchies read-only (no --privileged here). Make them writable, then become systemd, so that
  # systemd and the kubelet both see the node's cgroup as the root, as on a VM.
  mkdir -p "$root/usr/local/sbin"
  cat >"$root/usr/local/sbin/kubeadm-aws-lab-init" <<'INIT'
#!/bin/sh
# kubeadm-aws lab node entrypoint (lab/lab.sh): writable cgroup mounts, then systemd as PID 1.
for m in /sys/fs/cgroup /sys/fs/cgroup/*; do
  [ -L "$m" ] && continue
  if mountpoint -q "$m"; then mount -o remount,rw,bind "$m" 2>/dev/null || true; fi
done
exec /lib/systemd/systemd "$@"
INIT
  chmod 0755 "$root/usr/local/sbin/kubeadm-aws-lab-init"
  # /dev/kmsg: the kubelet opens it; point it at the console when the host gives none.
  mkdir -p "$root/etc/tmpfiles.d"
  echo 'L /dev/kmsg - - - - /dev/console' >"$root/etc/tmpfiles.d/kmsg.conf"
}

build_node_image() {
  local os="$1" suite hash image current root
  suite="$(suite_of "$os")"
  hash="$(node_image_hash "$os")"
  image="kubeadm-aws-node:$os"
  current="$(docker image inspect -f "{{ index .Config.Labels \"$LABEL.inputs\" }}" "$image" 2>/dev/null || true)"
  if [ "$current" = "$hash" ]; then
    return 0
  fi
  command -v debootstrap >/dev/null 2>&1 || {
    log "installing debootstrap with apt"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  local t0; t0=$(now)
  root="$CACHE/images/rootfs-$os-$hash"
  mkdir -p "$CACHE/images" "$CACHE/debootstrap-cache/$suite"
  rm -rf "$root"
  log "building $image from Debian $suite (debootstrap, log: $CACHE/images/$os.log)"
  if ! debootstrap --variant=minbase --include="$NODE_PACKAGES" \
        --cache-dir="$CACHE/debootstrap-cache/$suite" "$suite" "$root" >"$CACHE/images/$os.log" 2>&1; then
    tail -20 "$CACHE/images/$os.log" >&2
    die "debootstrap $suite failed"
  fi
  customize_rootfs "$root"
  tar -C "$root" -c . | docker import \
    --change 'CMD ["/usr/local/sbin/kubeadm-aws-lab-init"]' \
    --change 'ENV container=docker' \
    --change "LABEL $LABEL.inputs=$hash $LABEL.os=$os" \
    - "$image" >/dev/null
  rm -rf "$root"
  log "built $image in $(( $(now) - t0 ))s"
}

# --------------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------------
# Prints "name role ip short" lines for the configured topology.
node_list() {
  local i
  if ! [ "$LAB_CONTROL_PLANES" -ge 1 ] 2>/dev/null || [ "$LAB_CONTROL_PLANES" -gt 9 ]; then
    die "LAB_CONTROL_PLANES must be 1..9"
  fi
  if ! [ "$LAB_WORKERS" -ge 0 ] 2>/dev/null || [ "$LAB_WORKERS" -gt 79 ]; then
    die "LAB_WORKERS must be 0..79"
  fi
  for i in $(seq 1 "$LAB_CONTROL_PLANES"); do
    echo "kubeadm-aws-lab-cp$i control-plane 10.213.0.$((10 + i)) cp$i"
  done
  for i in $(seq 1 "$LAB_WORKERS"); do
    echo "kubeadm-aws-lab-w$i worker 10.213.0.$((20 + i)) w$i"
  done
}

ensure_network() {
  if docker network inspect "$LAB_NETWORK" >/dev/null 2>&1; then return 0; fi
  log "creating Docker network $LAB_NETWORK ($LAB_SUBNET)"
  # Containers without a fixed address (molecule's, for example) get one from LAB_IP_RANGE, away
  # from the nodes' fixed ones (.11-.99) and the smoke node's (.200).
  docker network create --driver bridge --subnet "$LAB_SUBNET" --gateway "$LAB_GATEWAY" \
    --ip-range "$LAB_IP_RANGE" \
    --label "$LABEL.lab=1" "$LAB_NETWORK" >/dev/null
}

# The EC2 private DNS name of an address, as AWS (and moto) derive it.
private_dns_of() {
  local ip="$1"
  if [ "$LAB_REGION" = us-east-1 ]; then
    echo "ip-${ip//./-}.ec2.internal"
  else
    echo "ip-${ip//./-}.$LAB_REGION.compute.internal"
  fi
}

# Start one systemd node container. Extra arguments: additional `docker run` flags.
# Used for the lab nodes and for throwaway containers (smoke tests).
run_node() {
  local name="$1" ip="$2" image="$3" spec="$4"; shift 4
  local hostname; hostname="$(private_dns_of "$ip")"
  local kmsg=() modules=()
  [ -e /dev/kmsg ] && kmsg=(--device /dev/kmsg)
  [ -d /lib/modules ] && modules=(-v /lib/modules:/lib/modules:ro)
  # The kubelet's resolv.conf for pods with dnsPolicy Default (CoreDNS): Docker's embedded resolver
  # (127.0.0.11) would be the pod's own loopback and CoreDNS would forward to itself. The lab network's
  # gateway serves no DNS, so names outside the cluster do not resolve in pods: traffic stays in the lab.
  mkdir -p "$STATE"
  printf 'nameserver %s\n' "$LAB_GATEWAY" >"$STATE/kubelet-resolv.conf"
  docker volume create --label "$LABEL.lab=1" "$name-containerd" >/dev/null
  docker volume create --label "$LABEL.lab=1" "$name-kubelet" >/dev/null
  docker run -d --name "$name" --hostname "$hostname" \
    --network "$LAB_NETWORK" --ip "$ip" --network-alias "$hostname" \
    --label "$LABEL.lab=1" --label "$LABEL.spec=$spec" --stop-signal SIGRTMIN+3 \
    --cap-add=ALL --cap-drop=SYS_RESOURCE \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
    --device-cgroup-rule='a *:* rmw' --cgroupns=private \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    -v "$name-containerd:/var/lib/containerd" -v "$name-kubelet:/var/lib/kubelet" \
    -v "$STATE/kubelet-resolv.conf:/etc/kubeadm-aws-lab/resolv.conf:ro" \
    "${kmsg[@]}" "${modules[@]}" "$@" \
    "$image" >/dev/null
}

wait_systemd() {
  local name="$1" state="" i
  for i in $(seq 1 90); do
    state="$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)"
    case "$state" in
      running) return 0 ;;
      degraded)
        log "$name: systemd is degraded: $(docker exec "$name" systemctl --failed --no-legend --plain 2>/dev/null | awk '{print $1}' | xargs)"
        return 0 ;;
    esac
    sleep 1
  done
  die "$name: systemd did not reach running (last state: '${state:-none}')"
}

remove_container() {
  local name="$1"
  docker rm -f -v "$name-imds" >/dev/null 2>&1 || true
  docker rm -f -v "$name" >/dev/null 2>&1 || true
  docker volume rm -f "$name-containerd" "$name-kubelet" >/dev/null 2>&1 || true
}

ensure_nodes() {
  local image="kubeadm-aws-node:$LAB_OS" image_id
  image_id="$(docker image inspect -f '{{.Id}}' "$image")"
  local wanted=() name role ip short spec current started=()
  while read -r name role ip short; do
    wanted+=("$name")
    spec="$(printf '%s\n' "$NODE_SPEC_VERSION" "$image_id" "$ip" "$role" | sha256sum | cut -c1-16)"
    current="$(docker inspect -f "{{ index .Config.Labels \"$LABEL.spec\" }} {{ .State.Running }}" "$name" 2>/dev/null || true)"
    if [ "$current" = "$spec true" ]; then
      continue
    elif [ "${current%% *}" = "$spec" ]; then
      log "starting stopped node $name"
      docker start "$name" >/dev/null
    else
      [ -n "$current" ] && log "recreating $name (its spec changed)"
      remove_container "$name"
      # A new machine behind the same host name: drop what Ansible's fact cache (ansible.cfg) knows
      # about the old one (e.g. the discovered Python interpreter of another Debian release).
      # (file names may carry a prefix: fact_caching_prefix).
      find "$REPO/.ansible/facts" -maxdepth 1 -type f -name "*$(private_dns_of "$ip")" -delete 2>/dev/null || true
      log "starting node $name ($role, $ip, $image)"
      run_node "$name" "$ip" "$image" "$spec"
    fi
    started+=("$name")
  done < <(node_list)
  # Nodes that the configuration no longer has (e.g. LAB_WORKERS lowered).
  local existing
  for existing in $(docker ps -a --filter "label=$LABEL.lab=1" --format '{{.Names}}'); do
    case " ${wanted[*]} " in *" $existing "*) ;; *)
      [ "$existing" = kubeadm-aws-lab-smoke ] && continue
      case "$existing" in *-imds) continue ;; esac   # instance metadata: ensure_imds
      case "$existing" in kubeadm-aws-lab-asg-*) continue ;; esac   # an Auto Scaling group's: lab/lib/asg_launcher.py
      log "removing node $existing (not in the configuration)"
      remove_container "$existing" ;;
    esac
  done
  for name in "${started[@]}"; do wait_systemd "$name"; done
}

# --------------------------------------------------------------------------------------------
# Host services: moto_server, mirror (HTTP), registry
# --------------------------------------------------------------------------------------------
pid_alive() {
  local f="$STATE/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

http_ok() { curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null; }

wait_http() {
  local url="$1" what="$2" i
  for i in $(seq 1 60); do
    http_ok "$url" && return 0
    sleep 0.5
  done
  die "$what does not answer on $url (see $STATE/$what.log)"
}

# start_service NAME HEALTH_URL COMMAND...
start_service() {
  local name="$1" url="$2"; shift 2
  if pid_alive "$name" && http_ok "$url"; then return 0; fi
  if pid_alive "$name"; then
    log "$name runs but does not answer; restarting it"
    stop_service "$name"
  fi
  if http_ok "$url"; then
    die "something else already answers on $url; stop it first"
  fi
  log "starting $name (log: $STATE/$name.log)"
  # No inherited descriptors: a caller's lock (flock LOCK cmd, fd 3; lab.sh's own, fd 9) must not live on in a service.
  setsid nohup "$@" >>"$STATE/$name.log" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  echo $! >"$STATE/$name.pid"
  wait_http "$url" "$name"
}

stop_service() {
  local name="$1" pid i
  [ -f "$STATE/$name.pid" ] || return 0
  pid="$(cat "$STATE/$name.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$STATE/$name.pid"
}

ensure_moto() {
  [ -x "$VENV/bin/moto_server" ] || die "$VENV/bin/moto_server is missing: run 'make setup'"
  # Bound to all addresses: the controller uses 127.0.0.1, nodes use the network gateway.
  # moto_server with the Auto Scaling lifecycle hooks moto does not act on (lab/lib/moto_lifecycle.py).
  start_service moto "http://127.0.0.1:$LAB_MOTO_PORT/moto-api/" \
    "$VENV/bin/python" "$LAB_DIR/lib/moto_lifecycle.py" -H 0.0.0.0 -p "$LAB_MOTO_PORT"
}

ensure_mirror() {
  mkdir -p "$CACHE/mirror"
  start_service mirror "http://$LAB_GATEWAY:$LAB_MIRROR_PORT/" \
    python3 "$LAB_DIR/lib/mirror_server.py" --bind "$LAB_GATEWAY" --port "$LAB_MIRROR_PORT" \
    --directory "$CACHE/mirror"
}

# The registry binary (distribution's `registry`) is built by lab/build-artifacts.sh into
# $KUBEADM_AWS_CACHE/build/distribution-<DISTRIBUTION_VERSION>/bin/ (lab/versions.env).
find_registry_bin() {
  local version="" c
  # shellcheck source=lab/versions.env
  [ -f "$LAB_DIR/versions.env" ] && version="$(. "$LAB_DIR/versions.env" && echo "${DISTRIBUTION_VERSION:-}")"
  for c in "${LAB_REGISTRY_BIN:-}" "$CACHE/build/distribution-$version/bin/registry"; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

ensure_registry() {
  local bin config="$LAB_DIR/build/registry/config.yml"
  if ! bin="$(find_registry_bin)"; then
    log "WARNING: no registry binary yet (run 'make lab-artifacts'); the image registry is not started"
    return 0
  fi
  [ -f "$config" ] || die "$config is missing (the registry configuration of lab/build-artifacts.sh)"
  mkdir -p "$CACHE/registry"
  # Same configuration as the build's temporary registry; storage and address from the environment.
  start_service registry "http://$LAB_GATEWAY:$LAB_REGISTRY_PORT/v2/" \
    env REGISTRY_HTTP_ADDR="$LAB_GATEWAY:$LAB_REGISTRY_PORT" \
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$CACHE/registry" OTEL_TRACES_EXPORTER=none \
    "$bin" serve "$config"
}

# EC2 instances in moto, one per node container; re-registered when moto lost its state.
ensure_instances() {
  local args=() name role ip short
  while read -r name role ip short; do
    local tagvar="LAB_TAGS_$short"
    args+=(--node "$name|$role|$ip|${!tagvar:-}")
  done < <(node_list)
  "$VENV/bin/python" "$LAB_DIR/lib/moto_ec2.py" ensure \
    --cluster "$LAB_CLUSTER" --region "$LAB_REGION" --az "$LAB_AZ" \
    --vpc-cidr "$LAB_VPC_CIDR" --subnet-cidr "$LAB_SUBNET" --instance-type "$LAB_INSTANCE_TYPE" \
    "${args[@]}" >"$STATE/instances.json"
}

# --------------------------------------------------------------------------------------------
# Instance metadata (IMDS): one amazon-ec2-metadata-mock per node, in the node's network namespace
# --------------------------------------------------------------------------------------------
# The mock binary is built by lab/build-artifacts.sh (step imds) into
# $KUBEADM_AWS_CACHE/build/ec2-metadata-mock-<EC2_METADATA_MOCK_VERSION>/bin/ (lab/versions.env).
find_imds_bin() {
  local version="" c
  # shellcheck source=lab/versions.env
  [ -f "$LAB_DIR/versions.env" ] && version="$(. "$LAB_DIR/versions.env" && echo "${EC2_METADATA_MOCK_VERSION:-}")"
  for c in "${LAB_IMDS_BIN:-}" "$CACHE/build/ec2-metadata-mock-$version/bin/ec2-metadata-mock"; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

# Each node answers 169.254.169.254:80 with its own instance's metadata, as on EC2: a container
# (<node>-imds) joins the node's network namespace, puts the address on its loopback interface and
# runs the mock there with the configuration lab/lib/imds_mock.py writes from moto. The node's own
# file system and processes stay untouched. Recreated when the node, the binary or moto's data change.
# run_imds NODE BIN CONFIG IMAGE SPEC: (re)start the instance metadata sidecar of one node container.
run_imds() {
  local name="$1" bin="$2" cfg="$3" image="$4" spec="$5" sidecar="$1-imds"
  docker rm -f -v "$sidecar" >/dev/null 2>&1 || true
  log "starting the instance metadata service of $name ($IMDS_ADDR:80 in its network namespace)"
  docker run -d --name "$sidecar" --network "container:$name" \
    --label "$LABEL.lab=1" --label "$LABEL.imds-for=$name" --label "$LABEL.spec=$spec" \
    --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_BIND_SERVICE \
    -v "$bin:/usr/local/bin/ec2-metadata-mock:ro" -v "$cfg:/etc/ec2-metadata-mock/config.json:ro" \
    --entrypoint /bin/sh "$image" -c \
    "ip addr replace $IMDS_ADDR/32 dev lo && exec /usr/local/bin/ec2-metadata-mock -c /etc/ec2-metadata-mock/config.json -n $IMDS_ADDR -p 80" \
    >/dev/null
}

# The instance metadata service of one node container that is no static node (lab/lib/asg_launcher.py):
# the mock's configuration is written from moto for every lab instance, then this node's sidecar starts.
cmd_imds_node() {
  local name="$1" bin
  bin="$(find_imds_bin)" || die "no ec2-metadata-mock binary (run 'make lab-artifacts')"
  mkdir -p "$STATE/imds"
  "$VENV/bin/python" "$LAB_DIR/lib/imds_mock.py" config --out-dir "$STATE/imds" --region "$LAB_REGION" >/dev/null
  [ -f "$STATE/imds/$name.json" ] || die "moto has no running instance tagged lab/container=$name"
  run_imds "$name" "$bin" "$STATE/imds/$name.json" "kubeadm-aws-node:$LAB_OS" "asg"
}

ensure_imds() {
  local bin
  if ! bin="$(find_imds_bin)"; then
    log "WARNING: no ec2-metadata-mock binary yet (run 'make lab-artifacts'): the nodes have no instance metadata service"
    return 0
  fi
  mkdir -p "$STATE/imds"
  "$VENV/bin/python" "$LAB_DIR/lib/imds_mock.py" config --out-dir "$STATE/imds" --region "$LAB_REGION" >"$STATE/imds.json"
  local image="kubeadm-aws-node:$LAB_OS" image_id bin_sum name role ip short cfg node_state spec current
  local sidecar wanted=() started=()
  image_id="$(docker image inspect -f '{{.Id}}' "$image")"
  bin_sum="$(sha256sum "$bin" | cut -c1-16)"
  while read -r name role ip short; do
    sidecar="$name-imds"
    wanted+=("$sidecar")
    cfg="$STATE/imds/$name.json"
    [ -f "$cfg" ] || die "moto has no running instance for $name: no instance metadata ($cfg)"
    node_state="$(docker inspect -f '{{.Id}} {{.State.StartedAt}}' "$name")"
    spec="$(printf '%s\n' "$IMDS_SPEC_VERSION" "$node_state" "$image_id" "$bin_sum" "$(sha256sum <"$cfg")" |
      sha256sum | cut -c1-16)"
    current="$(docker inspect -f "{{ index .Config.Labels \"$LABEL.spec\" }} {{ .State.Running }}" "$sidecar" 2>/dev/null || true)"
    [ "$current" = "$spec true" ] && continue
    run_imds "$name" "$bin" "$cfg" "$image" "$spec"
    started+=("$name")
  done < <(node_list)
  local existing
  for existing in $(docker ps -a --filter "label=$LABEL.imds-for" --format '{{.Names}}'); do
    case "$existing" in kubeadm-aws-lab-asg-*) continue ;; esac   # an Auto Scaling group's node: cmd_imds_node
    case " ${wanted[*]} " in *" $existing "*) ;; *)
      log "removing $existing (its node is not in the configuration)"
      docker rm -f -v "$existing" >/dev/null ;;
    esac
  done
  # Each started service answers its node's instance id (from the node itself, like an SDK would).
  local want got i
  for name in "${started[@]}"; do
    want="$("$VENV/bin/python" -c 'import json,sys; print({r["container"]: r["instance_id"] for r in json.load(open(sys.argv[1]))}[sys.argv[2]])' \
      "$STATE/imds.json" "$name")"
    got=""
    for i in $(seq 1 40); do
      got="$(docker exec "$name" curl -fsS -m 2 "http://$IMDS_ADDR/latest/meta-data/instance-id" 2>/dev/null || true)"
      [ "$got" = "$want" ] && break
      sleep 0.25
    done
    [ "$got" = "$want" ] || die "$name: the instance metadata service answers '${got:-nothing}' instead of $want (docker logs $name-imds)"
  done
}

# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------
# The Argo CD chart site.yml installs in the lab comes from the shared fixtures (never committed).
require_fixtures() {
  [ -f "$LAB_ARGOCD_CHART/Chart.yaml" ] || die "the Argo CD chart is not at $LAB_ARGOCD_CHART: set LAB_FIXTURES_DIR to the shared fixtures directory (../shared/fixtures next to the repository), or LAB_ARGOCD_CHART to the chart"
}

cmd_up() {
  local t0; t0=$(now)
  require_fixtures
  mkdir -p "$STATE"
  ensure_engine
  ensure_host_limits
  build_node_image "$LAB_OS"
  ensure_network
  ensure_moto
  ensure_mirror
  ensure_registry
  ensure_instances
  ensure_nodes
  ensure_imds
  log "lab is up in $(( $(now) - t0 ))s: $(node_list | awk '{print $1}' | xargs)"
}

cmd_down() {
  local t0; t0=$(now)
  if docker info >/dev/null 2>&1; then
    local names
    names="$(docker ps -a --filter "label=$LABEL.lab=1" --format '{{.Names}}' | xargs)"
    if [ -n "$names" ]; then
      log "removing $names"
      # shellcheck disable=SC2086 # one call: the engine stops the containers in parallel
      docker rm -f -v $names >/dev/null
    fi
    docker volume ls -q --filter "label=$LABEL.lab=1" | xargs -r docker volume rm -f >/dev/null
    if docker network inspect "$LAB_NETWORK" >/dev/null 2>&1; then
      local users
      users="$(docker network inspect -f '{{range .Containers}}{{.Name}} {{end}}' "$LAB_NETWORK")"
      if [ -n "${users// /}" ]; then
        # e.g. molecule's test containers: leave them (and so the network) to their owner.
        log "WARNING: keeping network $LAB_NETWORK: other containers use it: $users"
      else
        log "removing network $LAB_NETWORK"
        # Right after `docker rm -f` the engine may still hold an endpoint of a removed container
        # ("has active endpoints"): give it a few seconds.
        local try
        # An endpoint the engine never released (a container killed mid-way) keeps the network forever:
        # leave it then (`up` reuses it) rather than fail the teardown.
        for try in 1 2 3 4 5 6; do
          docker network rm "$LAB_NETWORK" >/dev/null 2>&1 && break
          if [ "$try" -eq 6 ]; then
            log "WARNING: keeping network $LAB_NETWORK: the Docker engine still holds an endpoint on it ($(docker network rm "$LAB_NETWORK" 2>&1 | tail -1))"
          fi
          sleep 2
        done
      fi
    fi
  fi
  stop_service registry
  stop_service mirror
  stop_service moto
  rm -f "$STATE/instances.json" "$STATE/imds.json"
  rm -rf "$STATE/imds"
  log "lab is down in $(( $(now) - t0 ))s (caches and images kept)"
}

cmd_status() {
  local s
  for s in moto mirror registry; do
    if pid_alive "$s"; then echo "$s: running (pid $(cat "$STATE/$s.pid"))"; else echo "$s: stopped"; fi
  done
  docker ps -a --filter "label=$LABEL.lab=1" --format '{{.Names}}\t{{.Status}}\t{{.Image}}' 2>/dev/null || true
}

cmd_smoke() {
  [ -x "$VENV/bin/pytest" ] || die "$VENV/bin/pytest is missing: run 'make setup'"
  cd "$REPO"
  exec "$VENV/bin/python" -m pytest -v -p no:cacheprovider tests/lab "$@"
}

# The lab cluster: playbooks/site.yml with the lab inventory and lab/lab-vars.yml (and lab/no-ccm-vars.yml
# with LAB_CLOUD_PROVIDER=none), nothing more.
cmd_cluster() {
  cd "$REPO"
  export ANSIBLE_CONFIG="$REPO/ansible.cfg"
  local variant=()
  if [ "${LAB_CLOUD_PROVIDER:-}" = none ]; then variant=(-e @lab/no-ccm-vars.yml); fi
  "$VENV/bin/ansible-playbook" -i inventory/lab.aws_ec2.yml playbooks/site.yml -e @lab/lab-vars.yml "${variant[@]}" "$@"
  # shellcheck disable=SC1091
  . "$REPO/lab/versions.env"
  "$KUBEADM_AWS_CACHE/build/kubernetes-$KUBE_VERSION/bin/kubectl" --kubeconfig "$STATE/admin.conf" get nodes -o wide
}

# Where playbooks/site.yml writes the lab's admin kubeconfig (kubeadm_aws_kubeconfig_path in lab-vars.yml).
cmd_kubeconfig() {
  local f="$STATE/admin.conf"
  [ -f "$f" ] || die "$f does not exist yet: run 'make lab'"
  echo "$f"
}

# One `up`/`down`/`images` at a time (make targets of several engineers or CI jobs may overlap).
lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/lab.lock"
  if ! flock -n 9; then
    log "waiting for another lab/lab.sh to finish"
    flock 9
  fi
}

case "${1:-}" in
  up) lock; cmd_up ;;
  down) lock; cmd_down ;;
  status) cmd_status ;;
  engine) ensure_engine ;;
  images) lock; ensure_engine; build_node_image "${2:-$LAB_OS}" ;;
  run-node) shift; ensure_engine; run_node "$@" ;;   # internal: used by tests/lab
  wait-node) wait_systemd "$2" ;;                    # internal: used by tests/lab
  rm-node) remove_container "$2" ;;                  # internal: used by tests/lab
  imds-node) cmd_imds_node "$2" ;;                   # internal: used by lab/lib/asg_launcher.py
  smoke) shift; cmd_smoke "$@" ;;
  cluster) shift; cmd_cluster "$@" ;;
  kubeconfig) cmd_kubeconfig ;;
  *) echo "usage: $0 up|down|status|smoke|images [OS]|engine|cluster|kubeconfig" >&2; exit 2 ;;
esac
