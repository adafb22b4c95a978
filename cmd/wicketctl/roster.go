package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"wicket/verifier"
)

// cmdRoster builds, signs and publishes the fleet's roster: which gates
// and collectors are enrolled, with the public keys they sign with.
func cmdRoster(e env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: sign, publish or show")
	}
	switch args[0] {
	case "sign":
		return rosterSign(e, args[1:])
	case "publish":
		return rosterPublish(e, args[1:])
	case "show":
		return rosterShow(e, args[1:])
	}
	return usagef("unknown subcommand %q: want sign, publish or show", args[0])
}

// rosterSign signs a roster from a CSV list of members.
func rosterSign(e env, args []string) error {
	fs := newFlags(e, "roster sign", "-root ROOT.key -version N -members FILE.csv -out roster.cose")
	root := fs.String("root", "", "root private key (PEM) that signs the roster")
	version := fs.Uint64("version", 0, "roster version: above the one the fleet has (wicketctl roster show)")
	members := fs.String("members", "", "CSV of members: id,venue,station,role,key with role gate or collector and key "+
		"the ed25519:... text a gate shows (wicketd identity) or its whole wicket-enrol:1:... line, or a PEM public key file")
	out := fs.String("out", "", "file to write the signed roster to (must not exist)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *root == "" || *version == 0 || *members == "" || *out == "" {
		return usagef("-root, -version, -members and -out are required")
	}
	f, err := os.Open(*members)
	if err != nil {
		return fmt.Errorf("-members: %w", err)
	}
	defer f.Close()
	list, err := readMembers(f)
	if err != nil {
		return fmt.Errorf("-members %s: %w", *members, err)
	}
	signer, err := readSigner(*root)
	if err != nil {
		return fmt.Errorf("-root: %w", err)
	}
	doc, err := verifier.RosterSpec{Version: *version, IssuedAt: time.Now(), Members: list}.Sign(signer)
	if err != nil {
		return err
	}
	if err := writeNew(*out, doc); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	gates := 0
	for _, m := range list {
		if m.Role == verifier.RoleGate {
			gates++
		}
	}
	fmt.Fprintf(e.stdout, "wrote %s: roster version %d, %d gates, %d collectors\n", *out, *version, gates, len(list)-gates)
	return nil
}

// readMembers reads the CSV of rosterSign. A first line starting with
// "id," is a header; empty lines and lines starting with # are skipped.
func readMembers(r io.Reader) ([]verifier.Member, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = 5
	cr.TrimLeadingSpace = true
	var out []verifier.Member
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(out) == 0 && rec[0] == "id" {
			continue
		}
		row, _ := cr.FieldPos(0)
		role, err := verifier.ParseRole(rec[3])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", row, err)
		}
		key, err := memberKey(rec[4], rec[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", row, err)
		}
		out = append(out, verifier.Member{ID: rec[0], Venue: rec[1], Station: rec[2], Role: role, Key: key})
		if len(out) > verifier.MaxRosterMembers {
			return nil, fmt.Errorf("more than %d members", verifier.MaxRosterMembers)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no members")
	}
	return out, nil
}

// memberKey reads a member's key: "ed25519:...", a gate's whole
// enrolment line (whose gate id must be id), or a PEM public key file.
func memberKey(s, id string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "wicket-enrol:1:"); ok {
		parts := strings.SplitN(rest, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("enrolment line %q: want wicket-enrol:1:<gate>:<venue>:ed25519:<key>", s)
		}
		if parts[0] != id {
			return nil, fmt.Errorf("enrolment line of gate %q given for %q", parts[0], id)
		}
		s = parts[2]
	}
	if strings.HasPrefix(s, "ed25519:") {
		return verifier.ParseMemberKey(s)
	}
	k, err := verifier.ReadPublicKeyFile(s)
	if err != nil {
		return nil, fmt.Errorf("key %q: neither ed25519:... nor a readable public key file: %w", s, err)
	}
	pub, ok := k.Public().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("key file %s: not an Ed25519 key", s)
	}
	return pub, nil
}

// rosterPublish publishes a signed roster, retained, after checking that
// it verifies with the roots and is newer than the one the broker holds:
// gates and collectors ignore a roster that is not newer.
func rosterPublish(e env, args []string) error {
	fs := newFlags(e, "roster publish", "-broker URL -fleet F -roots ROOT.pub roster.cose")
	bf := addBrokerFlags(fs, "publish")
	rk, raw, err := rootsAndFile(fs, args, "roster")
	if err != nil {
		return err
	}
	r, err := rk.ParseRoster(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	cl, topics, err := bf.dial()
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	cur, err := heldRoster(cl, topics, 2*time.Second)
	if err != nil {
		return err
	}
	if len(cur) > 0 {
		if bytes.Equal(cur, raw) {
			fmt.Fprintf(e.stdout, "the broker already holds roster version %d; nothing published\n", r.Version)
			return nil
		}
		if old, err := rk.ParseRoster(cur); err == nil && r.Version <= old.Version {
			return fmt.Errorf("roster version %d is not above version %d on the broker: the fleet would ignore it; sign it again with -version %d",
				r.Version, old.Version, old.Version+1)
		}
	}
	if err := waitToken(cl.Publish(topics.Roster(), 1, true, raw)); err != nil {
		return fmt.Errorf("publish %s: %w", topics.Roster(), err)
	}
	fmt.Fprintf(e.stdout, "published roster version %d (%d members) on %s\n", r.Version, len(r.Members), topics.Roster())
	return nil
}

// rosterShow prints a roster file, or the one the broker holds.
func rosterShow(e env, args []string) error {
	fs := newFlags(e, "roster show", "-roots ROOT.pub (roster.cose | -broker URL -fleet F)")
	bf := addBrokerFlags(fs, "roster")
	var roots multiFlag
	fs.Var(&roots, "roots", "root public key the roster must verify with (repeat)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(roots) == 0 || fs.NArg() > 1 {
		return usagef("want -roots and a roster file, or -roots with -broker and -fleet")
	}
	rk, err := loadRoots(roots)
	if err != nil {
		return err
	}
	var raw []byte
	if fs.NArg() == 1 {
		if raw, err = os.ReadFile(fs.Arg(0)); err != nil {
			return err
		}
	} else {
		cl, topics, err := bf.dial()
		if err != nil {
			return err
		}
		defer cl.Disconnect(250)
		if raw, err = heldRoster(cl, topics, 2*time.Second); err != nil {
			return err
		}
		if len(raw) == 0 {
			return fmt.Errorf("no roster on %s: publish one with wicketctl roster publish", topics.Roster())
		}
	}
	r, err := rk.ParseRoster(raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "roster version %d, issued %s, %d members\n", r.Version, r.IssuedAt.UTC().Format(time.RFC3339), len(r.Members))
	w := csv.NewWriter(e.stdout)
	w.Write([]string{"id", "venue", "station", "role", "key"})
	for _, m := range r.Members {
		w.Write([]string{m.ID, m.Venue, m.Station, m.Role.String(), verifier.FormatMemberKey(m.Key)})
	}
	w.Flush()
	return w.Error()
}

// loadRoots reads root public key files.
func loadRoots(paths []string) (verifier.RootKeys, error) {
	var rk verifier.RootKeys
	for _, p := range paths {
		k, err := verifier.ReadPublicKeyFile(p)
		if err != nil {
			return nil, fmt.Errorf("-roots %s: %w", p, err)
		}
		rk = append(rk, k)
	}
	return rk, nil
}
