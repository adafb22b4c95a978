#!/bin/sh
# Count the instructions of one verification decision against those of the
# bare signature check, with callgrind: unlike time, the count does not
# depend on what else the machine runs.
# Usage: scripts/callgrind-pipeline.sh   (N1=100 N2=300 by default)
#
# Each benchmark (verifier/bench_test.go) runs under callgrind twice, with
# N1 and N2 iterations, counting only inside the measured function
# (Verifier.Verify, or the bare check of verifiertest.Fixture.Bare); the
# difference of the two counts divided by N2 - N1 is the cost of one call,
# with the first calls' warm-up cancelled. The garbage collector is off
# (its work depends on timing, and the runtime's background threads would
# count too): the count is the decision's own work, allocations included,
# collection not; allocations per decision are reported by the benchmarks.
set -eu
cd "$(dirname "$0")/.."
n1=${N1:-100}
n2=${N2:-300}
bin=$(mktemp)
trap 'rm -f "$bin"' EXIT
# No cgo, no asynchronous preemption: callgrind stops on Go's signals.
# No RDTSCP either: valgrind 3.19 does not know the instruction, and the
# runtime's cputicks, called now and then, would die on it (SIGILL).
CGO_ENABLED=0 go test -c -o "$bin" ./verifier/

total() { # benchmark, function, iterations
	(cd verifier && GOGC=off GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind \
		--collect-atstart=no --toggle-collect="$2" --callgrind-out-file=/dev/null \
		"$bin" -test.run '^$' -test.bench "^$1\$" -test.benchtime "$3x" 2>&1) |
		awk '/Collected :/ { n = $NF } END { if (n + 0 == 0) { print "no instructions counted in " f > "/dev/stderr"; exit 1 } print n }' f="$1"
}
percall() { # benchmark, function
	a=$(total "$1" "$2" "$n1")
	b=$(total "$1" "$2" "$n2")
	awk -v a="$a" -v b="$b" -v n1="$n1" -v n2="$n2" 'BEGIN { printf "%.0f\n", (b - a) / (n2 - n1) }'
}

echo "| signature | pipeline Ir/decision | bare Ir/check | ratio |"
echo "|---|---|---|---|"
for alg in Ed25519 ES256; do
	pipe=BenchmarkPipeline
	[ "$alg" = ES256 ] && pipe=BenchmarkPipelineES256
	p=$(percall "$pipe" 'wicket/verifier.(*Verifier).Verify')
	b=$(percall "BenchmarkBare$alg" 'wicket/verifier/verifiertest.(*Fixture).Bare.func*')
	awk -v alg="$alg" -v p="$p" -v b="$b" 'BEGIN { printf "| %s | %d | %d | **%.3f** |\n", alg, p, b, p / b }'
done
