#!/bin/sh
# Run the public EU DCC conformance cases (a checkout of the dgc-testdata
# repository of eu-digital-green-certificates; nothing of it is kept in
# this repository) through the HC1 profile and print the agreement
# figures: signature verdict, cases expected valid that reach a decision,
# key usage, schema-invalid cases refused by the claims mapping.
# Usage: scripts/dcc-conformance.sh /path/to/dgc-testdata [-v]
#   -v also lists every disagreement and every case's reason.
set -eu
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 /path/to/dgc-testdata [-v]" >&2
	exit 2
fi
data=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
if [ "${2:-}" = "-v" ]; then
	WICKET_DGC_TESTDATA=$data WICKET_DGC_VERBOSE=1 go test -count=1 -run '^TestDGCTestdata$' -v ./verifier/
else
	WICKET_DGC_TESTDATA=$data go test -count=1 -run '^TestDGCTestdata$' -v ./verifier/ | grep -v '^    \|^=== \|^--- \|^PASS\|^ok '
fi
