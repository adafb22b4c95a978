#!/bin/sh
# Compare QR decode rate and speed of decoder/qr with zxing-cpp
# (ZXingReader, Debian zxing-cpp-tools) and zbar (zbarimg, Debian
# zbar-tools) on the photo corpus and on rendered vouchers, and write the
# Markdown section to docs/qr-bench.md (or $1). Tools that are not
# installed are reported as such. Usage: scripts/qrbench.sh [OUT]
set -eu
cd "$(dirname "$0")/.."
out=${1:-docs/qr-bench.md}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
WICKET_QR_COMPARE=1 WICKET_QR_REPORT=$out \
	${GO:-go} test -count=1 -v -timeout 20m -run '^TestCompare$' ./decoder/qr | grep -E '^\s+compare_test|^(ok|FAIL|---)'
echo "wrote $out"
