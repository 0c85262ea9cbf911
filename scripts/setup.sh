#!/usr/bin/env bash
# Installs what Portcullis needs on a Debian/Ubuntu machine, as root: the kernel tools it drives and its Node.js
# dependencies. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (iptables, ipset and network namespaces need it)" >&2
  exit 1
fi

# command → Debian package. stdbuf (coreutils) keeps the long-lived `ipset -` session unbuffered; fail2ban-server is
# run by the tests inside their own namespaces; prometheus and rsyslogd are real receivers for the metrics and SIEM
# tests (run by the tests on loopback, with their own configuration, never as services); chromium and NSS's certutil
# and pk12util run the console's browser tests with a client certificate; crowdsec (its Local API, `crowdsec -no-cs`,
# and cscli) and crowdsec-firewall-bouncer are run by the crowdsec feed's tests and bench with their own config dirs;
# crowdsec-custom-bouncer is the stock bouncer the bouncer API's tests point at Portcullis (run by them as a process
# with its own config; it touches no firewall).
missing=()
for pair in iptables:iptables ipset:ipset ip:iproute2 stdbuf:coreutils openssl:openssl fail2ban-server:fail2ban python3:python3 prometheus:prometheus rsyslogd:rsyslog nats-server:nats-server chromium:chromium certutil:libnss3-tools crowdsec:crowdsec crowdsec-firewall-bouncer:crowdsec-firewall-bouncer crowdsec-custom-bouncer:crowdsec-custom-bouncer; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
# fail2ban's inotify backend (what "backend = auto" picks on a Debian host); the jail benchmark's attack flow uses it.
# Asked of the Python fail2ban runs on (/usr/bin/python3), not whichever python3 comes first in PATH.
/usr/bin/python3 -c 'import pyinotify' >/dev/null 2>&1 || missing+=(python3-pyinotify)
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # Packages must not start their services here (fail2ban's would watch and firewall the host): policy-rc.d says no.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  # crowdsec's postinst registers with CrowdSec's Central API unless its credentials file exists and is not empty
  # (its documented opt-out); without internet that registration fails the install. The tests never use the CAPI.
  if [ ! -s /etc/crowdsec/online_api_credentials.yaml ]; then
    mkdir -p /etc/crowdsec
    printf '# Central API registration left out on purpose (Portcullis only runs the Local API).\n' > /etc/crowdsec/online_api_credentials.yaml
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
  # The tests and benches run crowdsec and the bouncers themselves with their own config: their packages' units are
  # not wanted at boot either (the firewall bouncer's would manage the host's own firewall).
  if command -v systemctl >/dev/null 2>&1; then
    for unit in crowdsec crowdsec-firewall-bouncer crowdsec-custom-bouncer; do
      if [[ " ${missing[*]} " == *" $unit "* ]]; then systemctl disable --quiet "$unit" 2>/dev/null || true; fi
    done
  fi
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci is reproducible from package-lock.json; allowScripts in package.json lets better-sqlite3 build its addon.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
# npm 11 can skip install scripts silently: make sure the native SQLite binding is really there.
if ! node -e 'new (require("better-sqlite3"))(":memory:").close()' 2>/dev/null; then
  echo "setup: building better-sqlite3"
  npm rebuild better-sqlite3 --foreground-scripts --loglevel=error
  node -e 'new (require("better-sqlite3"))(":memory:").close()'
fi
# The server runs from this bundle (server/bin/portcullis falls back to the sources when they are newer).
npm run --silent build
