package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"wicket/verifier"
)

// cmdDCC holds the authority's EU DCC tools: importing the DCC gateway's
// revocation lists into a signed batch, and the fleet's DCC pseudonym key.
func cmdDCC(e env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "revocations":
			return cmdDCCRevocations(e, args[1:])
		case "pseudonym":
			return cmdDCCPseudonym(e, args[1:])
		}
	}
	return usagef("dcc revocations|pseudonym [flags] (-h for each)")
}

// cmdDCCRevocations signs a revocation batch of the entries of DCC
// gateway revocation batches (JSON files), one Wicket voucher id per
// entry (verifier.DCCRevocationID: hash type, signer kid and hash).
func cmdDCCRevocations(e env, args []string) error {
	fs := newFlags(e, "dcc revocations", "(-db URL -fleet F | -root ROOT.key -state STATE.json -out FILE [-version N] [-base M]) GATEWAY-BATCH.json...")
	bf := addBatchFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("name at least one gateway revocation batch (JSON)")
	}
	now := time.Now()
	var entries []verifier.Entry
	for _, path := range fs.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		b, err := verifier.ParseDCCRevocationBatch(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !b.Expires.After(now) {
			fmt.Fprintf(e.stdout, "%s: skipped: expired on %s (%d entries)\n", path, b.Expires.UTC().Format(time.RFC3339), len(b.Hashes))
			continue
		}
		for _, id := range b.IDs() {
			entries = append(entries, verifier.Entry{Op: verifier.OpRevoke, Key: id, Time: now.Unix(), Expires: b.Expires.Unix()})
		}
		fmt.Fprintf(e.stdout, "%s: %s, signer kid %x, %s, %d entries until %s\n", path, b.Country, b.Kid, b.HashType,
			len(b.Hashes), b.Expires.UTC().Format(time.DateOnly))
	}
	return bf.commit(e, entries)
}

// cmdDCCPseudonym makes the fleet's DCC pseudonym key, or prints the
// pseudonym of a holder (for wicketctl override -subject).
func cmdDCCPseudonym(e env, args []string) error {
	fs := newFlags(e, "dcc pseudonym", "-secret FILE [-new] [-fnt NAME -gnt NAME -dob DATE]")
	sf := addSecretFileFlags(fs, "the fleet's DCC pseudonym key file (trust.dcc_pseudonym_key on the gates)")
	fnt := fs.String("fnt", "", "standardised family name as in the certificate (nam.fnt)")
	gnt := fs.String("gnt", "", "standardised given name as in the certificate (nam.gnt)")
	dob := fs.String("dob", "", "date of birth as in the certificate (dob)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := sf.prepare(e); err != nil {
		return err
	}
	if *fnt == "" && *gnt == "" {
		if !*sf.create {
			return usagef("-new, or -fnt/-gnt and -dob")
		}
		return nil
	}
	key, err := readSecret(*sf.path)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, hex.EncodeToString(verifier.DCCPseudonym(key, *fnt, *gnt, *dob)))
	return nil
}
