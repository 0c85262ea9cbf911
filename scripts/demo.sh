#!/usr/bin/env bash
# Installs what is missing and starts Portcullis as a safe demo: every kernel command runs inside its own network
# namespace (portcullis-demo), so the host's firewall is never touched. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
netns=${PORTCULLIS_NETNS:-portcullis-demo}
if ! ip netns list | grep -qx "$netns\( .*\)\?"; then
  ip netns add "$netns"
  ip -n "$netns" link set lo up
fi
# The host's own fail2ban (if any) is not the demo's: jails are reached only through a socket the user points to.
export PORTCULLIS_FAIL2BAN_SOCKET=${PORTCULLIS_FAIL2BAN_SOCKET:-$PWD/var/demo-fail2ban.sock}
exec node server/bin/portcullis serve --netns "$netns" --data-dir "${PORTCULLIS_DATA_DIR:-./var}" "$@"
