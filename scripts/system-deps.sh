#!/usr/bin/env bash
# Installs the reference tools the tests compare against, when missing:
#   rpm      -> rpm's own rpmvercmp (rpm --eval with the rpm.vercmp lua function)
#   node     -> node's semver package (npm ci in tests/reference/node)
# dpkg is part of every Debian system. Runs apt-get only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v rpm >/dev/null || need+=(rpm)
command -v node >/dev/null || need+=(nodejs npm)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)  # execute tests: a private sshd on 127.0.0.1
command -v sudo >/dev/null || need+=(sudo)
[ -x /usr/bin/chromium ] || need+=(chromium)  # web tests: Playwright drives Debian's chromium
command -v debootstrap >/dev/null || need+=(debootstrap)  # Debian test hosts (tests/debian_hosts.py)
command -v unzstd >/dev/null || need+=(zstd)  # debian-changelog: .deb files with zstd members
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)  # local apt repositories in tests
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing reference tools: ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "error: missing reference tools (${need[*]}); install them with your package manager" >&2
    exit 1
  fi
fi
if [ -f tests/reference/node/package-lock.json ] && [ ! -d tests/reference/node/node_modules/semver ]; then
  (cd tests/reference/node && npm ci --silent --no-audit --no-fund >/dev/null)
fi
