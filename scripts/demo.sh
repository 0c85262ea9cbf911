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
data=${PORTCULLIS_DATA_DIR:-./var}
mkdir -p "$data"
data=$(cd "$data" && pwd)
# The demo's own fail2ban-server, inside the namespace (the host's fail2ban, if any, is not touched): jail `dovecot`
# reads $data/demo-mail.log and bans through the Portcullis action. Append dovecot auth failures there to see it work.
conf=$data/demo-fail2ban
export PORTCULLIS_FAIL2BAN_SOCKET=${PORTCULLIS_FAIL2BAN_SOCKET:-$data/demo-fail2ban.sock}
export PORTCULLIS_FAIL2BAN_CONFIG_DIR=${PORTCULLIS_FAIL2BAN_CONFIG_DIR:-$conf}
if ! fail2ban-client -s "$PORTCULLIS_FAIL2BAN_SOCKET" ping >/dev/null 2>&1; then
  mkdir -p "$conf/filter.d" "$conf/action.d" "$conf/jail.d"
  cp /etc/fail2ban/fail2ban.conf "$conf/"
  cp /etc/fail2ban/filter.d/common.conf /etc/fail2ban/filter.d/dovecot.conf "$conf/filter.d/"
  cp server/fail2ban/action.d/portcullis.py "$conf/action.d/"
  touch "$data/demo-mail.log"
  printf '[Definition]\nlogtarget = %s\ndbfile = %s\n' "$data/demo-fail2ban.log" "$data/demo-fail2ban.sqlite3" > "$conf/fail2ban.local"
  printf '[dovecot]\nenabled = true\nbackend = polling\nfilter = dovecot\nlogpath = %s\nmaxretry = 5\nfindtime = 600\nbantime = 600\naction = portcullis.py[socket="%s"]\n' \
    "$data/demo-mail.log" "$data/fail2ban-action.sock" > "$conf/jail.local"
  ip netns exec "$netns" fail2ban-server -b -x -c "$conf" -s "$PORTCULLIS_FAIL2BAN_SOCKET" -p "$data/demo-fail2ban.pid" >/dev/null
fi
exec node server/bin/portcullis serve --netns "$netns" --data-dir "$data" "$@"
