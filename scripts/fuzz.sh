#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 10s):
# `make test` runs it briefly on every change, so a regression in a parser
# that the seed corpus already catches fails CI.
set -euo pipefail
fuzztime=${FUZZTIME:-10s}
grep -rlE --include='*_test.go' '^func Fuzz' . | while read -r file; do
  pkg=./$(dirname "${file#./}")
  for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //'); do
    echo "fuzz $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
