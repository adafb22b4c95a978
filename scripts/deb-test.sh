#!/bin/bash
# shellcheck disable=SC2016 # dpkg-query formats: ${Status} is dpkg's, not the shell's
# Tests the amd64 packages wicket and wicket-authority: lintian, then in a
# minimal Debian bookworm root: install, files, owners and modes, man pages
# listing every command, the wicket user and its groups, the conffile, the
# units (systemd-analyze verify), upgrade with a locally changed conffile
# keeping the store, remove, purge keeping a store until told
# (WICKET_PURGE_RECORDS=yes), and the authority package beside the gate.
# Prints a summary and the time each stage took; exits 1 on any failure.
#
# The root is made once with debootstrap and cached; each run works on a
# copy. systemd does not run in the chroot: the maintainer scripts' calls to
# deb-systemd-invoke are recorded by a stub instead, with /run/systemd/system
# present so the scripts take their systemd branch.
#
# Usage: scripts/deb-test.sh          (as root: debootstrap, chroot)
# Environment:
#   WICKET_DEBROOT_CACHE  where the pristine root is kept
#                         (default /var/cache/wicket-deb-test)
#   DEBIAN_MIRROR         default http://deb.debian.org/debian
#   KEEP=1                keep the work directory for inspection
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

CACHE=${WICKET_DEBROOT_CACHE:-/var/cache/wicket-deb-test}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm

if [ "$(id -u)" != 0 ]; then
	echo "deb-test.sh: needs root (debootstrap, chroot)" >&2
	exit 2
fi

pass=0
fail=0
failed=()
ok() { pass=$((pass + 1)); printf '  ok    %s\n' "$1"; }
bad() { fail=$((fail + 1)); failed+=("$1"); printf '  FAIL  %s%s\n' "$1" "${2:+: $2}"; }
# check NAME CMD...: ok when CMD succeeds.
check() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$(printf '%s' "$out" | tail -3 | tr '\n' ' ')"; fi
}
# want NAME GOT WANT: ok when equal.
want() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}
# Stage times, for the summary.
t_start=$(date +%s)
t_last=$t_start
stage=
times=()
lap() {
	local now
	now=$(date +%s)
	[ -z "$stage" ] || times+=("$(printf '%5ds  %s' $((now - t_last)) "$stage")")
	t_last=$now
}
step() {
	lap
	stage=$1
	printf '\n== %s\n' "$1"
}

work=$(mktemp -d /tmp/wicket-deb-test.XXXXXX)
root=$work/root
cleanup() {
	if mountpoint -q "$root/proc" 2>/dev/null; then umount -l "$root/proc"; fi
	if [ "${KEEP:-}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
in_root() { chroot "$root" "$@"; }

# --- the root -------------------------------------------------------------
step "root: Debian $SUITE"
# What a gate has beyond minbase: systemd, and the package's dependencies.
INCLUDE=systemd,adduser,passwd,procps
pristine=$CACHE/$SUITE-amd64
if [ -x "$pristine/usr/bin/dpkg" ] && [ "$(cat "$pristine/.wicket-include" 2>/dev/null)" = "$INCLUDE" ]; then
	echo "reusing $pristine"
else
	if ! command -v debootstrap >/dev/null; then
		echo "installing debootstrap"
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }; then
			echo "deb-test.sh: cannot install debootstrap" >&2
			exit 2
		fi
	fi
	mkdir -p "$CACHE"
	rm -rf "$pristine.tmp" "$pristine"
	echo "debootstrap $SUITE into $pristine (a few minutes)"
	if ! debootstrap --variant=minbase --include="$INCLUDE" --arch=amd64 \
		"$SUITE" "$pristine.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
		tail -5 "$CACHE/debootstrap.log" >&2
		echo "deb-test.sh: debootstrap failed (network to $MIRROR?); log: $CACHE/debootstrap.log" >&2
		exit 2
	fi
	echo "$INCLUDE" >"$pristine.tmp/.wicket-include"
	mv "$pristine.tmp" "$pristine"
fi
cp -a "$pristine" "$root"
mount -t proc proc "$root/proc"
# No daemon starts in a chroot; the stub records what the scripts ask.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/run/systemd/system"
printf '#!/bin/sh\necho "$*" >>/var/log/invoke.log\n' >"$root/usr/bin/deb-systemd-invoke"
chmod 0755 "$root/usr/bin/deb-systemd-invoke"
invoked() { cat "$root/var/log/invoke.log" 2>/dev/null; : >"$root/var/log/invoke.log"; }

# --- two builds: v1, and v2 with a higher version and a changed conffile --
step "build"
v1=1.0.0~test1
v2=1.0.0~test2
printf '%s\n# Changed in %s.\n' "$(cat configs/wicketd.yaml)" "$v2" >"$work/wicketd-v2.yaml"
if ! OUT=$work/v1 DEB_VERSION=$v1 scripts/deb.sh amd64 ||
	! OUT=$work/v2 DEB_VERSION=$v2 CONFIG=$work/wicketd-v2.yaml scripts/deb.sh amd64; then
	echo "deb-test.sh: build failed" >&2
	exit 1
fi
cp "$work"/v1/*.deb "$work"/v2/*.deb "$root/tmp/"

step "lintian"
if ! command -v lintian >/dev/null; then
	echo "installing lintian"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lintian >/dev/null
fi
contact=$(sed -n 's/^Upstream-Contact: //p' packaging/copyright)
for deb in "$work/v1/wicket_${v1}_amd64.deb" "$work/v1/wicket-authority_${v1}_amd64.deb"; do
	check "lintian $(basename "$deb")" lintian --fail-on error,warning "$deb"
	want "maintainer $(basename "$deb")" "$(dpkg-deb -f "$deb" Maintainer)" "$contact"
done
if DEB_MAINTAINER='Wicket maintainers <maintainers@wicket.invalid>' OUT=$work/reserved scripts/deb.sh amd64 >/dev/null 2>&1; then
	bad "deb.sh refuses a reserved maintainer address" "it built with maintainers@wicket.invalid"
else
	ok "deb.sh refuses a reserved maintainer address"
fi

# stat_of PATH: owner:group mode inside the root.
stat_of() { in_root stat -c '%U:%G %a' "$1" 2>&1; }

# --- install --------------------------------------------------------------
step "install $v1"
check "dpkg -i" in_root dpkg -i "/tmp/wicket_${v1}_amd64.deb"
want "status" "$(in_root dpkg-query -W -f='${Status} ${Version}' wicket 2>&1)" "install ok installed $v1"
want "/usr/bin/wicketd" "$(stat_of /usr/bin/wicketd)" "root:root 755"
check "no wicketctl (signing tools) on a gate" test ! -e "$root/usr/bin/wicketctl"
want "/etc/wicket" "$(stat_of /etc/wicket)" "root:wicket 750"
want "/etc/wicket/wicketd.yaml" "$(stat_of /etc/wicket/wicketd.yaml)" "root:wicket 640"
want "/var/lib/wicket" "$(stat_of /var/lib/wicket)" "wicket:wicket 750"
want "unit file" "$(stat_of /lib/systemd/system/wicketd.service)" "root:root 644"
check "config is configs/wicketd.yaml" cmp "$root/etc/wicket/wicketd.yaml" configs/wicketd.yaml
check "wicketd runs" in_root /usr/bin/wicketd version
want "man page" "$(stat_of /usr/share/man/man8/wicketd.8.gz)" "root:root 644"
# man_lists PAGE BINARY: every command BINARY -h lists has a section.
man_lists() {
	local cmd missing=
	for cmd in $("$2" -h 2>&1 | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
		zcat "$1" | grep -qx "\.SS $cmd" || missing="$missing $cmd"
	done
	[ -z "$missing" ] || { echo "not in $1:$missing"; return 1; }
}
check "man page lists every command" man_lists "$root/usr/share/man/man8/wicketd.8.gz" "$work/v1/gen/host/wicketd"
check "copyright (DEP-5, Apache-2.0)" grep -q '^License: Apache-2.0$' "$root/usr/share/doc/wicket/copyright"
want "changelog" "$(zcat "$root/usr/share/doc/wicket/changelog.gz" | head -1)" "wicket ($v1) unstable; urgency=medium"
want "recommends a CJK font" "$(in_root dpkg-query -W -f='${Recommends}' wicket)" "fonts-wqy-microhei | fonts-noto-cjk"
conffiles=$(in_root dpkg-query -W -f='${Conffiles}' wicket)
check "conffile marked" grep -q '^ /etc/wicket/wicketd.yaml [0-9a-f]\{32\}$' <<<"$conffiles"

IFS=: read -r _ _ uid _ _ home shell <<<"$(in_root getent passwd wicket)"
check "user wicket exists" test -n "$uid"
check "user is a system user (uid $uid)" test "${uid:-1000}" -lt 1000
want "home" "$home" /var/lib/wicket
want "shell" "$shell" /usr/sbin/nologin
groups=$(in_root id -nG wicket 2>&1)
for g in wicket gpio i2c dialout video; do
	check "in group $g" grep -qw "$g" <<<"$groups"
done
check "login locked (no password)" grep -q '^wicket:[!*]' "$root/etc/shadow"
check "unit enabled" test -L "$root/etc/systemd/system/multi-user.target.wants/wicketd.service"
want "not started (no keys)" "$(invoked)" ""

# systemd-analyze verify: inside the root first (systemd is installed there,
# not running), else on the host against the root.
if out=$(in_root systemd-analyze verify /lib/systemd/system/wicketd.service 2>&1); then
	ok "systemd-analyze verify (in the root)"
elif out2=$(systemd-analyze verify --root="$root" /lib/systemd/system/wicketd.service 2>&1); then
	ok "systemd-analyze verify --root (host)"
else
	bad "systemd-analyze verify" "$(printf '%s\n%s' "$out" "$out2" | tail -4 | tr '\n' ' ')"
fi
[ -z "${out:-}" ] || printf '        %s\n' "$out"

# --- upgrade with a locally changed conffile ---------------------------------
step "upgrade to $v2 (conffile changed locally and in the package)"
printf '# local edit\n' >>"$root/etc/wicket/wicketd.yaml"
sum_local=$(md5sum <"$root/etc/wicket/wicketd.yaml")
echo state >"$root/var/lib/wicket/wicket.db"
in_root chown wicket:wicket /var/lib/wicket/wicket.db
check "dpkg -i (confold)" in_root dpkg --force-confdef --force-confold -i "/tmp/wicket_${v2}_amd64.deb"
want "status" "$(in_root dpkg-query -W -f='${Status} ${Version}' wicket 2>&1)" "install ok installed $v2"
want "local conffile kept" "$(md5sum <"$root/etc/wicket/wicketd.yaml")" "$sum_local"
check "new conffile beside it (.dpkg-dist)" cmp "$root/etc/wicket/wicketd.yaml.dpkg-dist" "$work/wicketd-v2.yaml"
want "/etc/wicket after upgrade" "$(stat_of /etc/wicket)" "root:wicket 750"
want "wicketd.yaml after upgrade" "$(stat_of /etc/wicket/wicketd.yaml)" "root:wicket 640"
want "/var/lib/wicket after upgrade" "$(stat_of /var/lib/wicket)" "wicket:wicket 750"
want "state kept" "$(cat "$root/var/lib/wicket/wicket.db")" state
check "still enabled" test -L "$root/etc/systemd/system/multi-user.target.wants/wicketd.service"
want "restarted if running" "$(invoked)" "try-restart wicketd.service"

step "fresh $v1, upgrade to $v2 (conffile not changed locally: replaced)"
rm -f "$root/etc/wicket/wicketd.yaml.dpkg-dist"
in_root dpkg -P wicket >/dev/null 2>&1
invoked >/dev/null
in_root dpkg -i "/tmp/wicket_${v1}_amd64.deb" >/dev/null 2>&1
invoked >/dev/null
check "dpkg -i (no prompt)" in_root dpkg -i "/tmp/wicket_${v2}_amd64.deb" </dev/null
check "packaged conffile installed" cmp "$root/etc/wicket/wicketd.yaml" "$work/wicketd-v2.yaml"
want "wicketd.yaml owner and mode" "$(stat_of /etc/wicket/wicketd.yaml)" "root:wicket 640"
invoked >/dev/null

# --- remove -----------------------------------------------------------------
step "remove"
echo state >"$root/var/lib/wicket/wicket.db"
check "dpkg -r" in_root dpkg -r wicket
want "status" "$(in_root dpkg-query -W -f='${Status}' wicket 2>&1)" "deinstall ok config-files"
want "stopped" "$(invoked)" "stop wicketd.service"
check "binaries gone" test ! -e "$root/usr/bin/wicketd" -a ! -e "$root/usr/bin/wicketctl"
check "unit gone" test ! -e "$root/lib/systemd/system/wicketd.service"
check "unit disabled" test ! -L "$root/etc/systemd/system/multi-user.target.wants/wicketd.service"
check "config kept" test -f "$root/etc/wicket/wicketd.yaml"
want "/etc/wicket kept" "$(stat_of /etc/wicket)" "root:wicket 750"
want "state kept" "$(cat "$root/var/lib/wicket/wicket.db" 2>&1)" state
check "user kept" in_root getent passwd wicket

# --- reinstall after remove, then purge -----------------------------------------
step "reinstall after remove"
check "dpkg -i" in_root dpkg -i "/tmp/wicket_${v2}_amd64.deb"
check "enabled again" test -L "$root/etc/systemd/system/multi-user.target.wants/wicketd.service"
want "state still there" "$(cat "$root/var/lib/wicket/wicket.db" 2>&1)" state
invoked >/dev/null

step "purge with a store: kept until told"
check "dpkg -r" in_root dpkg -r wicket
out=$(in_root dpkg -P wicket 2>&1)
echo "$out" | sed 's/^/        /'
check "dpkg -P" test "$(in_root dpkg-query -W -f='${Status}' wicket 2>&1 | grep -c 'ok installed\|config-files')" = 0
check "says it deletes /etc/wicket" grep -q 'deleting /etc/wicket' <<<"$out"
check "says it keeps the store and how to delete it" grep -q 'KEEPING /var/lib/wicket' <<<"$out"
check "/etc/wicket gone" test ! -e "$root/etc/wicket"
want "store kept" "$(cat "$root/var/lib/wicket/wicket.db" 2>&1)" state
want "store's owner kept" "$(stat_of /var/lib/wicket)" "wicket:wicket 750"
check "user kept" in_root getent passwd wicket

step "purge with a store, WICKET_PURGE_RECORDS=yes"
check "dpkg -i" in_root dpkg -i "/tmp/wicket_${v2}_amd64.deb"
want "store reused" "$(cat "$root/var/lib/wicket/wicket.db" 2>&1)" state
invoked >/dev/null
out=$(in_root env WICKET_PURGE_RECORDS=yes dpkg -P wicket 2>&1)
echo "$out" | sed 's/^/        /'
check "says it deletes the store" grep -q 'deleting /var/lib/wicket' <<<"$out"
want "status" "$(in_root dpkg-query -W -f='${Status}' wicket 2>&1 | grep -c 'ok installed\|config-files')" 0
check "/etc/wicket gone" test ! -e "$root/etc/wicket"
check "/var/lib/wicket gone" test ! -e "$root/var/lib/wicket"
check "user gone" test -z "$(in_root getent passwd wicket)"
check "group wicket gone" test -z "$(in_root getent group wicket)"
check "no statoverrides left" test -z "$(in_root dpkg-statoverride --list | grep wicket)"
check "no enable state left" test -z "$(find "$root/etc/systemd" "$root/var/lib/systemd/deb-systemd-helper-enabled" -name 'wicketd*' 2>/dev/null)"

step "purge without a store"
check "dpkg -i" in_root dpkg -i "/tmp/wicket_${v2}_amd64.deb"
invoked >/dev/null
check "dpkg -P" in_root dpkg -P wicket
check "/var/lib/wicket gone" test ! -e "$root/var/lib/wicket"
check "user gone" test -z "$(in_root getent passwd wicket)"

# --- a provisioned gate: keys in place before the install -------------------
step "install on a provisioned gate (keys present: started)"
invoked >/dev/null
keys=$work/keys
mkdir -p "$keys"
ctl=$work/v2/linux-amd64/wicketctl
if "$ctl" keygen -out "$keys/root" >/dev/null && "$ctl" keygen -alg ES256 -out "$keys/gx" >/dev/null &&
	"$ctl" keyset -root "$keys/root.key" -version 1 -out "$keys/keyset.cose" \
		-key "pub=$keys/gx.pub,issuer=GX,kinds=dynamic+printed+watch" >/dev/null; then
	mkdir -p "$root/etc/wicket"
	install -m 0644 "$keys/root.pub" "$keys/keyset.cose" "$root/etc/wicket/"
	check "dpkg -i" in_root dpkg -i "/tmp/wicket_${v2}_amd64.deb"
	want "started" "$(invoked)" "start wicketd.service"
	check "check-config as wicket" in_root runuser -u wicket -- wicketd check-config /etc/wicket/wicketd.yaml
	check "dpkg -P" in_root dpkg -P wicket
	check "/etc/wicket gone" test ! -e "$root/etc/wicket"
else
	bad "make test keys with wicketctl"
fi

# --- the authority's package ------------------------------------------------
step "wicket-authority: install $v1 beside the gate"
check "dpkg -i wicket" in_root dpkg -i "/tmp/wicket_${v1}_amd64.deb"
invoked >/dev/null
check "dpkg -i wicket-authority" in_root dpkg -i "/tmp/wicket-authority_${v1}_amd64.deb"
want "status" "$(in_root dpkg-query -W -f='${Status} ${Version}' wicket-authority 2>&1)" "install ok installed $v1"
want "/usr/bin/wicketctl" "$(stat_of /usr/bin/wicketctl)" "root:root 755"
check "wicketctl runs" in_root wicketctl version
want "man page" "$(stat_of /usr/share/man/man1/wicketctl.1.gz)" "root:root 644"
check "man page lists every command" man_lists "$root/usr/share/man/man1/wicketctl.1.gz" "$work/v1/gen/host/wicketctl"
check "copyright (DEP-5, Apache-2.0)" grep -q '^License: Apache-2.0$' "$root/usr/share/doc/wicket-authority/copyright"
want "changelog" "$(zcat "$root/usr/share/doc/wicket-authority/changelog.gz" | head -1)" "wicket-authority ($v1) unstable; urgency=medium"
want "collector unit" "$(stat_of /lib/systemd/system/wicket-collector.service)" "root:root 644"
want "collector settings (conffile)" "$(stat_of /etc/default/wicket-collector)" "root:root 644"
check "role SQL" grep -q 'GRANT SELECT, INSERT ON wicket_records TO wicket_collector' "$root/usr/share/wicket-authority/collector-role.sql"
IFS=: read -r _ _ cuid _ _ _ cshell <<<"$(in_root getent passwd wicket_collector)"
check "user wicket_collector is a system user" test -n "$cuid" -a "${cuid:-1000}" -lt 1000
want "its shell" "$cshell" /usr/sbin/nologin
check "collector not enabled (needs settings)" test ! -e "$root/etc/systemd/system/multi-user.target.wants/wicket-collector.service"
want "collector not started" "$(invoked)" ""
if out=$(in_root systemd-analyze verify /lib/systemd/system/wicket-collector.service 2>&1); then
	ok "systemd-analyze verify wicket-collector.service"
else
	bad "systemd-analyze verify wicket-collector.service" "$(printf '%s' "$out" | tail -4 | tr '\n' ' ')"
fi
# The collector's command line as systemd builds it: the settings' values
# in the flags wicketctl collect takes.
check "collector command line parses" in_root sh -c '. /etc/default/wicket-collector &&
	wicketctl collect -h 2>&1 | grep -q -- "-migrate" &&
	test "$WICKET_DB" = "postgres:///wicket?host=/run/postgresql&user=wicket_collector"'

step "wicket-authority: upgrade to $v2, remove, purge"
check "dpkg -i" in_root dpkg -i "/tmp/wicket-authority_${v2}_amd64.deb"
want "restarted if running" "$(invoked)" "try-restart wicket-collector.service"
check "dpkg -r" in_root dpkg -r wicket-authority
want "stopped" "$(invoked)" "stop wicket-collector.service"
check "wicketctl gone" test ! -e "$root/usr/bin/wicketctl"
check "gate untouched" in_root wicketd version
check "dpkg -P" in_root dpkg -P wicket-authority
check "/etc/default/wicket-collector gone" test ! -e "$root/etc/default/wicket-collector"
check "user wicket_collector gone" test -z "$(in_root getent passwd wicket_collector)"
check "no collector unit state left" test -z "$(find "$root/etc/systemd" "$root/var/lib/systemd/deb-systemd-helper-enabled" "$root/var/lib/systemd/deb-systemd-helper-masked" -name 'wicket-collector*' 2>/dev/null)"
check "dpkg -P wicket" in_root dpkg -P wicket

step "upgrade from a wicket that shipped wicketctl (before the split)"
# That package's shape: the same paths, wicketctl included, an older version.
old=$work/old
mkdir -p "$old/DEBIAN" "$old/usr/bin"
cp "$work/v1/linux-amd64/wicketd" "$work/v1/linux-amd64/wicketctl" "$old/usr/bin/"
printf 'Package: wicket\nVersion: 0.0~git1796500000.0000000\nArchitecture: amd64\nMaintainer: Wicket <old@wicket.invalid>\nDescription: wicket before the split\n' >"$old/DEBIAN/control"
dpkg-deb -Zgzip -z1 --root-owner-group --build "$old" "$root/tmp/wicket-old.deb" >/dev/null
check "install the old wicket" in_root dpkg -i /tmp/wicket-old.deb
out=$(in_root dpkg -i "/tmp/wicket-authority_${v2}_amd64.deb" 2>&1)
check "wicket-authority alone: refused (Breaks)" grep -q "wicket-authority.* breaks wicket" <<<"$out"
check "both at once" in_root dpkg -i "/tmp/wicket_${v2}_amd64.deb" "/tmp/wicket-authority_${v2}_amd64.deb"
want "wicketctl now wicket-authority's" "$(in_root dpkg -S /usr/bin/wicketctl 2>&1)" "wicket-authority: /usr/bin/wicketctl"
check "wicketctl runs" in_root wicketctl version
invoked >/dev/null
check "dpkg -P both" in_root dpkg -P wicket-authority wicket
check "wicketctl gone with wicket-authority" test ! -e "$root/usr/bin/wicketctl"

lap
printf '\ntime:\n'
printf '  %s\n' "${times[@]}"
printf '%5ds  total\n' $(($(date +%s) - t_start))
printf '\nsummary: %d passed, %d failed\n' "$pass" "$fail"
for f in "${failed[@]}"; do printf '   failed: %s\n' "$f"; done
[ "$fail" = 0 ]
