#!/bin/sh
# Revocation lookups on a large set under a memory limit, as on a 512 MB
# board (docs/revocations.md §9). Needs root: it creates a memory cgroup
# and drops the page cache.
#
# Usage: sudo scripts/revset-512m.sh
#
#	WICKET_REVSET_DIR   fixture directory, kept for the next run
#	                    (/var/tmp/wicket-revset-80m: 1.5 GB, plus 1.8 GB
#	                    of temporary runs while it is built)
#	WICKET_REVSET_N     entries (80000000)
#	LIMIT               the memory limit (512M)
#	NICE                niceness of the benchmark (0); -20 keeps other
#	                    work on a shared machine from preempting it
#	WICKET_REVSET_LOOKUPS, WICKET_REVSET_REBUILD: see sync/revset/limit_test.go
#
# The fixture is built outside the limit (the snapshot build is not what
# is measured). The benchmark runs in a new memory cgroup with the limit
# (cgroup v2: a child of /sys/fs/cgroup; v1: a child of this shell's memory
# cgroup), with the page cache dropped first; the cgroup is removed after.
set -eu
cd "$(dirname "$0")/.."
dir=${WICKET_REVSET_DIR:-/var/tmp/wicket-revset-80m}
n=${WICKET_REVSET_N:-80000000}
limit=${LIMIT:-512M}
nice=${NICE:-0}
export WICKET_REVSET_DIR="$dir" WICKET_REVSET_N="$n"

tmp=$(mktemp -d)
cg=
cleanup() {
	[ -z "$cg" ] || rmdir "$cg" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go test -c -o "$tmp/revset.test" ./sync/revset

echo "== fixture: $n entries in $dir"
"$tmp/revset.test" -test.run '^TestLimitedFixture$' -test.v -test.timeout 90m
sync

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	grep -qw memory /sys/fs/cgroup/cgroup.subtree_control || {
		echo "the memory controller is not enabled for children of /sys/fs/cgroup" >&2
		exit 1
	}
	cg=/sys/fs/cgroup/wicket-revset-$$
	mkdir "$cg"
	echo "$limit" >"$cg/memory.max"
	[ ! -f "$cg/memory.swap.max" ] || echo 0 >"$cg/memory.swap.max"
else
	own=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
	cg=/sys/fs/cgroup/memory$own/wicket-revset-$$
	mkdir "$cg"
	echo "$limit" >"$cg/memory.limit_in_bytes"
	[ ! -f "$cg/memory.memsw.limit_in_bytes" ] || echo "$limit" >"$cg/memory.memsw.limit_in_bytes"
fi
echo "== benchmark in $cg, limit $limit, nice $nice, page cache dropped"
sh -c 'echo $$ >"$1/cgroup.procs" && sync && echo 3 >/proc/sys/vm/drop_caches && exec nice -n "$3" "$2" -test.run "^$" -test.bench "^BenchmarkLookupUnderLimit$" -test.benchtime 1x -test.v -test.timeout 90m' sh "$cg" "$tmp/revset.test" "$nice"
