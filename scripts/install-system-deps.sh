#!/usr/bin/env bash
# Install, with apt, what building the virtualenv needs and the machine lacks:
# Python 3.11 with venv and headers, a C compiler, pkg-config and the MariaDB
# client headers (mysqlclient has no Linux wheel and compiles against them);
# and Chromium, the headless browser the Billing page's tests drive.
set -euo pipefail
PYTHON=${1:-python3.11}
need=()

command -v "$PYTHON" >/dev/null 2>&1 || need+=(python3.11 python3.11-venv python3.11-dev)
if command -v "$PYTHON" >/dev/null 2>&1; then
  "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3.11-venv)
  "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || need+=(python3.11-dev)
fi
command -v gcc >/dev/null 2>&1 || need+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
{ pkg-config --exists mariadb || pkg-config --exists mysqlclient; } 2>/dev/null || need+=(libmariadb-dev)
{ command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 || need+=(chromium)

[ ${#need[@]} -eq 0 ] && exit 0
echo "Installing system packages: ${need[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not found: install ${need[*]} (or your system's equivalents) by hand, then run make again." >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
