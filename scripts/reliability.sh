#!/bin/sh
# The reliability and security suite: every long run whose results are in
# docs/RELIABILITY.md. Each step's output goes to $OUT/<step>.log and a
# summary line to stdout; the script fails if any step fails.
#
# Usage: scripts/reliability.sh [step...]
#   steps: hostile fuzz crash network clock devices security soak (default: all)
# Environment: FUZZTIME (30s per target), CRASH_CYCLES (500), SOAK (30m),
#   OUT (reliability-results).
set -u
cd "$(dirname "$0")/.."
out=${OUT:-reliability-results}
mkdir -p "$out"
fuzztime=${FUZZTIME:-30s}
cycles=${CRASH_CYCLES:-500}
soak=${SOAK:-30m}
steps=${*:-hostile fuzz crash network clock devices security soak}
failed=0

step() { # name, command...
	name=$1
	shift
	start=$(date +%s)
	if "$@" >"$out/$name.log" 2>&1; then
		result=ok
	else
		result=FAILED
		failed=1
	fi
	printf '%-9s %-6s %5ds  %s\n' "$name" "$result" $(($(date +%s) - start)) "$*"
}

for s in $steps; do
	case $s in
	hostile)
		step hostile go test -count=1 -v -run 'TestCorpus' ./verifier/hostile/ ;;
	fuzz)
		step fuzz ./scripts/fuzz.sh "$fuzztime" "$out/fuzz.md" ;;
	crash)
		step crash make crash CRASH_CYCLES="$cycles" ;;
	network)
		step network go test -count=1 -v -run 'TestNetworkFaults|TestProxy' ./sync/fleetsim/ ./sync/mqtttest/ ;;
	clock)
		step clock go test -count=1 -v -run 'TestClockFaults|TestClockFloorAcrossRestart' ./cmd/wicketd/ ;;
	devices)
		step devices go test -count=1 -v -run 'TestSerialGarbageAtWrongBaud|TestSerialUnplugReplug|TestTurnstileRelayDeadThenBack|TestTurnstileGPIOError|TestRelayFaultDuringAllowedCode|TestMLX90614|TestLineSensorSerial|TestMonitorFaultAndStale' ./device/... ./cmd/wicketd/loop/ ;;
	security)
		step security sh -c 'go test -count=1 -v -run "TestTLSClientCertificate|TestPrivacy|TestCheckPermissions|TestRunRefusesOpenTrustFiles" ./sync/mqttsync/ ./cmd/wicketd/... &&
			systemd-analyze security --offline=true --threshold=20 systemd/wicketd.service | tail -1' ;;
	soak)
		step soak env WICKET_SOAK="$soak" WICKET_SOAK_REPORT="$out/soak.md" go test -count=1 -timeout 3h -v -run TestSoak ./cmd/wicketd/ ;;
	*)
		echo "unknown step $s" >&2
		exit 2 ;;
	esac
done
exit $failed
