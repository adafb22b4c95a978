// Command events runs inside the board twin and prints the access log of
// a stopped gate's store, one JSON record a line in seq order, so the
// host can check what the gate committed (passages, emergency events)
// record by record. It opens the store read-only: it waits for a running
// wicketd's lock up to -wait, and never repairs.
//
// Usage: events [-store FILE] [-after SEQ]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"wicket/sync/store"
)

func main() {
	path := flag.String("store", "/var/lib/wicket/wicket.db", "the gate's store")
	after := flag.Uint64("after", 0, "print the records with a seq above this")
	wait := flag.Duration("wait", 5*time.Second, "how long to wait for a writer's lock")
	flag.Parse()
	st, err := store.OpenReadOnly(*path, *wait)
	if err != nil {
		fmt.Fprintf(os.Stderr, "events: %v\n", err)
		os.Exit(1)
	}
	defer st.Close()
	enc := json.NewEncoder(os.Stdout)
	for seq := *after; ; {
		evs, err := st.Events(seq, store.MaxPage)
		if err != nil {
			fmt.Fprintf(os.Stderr, "events: %v\n", err)
			os.Exit(1)
		}
		if len(evs) == 0 {
			return
		}
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				fmt.Fprintf(os.Stderr, "events: %v\n", err)
				os.Exit(1)
			}
			seq = e.Seq
		}
	}
}
