#!/bin/sh
# Run every fuzz target of the module for a set time each.
# Usage: scripts/fuzz.sh [DURATION]   (default 30s)
# New crashers are written by go test to the package's testdata/fuzz/ and
# fail the run; commit them: they become regression tests.
set -eu
t=${1:-30s}
cd "$(dirname "$0")/.."
status=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "== $pkg $target ($t)"
		if ! go test -run '^$' -fuzz "^$target\$" -fuzztime "$t" "$pkg" 2>&1 | tail -3; then
			status=1
		fi
	done
done
exit $status
