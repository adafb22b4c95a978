#!/bin/sh
# The Wicket demo: make fresh demo trust data with wicketctl, then run a
# gate on simulated hardware and feed it sample codes on standard input.
# Usage: scripts/demo.sh BINDIR
set -eu
bin=$(cd "${1:-bin}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/wicket-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"
ctl() { "$bin/wicketctl" "$@"; }

echo "== issuing authority: keys, key set, vouchers, revocations (in $dir)"
ctl keygen -out root >/dev/null
ctl keygen -alg EdDSA -out gx >/dev/null
ctl keygen -alg ES256 -out gd >/dev/null
ctl keyset -root root.key -version 1 -out keyset.cose \
	-key "pub=gx.pub,issuer=GX,not-before=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)" \
	-key "pub=gd.pub,issuer=GD,kinds=printed"
ctl pseudonym -new -secret pseudo.secret >/dev/null
sub() { ctl pseudonym -secret pseudo.secret -id-number "$1"; }
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ago() { date -u -d "-$1" +%Y-%m-%dT%H:%M:%SZ; }
issue() { ctl issue -key gx.key -issuer GX "$@"; }

adult=$(issue -kind dynamic -id-number 450100199001011234 -pseudonym-secret pseudo.secret -name 李小龙 -test "naat:negative:$(ago 20hours)" -doses 3)
child=$(issue -kind printed -class child -id-number 450100201501011234 -pseudonym-secret pseudo.secret -name 王小明)
feverish=$(issue -kind dynamic -id-number 450100198503031234 -pseudonym-secret pseudo.secret -name 周杰)
elder=$(ctl issue -key gd.key -issuer GD -kind printed -class elderly -id-number 440100195001011234 -pseudonym-secret pseudo.secret -name 陈大妈)
yellow=$(issue -kind watch -class child -colour yellow -id-number 450100201601011234 -pseudonym-secret pseudo.secret)
redsub=$(sub 450100198801011234)
turned_red=$(issue -kind printed -subject "$redsub" -issued-at "$(ago 2hours)" -name 赵*)
revoked_json=$(issue -kind printed -id-number 450100197001011234 -pseudonym-secret pseudo.secret -json)
revoked=$(echo "$revoked_json" | sed 's/.*"text":"\([^"]*\)".*/\1/')
revoked_id=$(echo "$revoked_json" | sed 's/.*"voucher_id":"\([^"]*\)".*/\1/')
expired=$(issue -kind dynamic -id-number 450100199001011234 -pseudonym-secret pseudo.secret -issued-at "$(ago 20minutes)")
forged=$(echo "$adult" | sed 's/.$/0/')

ctl revoke -root root.key -state authority-state.json -snapshot -yes -voucher-id "$revoked_id" -out status-1.cose >/dev/null
ctl override -root root.key -state authority-state.json -subject "$redsub" -colour red -at "$(ago 1hour)" -out status-2.cose >/dev/null
cp "$root/configs/demo.yaml" wicketd.yaml
sed -i 's/batches: \[status-1.cose\]/batches: [status-1.cose, status-2.cose]/' wicketd.yaml

echo "== gate DEMO-G01: scanning"
{
	echo "$adult"
	echo "$adult"           # held in front of the reader: hold-off, no second decision
	echo "$child"
	echo "$feverish"        # a green code, but the thermometer reads 38.4 °C
	echo "$elder"
	echo "$yellow"
	echo "$turned_red"
	echo "$revoked"
	echo "$expired"
	echo "$forged"
	echo "https://example.com/a-payment-code"
} | "$bin/wicketd" run -config wicketd.yaml
echo "== gate status after the run"
"$bin/wicketd" status -config wicketd.yaml
