#!/usr/bin/env bash
# Installs Debian's Node.js and npm for the client's unit tests (`node --test`) and for `npm ci`
# (axe-core, pinned in package.json, for the browser tests). CI runs as root; elsewhere sudo is used.
set -euo pipefail
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Another install (a second `make test`, a package manager) may hold the dpkg lock: wait for it.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq nodejs npm >/dev/null
command -v node
