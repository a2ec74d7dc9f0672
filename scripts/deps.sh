#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: redis-server (real Redis for
# budget tests, also run as a 3-master Cluster) and promtool (alert rule
# tests). Debian's packages; only when missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing: ${need[*]}; install them (Debian: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The Debian packages start system services; the tests run their own
# private servers on free ports, so stop the system ones where possible.
(service redis-server stop || true) >/dev/null 2>&1
(service prometheus stop || true) >/dev/null 2>&1
