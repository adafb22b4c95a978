#!/bin/sh
# Run every fuzz target of the module for a set time each and print a
# markdown table of executions reached.
# Usage: scripts/fuzz.sh [DURATION] [REPORT.md]   (default 30s, no report)
# New crashers are written by go test to the package's testdata/fuzz/ and
# fail the run; commit them: they become regression tests that every
# `go test` runs.
set -eu
t=${1:-30s}
report=${2:-}
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
rows=""
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "== $pkg $target ($t)"
		result=ok
		if ! go test -run '^$' -fuzz "^$target\$" -fuzztime "$t" "$pkg" >"$log" 2>&1; then
			result=FAILED
			status=1
		fi
		tail -3 "$log"
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
		corpus=$(grep -o 'total: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
		rows="$rows| ${pkg#wicket/} | $target | ${execs:-?} | ${corpus:-?} | $result |
"
	done
done
table="| package | target | executions | corpus entries | result |
|---|---|---|---|---|
$rows"
printf '%s' "$table"
if [ -n "$report" ]; then
	{
		echo "Fuzz campaign: \`scripts/fuzz.sh $t\` on $(date -u +%Y-%m-%d), $(go version | cut -d' ' -f3), $(nproc) cores."
		echo
		printf '%s' "$table"
	} >"$report"
fi
exit $status
