#!/bin/sh
# Replace (or append) a "## " section of a Markdown file with a file's
# contents. Usage: scripts/splice-section.sh DOC SECTION-FILE
# The section's heading is the first line of SECTION-FILE.
set -eu
doc=$1 part=$2
heading=$(head -n1 "$part")
tmp=$(mktemp)
awk -v h="$heading" -v part="$part" '
	$0 == h { skip = 1; while ((getline line < part) > 0) print line; done = 1; next }
	skip && /^## / { skip = 0 }
	!skip { print }
	END { if (!done) { print ""; while ((getline line < part) > 0) print line } }
' "$doc" >"$tmp"
mv "$tmp" "$doc"
