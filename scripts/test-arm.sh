#!/bin/bash
# Runs every test for armv7 and arm64 under qemu-user.
#
# qemu-user (Debian bookworm ships 7.2) now and then deadlocks a
# multi-threaded guest that forks: the Go test binary then waits forever in
# syscall.forkExec for a child that never reaches exec. Tests that start
# mosquitto, nats-server or wicketd hit it about once in a few hundred
# starts. A package whose timeout dump shows that signature, and only that
# one, is run a second time; any other failure fails at once.
#
# Usage: scripts/test-arm.sh [timeout per package, default 4m]
set -uo pipefail
cd "$(dirname "$0")/.."
timeout=${1:-4m}
QEMU_ARM=${QEMU_ARM:-qemu-arm-static}
QEMU_ARM64=${QEMU_ARM64:-qemu-aarch64-static}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# qemu_hang prints the failed packages of log $1 whose output holds a test
# timeout inside syscall.forkExec, and fails when any failed package does
# not.
qemu_hang() {
	awk '
		/^(ok|FAIL|\?)[ \t]+wicket\// {
			if ($1 == "FAIL") {
				if (block ~ /panic: test timed out/ && block ~ /syscall\.forkExec/) print $2
				else other = 1
			}
			block = ""
			next
		}
		{ block = block "\n" $0 }
		END { exit other }
	' "$1"
}

run() { # arch label, qemu, env...
	local name=$1 qemu=$2
	shift 2
	echo "== $name under $qemu"
	env "$@" WICKET_CRASH_EXEC="$qemu" go test -count=1 -timeout "$timeout" -exec "$qemu" ./... 2>&1 | tee "$log"
	[ "${PIPESTATUS[0]}" -eq 0 ] && return 0
	local pkgs
	if ! pkgs=$(qemu_hang "$log") || [ -z "$pkgs" ]; then
		return 1
	fi
	echo "== $name: qemu-user fork deadlock in $(echo $pkgs); running those once more"
	env "$@" WICKET_CRASH_EXEC="$qemu" go test -count=1 -timeout "$timeout" -exec "$qemu" $pkgs
}

run armv7 "$QEMU_ARM" GOARCH=arm GOARM=7 || exit 1
run arm64 "$QEMU_ARM64" GOARCH=arm64 || exit 1
