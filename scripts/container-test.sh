#!/usr/bin/env bash
# Builds the Dockerfile for real and runs the image's entrypoint, as root, with podman. No registry is reachable here:
# the base image is made locally (debootstrap --variant=minbase bookworm plus this machine's Node.js) and given to the
# build as NODE_IMAGE. `podman run` cannot start containers on these machines (no rlimits), so the built image is
# mounted (podman image mount) and its ENTRYPOINT + CMD run chrooted in a throwaway network namespace; then its
# HEALTHCHECK must pass, the CLI bans an address through it, checked in that namespace's kernel, and the REST port serves
# the web console.
# CI runs it on every run (.ci/run installs podman and debootstrap). Takes ≈ 3–6 min cold (debootstrap ≈ 50 s, npm ci and the
# better-sqlite3 compile in the build stage), ≈ 30 s with the base image and build cache warm.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

# Everything below mounts things: in a private mount namespace of our own, undone when the script exits.
if [ -z "${PC_CONTAINER_TEST_NS:-}" ]; then
  exec env PC_CONTAINER_TEST_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi

for tool in podman debootstrap ip chroot; do
  command -v "$tool" >/dev/null || { echo "container-test: $tool is missing (apt-get install podman debootstrap)" >&2; exit 1; }
done

BASE=localhost/portcullis-base:bookworm
IMAGE=localhost/portcullis:test
NS=pc-ct-$$-$RANDOM
work=$(mktemp -d /tmp/pc-container-XXXXXX)
server_pid=""
mounted=""
cleanup() {
  if [ -n "$server_pid" ]; then
    # $server_pid is the background subshell running in_image; the server (ip netns exec → chroot → sh → node, each
    # exec'ing the next) is its child: end that by its PID first, or it outlives the test in a nameless namespace.
    for child in $(ps -o pid= --ppid "$server_pid" 2>/dev/null); do kill "$child" 2>/dev/null || true; done
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$mounted" ]; then
    for target in tmp var/lib/portcullis dev proc; do umount -l "$mounted/$target" 2>/dev/null || true; done
    podman image unmount "$IMAGE" >/dev/null 2>&1 || true
  fi
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { echo "container-test [$(( $(date +%s) - started ))s] $*"; }

if ! podman image exists "$BASE"; then
  step "making the base image $BASE (debootstrap bookworm minbase + $(node --version))"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  cp "$(command -v node)" "$work/rootfs/usr/bin/node"
  node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  mkdir -p "$work/rootfs/usr/lib/node_modules" "$work/rootfs/usr/include"
  cp -a "$node_prefix/lib/node_modules/npm" "$work/rootfs/usr/lib/node_modules/"
  cp -a "$node_prefix/include/node" "$work/rootfs/usr/include/"   # headers: better-sqlite3 compiles without nodejs.org
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/bin/npx"
  tar -C "$work/rootfs" -c . | podman import --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" - "$BASE" >/dev/null
  rm -rf "$work/rootfs"
fi

step "building the Dockerfile (podman build --isolation=chroot --format docker: OCI images have no HEALTHCHECK)"
build_args=(--build-arg "NODE_IMAGE=$BASE" --build-arg npm_config_nodedir=/usr)
# A TLS-intercepting proxy's CA (as on these machines): npm in the build must trust it too. Mounted at a path of its
# own (over /etc/ssl/certs it would break the image's ca-certificates package).
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  build_args+=(--build-arg NODE_EXTRA_CA_CERTS=/usr/local/share/build-extra-ca.pem -v "$NODE_EXTRA_CA_CERTS:/usr/local/share/build-extra-ca.pem:ro")
fi
podman build --isolation=chroot --format docker "${build_args[@]}" -t "$IMAGE" . >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }
step "built: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1048576}')"

# The image's own start command, environment and health check.
entry=$(podman image inspect --format '{{range .Config.Entrypoint}}{{.}} {{end}}{{range .Config.Cmd}}{{.}} {{end}}' "$IMAGE")
workdir=$(podman image inspect --format '{{.Config.WorkingDir}}' "$IMAGE")
mapfile -t image_env < <(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE" | sed '/^$/d')
health=$(podman image inspect --format '{{range .Config.Healthcheck.Test}}{{.}} {{end}}' "$IMAGE" | sed 's/^CMD //')
[ -n "$health" ] || { echo "container-test: the image has no HEALTHCHECK" >&2; exit 1; }

mounted=$(podman image mount "$IMAGE")
mkdir -p "$work/data"
mount -t proc proc "$mounted/proc"
mount --rbind /dev "$mounted/dev"
mount --bind "$work/data" "$mounted/var/lib/portcullis"
mount -t tmpfs tmpfs "$mounted/tmp"
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
in_image() { ip netns exec "$NS" chroot "$mounted" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${image_env[@]}" HOME=/root sh -c "cd $workdir && exec \"\$@\"" sh "$@"; }

step "starting the image's entrypoint: $entry"
# shellcheck disable=SC2086 # the entrypoint's words
in_image $entry >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  grep -q '"msg":"listening"' "$work/server.log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.2
done
grep -q '"msg":"listening"' "$work/server.log" || { cat "$work/server.log" >&2; echo "container-test: the server did not start" >&2; exit 1; }

step "HEALTHCHECK: $health"
# shellcheck disable=SC2086
in_image $health

step "banning 192.0.2.100 through the containerized server with the CLI (admin bundle from the volume)"
cli() { ip netns exec "$NS" node server/bin/portcullis "$@" --address 127.0.0.1:50051 --bundle "$work/data/pki/clients/admin"; }
cli sets create blocked --type hash:ip --timeout 600 >/dev/null
cli rules add INPUT --match-set blocked -j DROP >/dev/null
cli ban 192.0.2.100 --set blocked --timeout 300
ip netns exec "$NS" ipset test blocked 192.0.2.100 2>/dev/null || { echo "container-test: the kernel does not have the ban" >&2; exit 1; }
ip netns exec "$NS" iptables -S INPUT | grep -q -- '--match-set blocked src -j DROP' || { echo "container-test: the DROP rule is missing" >&2; exit 1; }
step "the web console built into the image, over mTLS at https://127.0.0.1:8443/console/"
bundle="$work/data/pki/clients/admin"
headers=$(ip netns exec "$NS" curl -sS -o /dev/null -D - --cacert "$bundle/ca.crt" --cert "$bundle/client.crt" --key "$bundle/client.key" https://127.0.0.1:8443/console/)
if ! grep -q '^HTTP/[0-9.]* 200' <<<"$headers" || ! grep -qi "^content-security-policy: default-src 'self'" <<<"$headers"; then
  echo "$headers" >&2
  echo "container-test: the image does not serve the console (is console/dist built by scripts/build.mjs?)" >&2
  exit 1
fi
step "ok: the image builds, starts, is healthy, bans (the kernel has the entry and the DROP rule) and serves the console"
