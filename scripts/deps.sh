#!/usr/bin/env bash
# Installs what the test suite needs beyond Go: redis-server (real Redis for
# budget tests, also run as a 3-master Cluster) and promtool (alert rule
# tests), Debian's packages; and golangci-lint (make lint), built by the go
# command at GOLANGCI_VERSION. Each only when missing.
set -euo pipefail
lint_version=${GOLANGCI_VERSION:-v2.15.0}
lint_bin="$(go env GOPATH)/bin/golangci-lint"
if ! "$lint_bin" version 2>/dev/null | grep -q "version ${lint_version#v} "; then
  echo "installing golangci-lint $lint_version"
  go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$lint_version"
fi
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
