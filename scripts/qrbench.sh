#!/bin/sh
# Compare QR decode rate and speed of decoder/qr with zxing-cpp
# (ZXingReader, Debian zxing-cpp-tools) and zbar (zbarimg, Debian
# zbar-tools) on the photo corpus, on rendered vouchers, and on freshly
# issued random vouchers in many placements plus frames without a code,
# and write the Markdown section to docs/qr-bench.md (or $1). Tools that
# are not installed are reported as such.
# Usage: scripts/qrbench.sh [OUT]
# Environment: WICKET_QR_SEED repeats a fresh-voucher run (a new seed is
# drawn otherwise); WICKET_QR_VOUCHERS (200), WICKET_QR_FRAMES (frames of
# each voucher in each placement, 1) and WICKET_QR_EMPTY (frames without a
# code, 120) size it; WICKET_QR_DIR keeps the frames for another run;
# WICKET_QR_PLACES (names separated by commas) keeps only those
# placements, for development runs.
set -eu
cd "$(dirname "$0")/.."
out=${1:-docs/qr-bench.md}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
WICKET_QR_COMPARE=1 WICKET_QR_REPORT=$out \
	${GO:-go} test -count=1 -v -timeout 20m -run '^TestCompare$' ./decoder/qr | grep -E '^\s+compare_test|^(ok|FAIL|---)'
WICKET_QR_FRESH=1 WICKET_QR_FRESH_REPORT=$fresh \
	${GO:-go} test -count=1 -v -timeout 60m -run '^TestFreshBench$' ./decoder/qr | grep -E '^\s+freshbench_test.go:[0-9]+: seed|^(ok|FAIL|---)'
cat "$fresh" >>"$out"
echo "wrote $out"
