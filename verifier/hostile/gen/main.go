// Command gen writes the hostile-input corpus of verifier/hostile:
//
//	go run ./verifier/hostile/gen
//
// from the module root. The output is the same on every run.
package main

import (
	"flag"
	"fmt"
	"os"

	"wicket/verifier/hostile/internal/corpus"
	"wicket/verifier/verifiertest"
)

func main() {
	out := flag.String("o", corpus.Path, "file to write")
	flag.Parse()
	f := corpus.Generate(verifiertest.ProgramTB())
	b, err := corpus.Marshal(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err, "(run from the module root, or give -o)")
		os.Exit(1)
	}
	counts := map[string]int{}
	for _, c := range f.Cases {
		counts[c.Layer]++
	}
	fmt.Printf("%s: %d cases, %d controls\n", *out, len(f.Cases), len(f.Controls))
	for _, l := range corpus.Layers {
		fmt.Printf("  %-10s %4d\n", l, counts[l])
	}
}
