package main

import (
	"strings"
	"testing"
)

func TestParseDays(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"90d", 90, true}, {"1d", 1, true}, {"0d", 0, false}, {"-3d", 0, false},
		{"90", 0, false}, {"", 0, false}, {"d", 0, false}, {"90h", 0, false}, {"9e9d", 0, false},
	} {
		got, err := parseDays(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("parseDays(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// Without a subcommand or an age, records purge is a usage error that
// touches no database.
func TestRecordsPurgeUsage(t *testing.T) {
	for _, args := range [][]string{{"records"}, {"records", "drop"}, {"records", "purge"}, {"records", "purge", "-older-than", "90"}} {
		var out, errOut strings.Builder
		if code := dispatch(env{nil, &out, &errOut}, args); code != exitUsage {
			t.Errorf("wicketctl %q: exit %d; want %d (stderr %q)", args, code, exitUsage, errOut.String())
		}
	}
}
