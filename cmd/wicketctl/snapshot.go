package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// defaultPartEntries is the entries per part document: about 1 MB, so a
// gate holds little while it collects a snapshot of millions of entries.
const defaultPartEntries = 16384

// cmdSnapshot signs a snapshot of any size from a CSV list of statements.
// Up to -part-entries entries it writes one document; beyond, the parts
// of a multi-part snapshot (verifier.Batch) into one directory. Every line
// is checked before anything is signed.
func cmdSnapshot(e env, args []string) error {
	fs := newFlags(e, "snapshot", "-root ROOT.key -state STATE.json [-version N] -in LIST.csv -out DIR [-part-entries N]\n"+
		"  LIST.csv: one statement per line, # starts a comment:\n"+
		"    revoke,<voucher id hex>,<time>,<expires>\n"+
		"    colour,<subject hex>,<time>,<expires>,<green|yellow|red>\n"+
		"    void-before,<subject hex>,<time>,<expires>\n"+
		"  times: unix seconds or RFC 3339")
	root := fs.String("root", "", "root private key")
	version := fs.Uint64("version", 0, "snapshot version; default: one above the last in -state")
	state := fs.String("state", "", "state file of the batches signed (as revoke and override -state): refuses a reused version")
	in := fs.String("in", "", "CSV list of statements")
	out := fs.String("out", "", "output directory for the signed documents")
	per := fs.Int("part-entries", defaultPartEntries, fmt.Sprintf("entries per document (at most %d)", decoder.MaxTrustListLen))
	prog := fs.String("progress", "auto", "progress bar: auto (on a terminal), on or off")
	idBytes := fs.Int("id-bytes", idBytesDefault, fmt.Sprintf("length of each key in bytes (wicketctl issues %d); 0 accepts %d to %d, for lists mixing issuers", idBytesDefault, decoder.MinIDLen, decoder.MaxIDLen))
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := checkIDBytes(*idBytes); err != nil {
		return err
	}
	switch {
	case *root == "" || *in == "" || *out == "" || *state == "":
		return usagef("-root, -state, -in and -out are required")
	case *per < 1 || *per > decoder.MaxTrustListLen:
		return usagef("-part-entries: want 1 to %d", decoder.MaxTrustListLen)
	case *prog != "auto" && *prog != "on" && *prog != "off":
		return usagef("-progress: auto, on or off")
	}
	sst, err := loadState(*state)
	if err != nil {
		return err
	}
	p, err := sst.plan(*state, *version, nil, true)
	if err != nil {
		return err
	}
	*version = p.version
	signer, err := readSigner(*root)
	if err != nil {
		return err
	}
	st, err := os.Stat(*in)
	if err != nil {
		return err
	}
	// Pass 1: check every line and count.
	bar := newProgress(e.stderr, *prog, "checking", "B", st.Size())
	n, err := readStatements(*in, *idBytes, bar, func(verifier.Entry) error { return nil })
	bar.finish()
	if err != nil {
		return err
	}
	parts := (n + *per - 1) / *per
	if parts > verifier.MaxSnapshotParts {
		return usagef("%d entries make %d parts of %d, over %d: raise -part-entries", n, parts, *per, verifier.MaxSnapshotParts)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	issued := time.Now()
	// Pass 2: sign the parts as they fill.
	bar = newProgress(e.stderr, *prog, "signing", "entries", int64(n))
	var buf []verifier.Entry
	part := 0
	flush := func() error {
		b := verifier.Batch{Version: *version, IssuedAt: issued, Entries: buf}
		if parts > 1 {
			b.Part, b.Parts = uint32(part), uint32(parts)
		}
		doc, err := verifier.SignBatch(signer, b)
		if err != nil {
			return fmt.Errorf("part %d: %w", part, err)
		}
		if err := writeFileAtomic(filepath.Join(*out, snapshotFile(*version, part, parts)), doc, 0o644); err != nil {
			return err
		}
		bar.add(int64(len(buf)))
		buf, part = buf[:0], part+1
		return nil
	}
	_, err = readStatements(*in, *idBytes, nil, func(en verifier.Entry) error {
		if buf = append(buf, en); len(buf) == *per {
			return flush()
		}
		return nil
	})
	if err == nil && (len(buf) > 0 || part == 0) {
		err = flush()
	}
	bar.finish()
	if err != nil {
		return err
	}
	if err := sst.record(*state, signedBatch{Version: *version, Entries: n, Out: *out, At: time.Now().UTC()}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %d document(s) to %s: snapshot version %d, %d entries\n", part, *out, *version, n)
	return nil
}

// snapshotFile names the document of part p of a snapshot in parts
// parts, or the one document of a snapshot that needs no parts.
func snapshotFile(version uint64, p, parts int) string {
	if parts <= 1 {
		return fmt.Sprintf("snapshot-%d.cose", version)
	}
	return fmt.Sprintf("snapshot-%d-part-%05d-of-%05d.cose", version, p, parts)
}

// readStatements parses the CSV list, calling fn for each statement in
// order. A bad line is an error naming the line.
func readStatements(path string, idBytes int, bar *progress, fn func(verifier.Entry) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var src io.Reader = bufio.NewReaderSize(f, 1<<20)
	if bar != nil {
		src = &countingReader{r: src, bar: bar}
	}
	r := csv.NewReader(src)
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	n := 0
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		en, err := parseStatement(rec, idBytes)
		if err != nil {
			return n, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if err := fn(en); err != nil {
			return n, err
		}
		n++
	}
}

func parseStatement(rec []string, idBytes int) (verifier.Entry, error) {
	var en verifier.Entry
	want := 4
	switch op := strings.TrimSpace(rec[0]); op {
	case "revoke":
		en.Op = verifier.OpRevoke
	case "colour", "color":
		en.Op, want = verifier.OpColour, 5
	case "void-before":
		en.Op = verifier.OpVoidBefore
	default:
		return en, fmt.Errorf("unknown statement %q: want revoke, colour or void-before", op)
	}
	if len(rec) != want {
		return en, fmt.Errorf("%s: %d fields, want %d", rec[0], len(rec), want)
	}
	k, err := decodeID(rec[1], idBytes)
	if err != nil {
		return en, fmt.Errorf("key %w", err)
	}
	en.Key = k
	for i, dst := range []*int64{&en.Time, &en.Expires} {
		s := strings.TrimSpace(rec[2+i])
		if v, err := strconv.ParseInt(s, 10, 64); err == nil && v > 0 {
			*dst = v
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil || t.Unix() <= 0 {
			return en, fmt.Errorf("time %q: want unix seconds or RFC 3339", s)
		}
		*dst = t.Unix()
	}
	if en.Op == verifier.OpColour {
		if en.Colour, err = decoder.ParseColour(strings.TrimSpace(rec[4])); err != nil {
			return en, err
		}
	}
	return en, nil
}

// countingReader feeds a progress bar with the bytes read.
type countingReader struct {
	r   io.Reader
	bar *progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bar.add(int64(n))
	return n, err
}

// writeFileAtomic writes a file under a temporary name, fsyncs it and
// renames it into place, so an interrupted run leaves no half document.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
