package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// batchFlags are the flags revoke and override share. A batch
// goes one of two ways: recorded in the authority's ledger (-db), which
// owns versions and bases, or signed into a file (-out) for air-gapped
// use, with a state file (-state) that remembers the versions signed.
type batchFlags struct {
	fs       *flag.FlagSet
	root     *string
	version  *uint64
	base     *uint64
	snapshot *bool
	yes      *bool
	state    *string
	out      *string
	idBytes  *int
	ledger   ledgerFlags
	fleet    *string
}

// idBytesDefault is the voucher id and subject length wicketctl issues.
const idBytesDefault = 16

func addBatchFlags(fs *flag.FlagSet) batchFlags {
	return batchFlags{
		fs:       fs,
		root:     fs.String("root", "", "root private key (with -out)"),
		version:  fs.Uint64("version", 0, "batch version (with -out); default: one above the last in -state"),
		base:     fs.Uint64("base", 0, "version this delta follows (with -out); default: the last in -state"),
		snapshot: fs.Bool("snapshot", false, "sign a snapshot that replaces every revocation and override gates hold (with -out; needs -yes)"),
		yes:      fs.Bool("yes", false, "with -snapshot: yes, drop everything not in this batch"),
		state:    fs.String("state", "", "state file of the batches signed (with -out): refuses a reused version and remembers the last one"),
		out:      fs.String("out", "", "output file (signed COSE)"),
		ledger:   addLedgerFlags(fs),
		fleet:    fs.String("fleet", "", "fleet id whose ledger records the statements (with -db)"),
		idBytes:  fs.Int("id-bytes", idBytesDefault, fmt.Sprintf("length of each id in bytes (wicketctl issues %d); 0 accepts %d to %d", idBytesDefault, decoder.MinIDLen, decoder.MaxIDLen)),
	}
}

// given reports whether the flag was set on the command line.
func (b batchFlags) given(name string) bool {
	set := false
	b.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// sign signs entries into the -out file, checking and then advancing the
// -state file. Nothing is written when a check fails.
func (b batchFlags) sign(e env, entries []verifier.Entry) error {
	switch {
	case *b.out == "":
		return usagef("-out FILE is required: the signed batch goes there")
	case *b.root == "" || *b.state == "":
		return usagef("-root and -state are required with -out (-state: a file that remembers the versions signed, e.g. authority-state.json, created on first use)")
	case len(entries) == 0:
		return usagef("no entries")
	}
	st, err := loadState(*b.state)
	if err != nil {
		return err
	}
	var base *uint64
	if b.given("base") {
		base = b.base
	}
	p, err := st.plan(*b.state, *b.version, base, *b.snapshot)
	if err != nil {
		return err
	}
	if *b.snapshot && !*b.yes {
		return usagef("-snapshot: this batch would replace everything gates hold with these %d entries, dropping every earlier revocation and override; nothing signed. Add -yes if that is what you want, or leave -snapshot out to sign a delta on %d", len(entries), st.Last)
	}
	signer, err := readSigner(*b.root)
	if err != nil {
		return err
	}
	doc, err := verifier.SignBatch(signer, verifier.Batch{Version: p.version, Base: p.base, IssuedAt: time.Now(), Entries: entries})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*b.out, doc, 0o644); err != nil {
		return err
	}
	if err := st.record(*b.state, signedBatch{Version: p.version, Base: p.base, Entries: len(entries), Out: *b.out, At: time.Now().UTC()}); err != nil {
		os.Remove(*b.out)
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: batch version %d (%s), %d entries\n", *b.out, p.version, batchKind(p.base), len(entries))
	return nil
}

func batchKind(base uint64) string {
	if base == 0 {
		return "snapshot"
	}
	return fmt.Sprintf("delta on %d", base)
}

// hexIDs decodes ids given in hex (spaces and dashes, as a card groups
// them, are ignored). want is the length in bytes every id must have, or
// 0 for any length a voucher may carry.
func hexIDs(flagName string, ids []string, want int) ([][]byte, error) {
	if err := checkIDBytes(want); err != nil {
		return nil, err
	}
	var out [][]byte
	for _, s := range ids {
		b, err := decodeID(s, want)
		if err != nil {
			return nil, usagef("%s %v", flagName, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func checkIDBytes(want int) error {
	if want != 0 && (want < decoder.MinIDLen || want > decoder.MaxIDLen) {
		return usagef("-id-bytes %d: want %d to %d, or 0", want, decoder.MinIDLen, decoder.MaxIDLen)
	}
	return nil
}

// decodeID decodes one id of want bytes (0: any valid length).
func decodeID(s string, want int) ([]byte, error) {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(s)))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%q: not hex: %v", s, err)
	case want != 0 && len(b) != want:
		return nil, fmt.Errorf("%q: %d bytes, want %d (%d hex digits, the whole id as printed on the card); an id of another issuer whose ids have another length needs -id-bytes",
			s, len(b), want, 2*want)
	case len(b) < decoder.MinIDLen || len(b) > decoder.MaxIDLen:
		return nil, fmt.Errorf("%q: %d bytes, want %d to %d", s, len(b), decoder.MinIDLen, decoder.MaxIDLen)
	}
	return b, nil
}

func cmdRevoke(e env, args []string) error {
	fs := newFlags(e, "revoke", "-voucher-id HEX... (-db URL -fleet F | -root ROOT.key -state STATE.json -out FILE [-version N] [-base M | -snapshot -yes])")
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
	keys, err := hexIDs("-voucher-id", ids, *bf.idBytes)
	if err != nil {
		return err
	}
	var entries []verifier.Entry
	for _, k := range keys {
		entries = append(entries, verifier.Entry{Op: verifier.OpRevoke, Key: k, Time: now.Unix(), Expires: exp.Unix()})
	}
	return bf.commit(e, entries)
}

func cmdOverride(e env, args []string) error {
	fs := newFlags(e, "override", "-subject HEX... (-colour C | -void-before T) (-db URL -fleet F | -root ROOT.key -state STATE.json -out FILE [-version N] [-base M | -snapshot -yes])")
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
	keys, err := hexIDs("-subject", subs, *bf.idBytes)
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
	return bf.commit(e, entries)
}
