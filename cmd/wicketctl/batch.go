package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// batchFlags are the flags every batch-signing command shares.
type batchFlags struct {
	root    *string
	version *uint64
	base    *uint64
	out     *string
}

func addBatchFlags(fs interface {
	String(string, string, string) *string
	Uint64(string, uint64, string) *uint64
}) batchFlags {
	return batchFlags{
		root:    fs.String("root", "", "root private key"),
		version: fs.Uint64("version", 0, "batch version; higher than every earlier batch"),
		base:    fs.Uint64("base", 0, "version this delta applies on top of; 0 makes a snapshot that replaces everything"),
		out:     fs.String("out", "", "output file (signed COSE)"),
	}
}

func (b batchFlags) sign(e env, entries []verifier.Entry) error {
	if *b.root == "" || *b.out == "" || *b.version == 0 {
		return usagef("-root, -version and -out are required")
	}
	if len(entries) == 0 {
		return usagef("no entries")
	}
	signer, err := readSigner(*b.root)
	if err != nil {
		return err
	}
	doc, err := verifier.SignBatch(signer, verifier.Batch{Version: *b.version, Base: *b.base, IssuedAt: time.Now(), Entries: entries})
	if err != nil {
		return err
	}
	if err := os.WriteFile(*b.out, doc, 0o644); err != nil {
		return err
	}
	kind := "snapshot"
	if *b.base != 0 {
		kind = fmt.Sprintf("delta on %d", *b.base)
	}
	fmt.Fprintf(e.stdout, "wrote %s: batch version %d (%s), %d entries\n", *b.out, *b.version, kind, len(entries))
	return nil
}

func hexIDs(flagName string, ids []string) ([][]byte, error) {
	var out [][]byte
	for _, s := range ids {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) < decoder.MinIDLen || len(b) > decoder.MaxIDLen {
			return nil, usagef("%s %q: want %d to %d bytes of hex", flagName, s, decoder.MinIDLen, decoder.MaxIDLen)
		}
		out = append(out, b)
	}
	return out, nil
}

func cmdRevoke(e env, args []string) error {
	fs := newFlags(e, "revoke", "-root ROOT.key -version N [-base M] -voucher-id HEX... -out FILE")
	bf := addBatchFlags(fs)
	var ids multiFlag
	fs.Var(&ids, "voucher-id", "voucher id to revoke, hex (repeat)")
	expires := fs.String("expires", "1440h", "when gates may forget the entries: RFC 3339 or a duration from now (after the vouchers expire)")
	if err := parse(fs, args); err != nil {
		return err
	}
	now := time.Now()
	exp, err := parseTime(*expires, now)
	if err != nil {
		return usagef("-expires: %v", err)
	}
	keys, err := hexIDs("-voucher-id", ids)
	if err != nil {
		return err
	}
	var entries []verifier.Entry
	for _, k := range keys {
		entries = append(entries, verifier.Entry{Op: verifier.OpRevoke, Key: k, Time: now.Unix(), Expires: exp.Unix()})
	}
	return bf.sign(e, entries)
}

func cmdOverride(e env, args []string) error {
	fs := newFlags(e, "override", "-root ROOT.key -version N [-base M] -subject HEX... (-colour C | -void-before T) -out FILE")
	bf := addBatchFlags(fs)
	var subs multiFlag
	fs.Var(&subs, "subject", "subject pseudonym, hex (repeat)")
	colourS := fs.String("colour", "", "new colour: green, yellow or red")
	voidBefore := fs.String("void-before", "", "void every voucher of the subjects issued before this time (RFC 3339 or duration)")
	at := fs.String("at", "", "when the colour changed (RFC 3339; default now): vouchers issued later win")
	expires := fs.String("expires", "336h", "when the statement lapses: RFC 3339 or a duration from now")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*colourS == "") == (*voidBefore == "") {
		return usagef("give exactly one of -colour and -void-before")
	}
	now := time.Now()
	stmt := now
	var err error
	if *at != "" {
		if stmt, err = time.Parse(time.RFC3339, *at); err != nil {
			return usagef("-at: %v", err)
		}
	}
	exp, err := parseTime(*expires, now)
	if err != nil {
		return usagef("-expires: %v", err)
	}
	keys, err := hexIDs("-subject", subs)
	if err != nil {
		return err
	}
	var entries []verifier.Entry
	for _, k := range keys {
		en := verifier.Entry{Key: k, Time: stmt.Unix(), Expires: exp.Unix()}
		if *colourS != "" {
			c, err := decoder.ParseColour(*colourS)
			if err != nil {
				return usagef("-colour: %v", err)
			}
			en.Op, en.Colour = verifier.OpColour, c
		} else {
			t, err := parseTime(*voidBefore, now)
			if err != nil {
				return usagef("-void-before: %v", err)
			}
			en.Op, en.Time = verifier.OpVoidBefore, t.Unix()
		}
		entries = append(entries, en)
	}
	return bf.sign(e, entries)
}
