#!/bin/bash
# Renders a man page template (wicketd.8, wicketctl.1) for a built binary:
# @VERSION@ and @DATE@ are replaced, and the line @COMMANDS@ by every
# command the binary lists in its -h output, each with its usage line and
# flags from "BINARY COMMAND -h". The page thus lists exactly the commands
# the binary has.
#
# Usage: packaging/man/manpage.sh TEMPLATE BINARY VERSION DATE >PAGE
set -euo pipefail
[ $# = 4 ] || { echo "usage: manpage.sh TEMPLATE BINARY VERSION DATE" >&2; exit 2; }
tmpl=$1 bin=$2 version=$3 date=$4

# roff_text: escape text for roff (backslashes, hyphens, leading . and ').
roff_text() {
	sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\([.']\)/\\\\\&\1/"
}

# commands: "name<TAB>description" for each line under "commands:".
commands() {
	{ "$bin" -h 2>&1 </dev/null || true; } | awk '
		/^commands:/ { on = 1; next }
		on && /^  [a-z]/ {
			name = $1; sub(/^  [^ ]+ +/, ""); print name "\t" $0
		}'
}

# flags CMD: the usage line and flag list of "BINARY CMD -h" as roff, or
# nothing when the command takes no flags (it then runs instead of printing
# a usage).
flags() {
	local out
	out=$("$bin" "$1" -h 2>&1 </dev/null) || true
	case $out in usage:*) ;; *) return 0 ;; esac
	# Defaults made from this machine's name (a client id) say HOSTNAME,
	# so the page does not depend on where it was built.
	out=${out//-$(hostname)\"/-HOSTNAME\"}
	printf '%s\n' "$out" | roff_text | awk '
		NR == 1 { sub(/^usage: /, ""); print ".PP"; print ".B " $0; next }
		/^  \\-/ { sub(/^  /, ""); print ".TP"; print ".B " $0; next }
		{ sub(/^ +\t?/, ""); if ($0 ~ /^[.\047]/) $0 = "\\&" $0; print }'
}

render_commands() {
	local name desc
	while IFS=$'\t' read -r name desc; do
		printf '.SS %s\n' "$name"
		printf '%s\n' "$desc" | roff_text
		flags "$name"
	done < <(commands)
}

n=$(commands | wc -l)
[ "$n" -gt 0 ] || { echo "manpage.sh: $bin -h lists no commands" >&2; exit 1; }
while IFS= read -r line; do
	case $line in
	@COMMANDS@) render_commands ;;
	*) line=${line//@VERSION@/$version}; printf '%s\n' "${line//@DATE@/$date}" ;;
	esac
done <"$tmpl"
