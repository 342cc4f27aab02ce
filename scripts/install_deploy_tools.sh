#!/usr/bin/env bash
# Installs what the production-layout tests (tests/deploy) run: Debian's nginx, which they start
# as the current user with a private prefix and the shipped site, and systemd-analyze (package
# systemd), which verifies the shipped units. Only what is missing; CI runs as root, elsewhere
# sudo is used.
set -euo pipefail
packages=()
if ! { [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; }; then packages+=(nginx); fi
if ! command -v systemd-analyze >/dev/null 2>&1; then packages+=(systemd); fi
if [ ${#packages[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Another install (a second `make test`, a package manager) may hold the dpkg lock: wait for it.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${packages[@]}" >/dev/null
test -x /usr/sbin/nginx
command -v systemd-analyze
