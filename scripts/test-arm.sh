#!/bin/bash
# Runs every test for armv7 and arm64 under qemu-user.
#
# qemu-user (Debian bookworm ships 7.2) now and then deadlocks a
# multi-threaded guest that forks: the Go test binary then waits forever in
# syscall.forkExec for a child that never reaches exec. Tests that start
# mosquitto, nats-server or wicketd hit it about once in a few hundred
# starts. Emulation also stretches timings that tests of sockets and
# processes depend on. So a package that fails is run a second time, and
# named in a "rerun" line either way; a package that fails twice fails the
# run. Code that is wrong on ARM fails both times: the 32-bit CBOR bug the
# hostile corpus found did. The native suite (make test) never reruns.
#
# Usage: scripts/test-arm.sh [timeout per package, default 4m]
set -uo pipefail
cd "$(dirname "$0")/.."
timeout=${1:-4m}
QEMU_ARM=${QEMU_ARM:-qemu-arm-static}
QEMU_ARM64=${QEMU_ARM64:-qemu-aarch64-static}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# failed prints the packages that failed in log $1.
failed() {
	awk '/^FAIL[ \t]+wicket\// { print $2 }' "$1"
}

run() { # arch label, qemu, env...
	local name=$1 qemu=$2
	shift 2
	echo "== $name under $qemu"
	env "$@" WICKET_CRASH_EXEC="$qemu" go test -count=1 -timeout "$timeout" -exec "$qemu" ./... 2>&1 | tee "$log"
	[ "${PIPESTATUS[0]}" -eq 0 ] && return 0
	local pkgs
	pkgs=$(failed "$log")
	if [ -z "$pkgs" ]; then
		return 1 # a build failure, or a failure outside a package
	fi
	if grep -q 'syscall\.forkExec' "$log"; then
		echo "== $name: the log shows a test binary stuck in syscall.forkExec (qemu-user fork deadlock)"
	fi
	echo "== $name: rerun once under emulation: $(echo $pkgs)"
	env "$@" WICKET_CRASH_EXEC="$qemu" go test -count=1 -timeout "$timeout" -exec "$qemu" $pkgs
}

run armv7 "$QEMU_ARM" GOARCH=arm GOARM=7 || exit 1
run arm64 "$QEMU_ARM64" GOARCH=arm64 || exit 1
