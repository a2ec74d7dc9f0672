#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each: `make test` runs
# it briefly on every change, so a regression in a parser that the seed
# corpus already catches fails CI.
#
# The default is a count of executions, not a duration: on Go 1.26 a
# duration budget races the fuzz coordinator's deadline on a loaded machine
# and fails with a bare "context deadline exceeded" and no crasher
# (golang/go#75804, fixed in Go 1.27). A count has no deadline to race.
set -euo pipefail
fuzztime=${FUZZTIME:-100000x}
grep -rlE --include='*_test.go' '^func Fuzz' . | while read -r file; do
  pkg=./$(dirname "${file#./}")
  for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //'); do
    echo "fuzz $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
