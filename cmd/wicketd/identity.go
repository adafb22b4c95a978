package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"

	"wicket/decoder/qr"
	"wicket/sync/wire"
	"wicket/verifier"
)

// identityFile is the name of the gate's identity key in its config
// directory.
const identityFile = "identity.key"

// enrolText is what the gate shows for enrolment, as text and QR code:
// "wicket-enrol:1:<gate id>:<venue>:ed25519:<key>". wicketctl roster
// reads it (or the key alone) from the technician's list.
func enrolText(gate, venue string, pub ed25519.PublicKey) string {
	return "wicket-enrol:1:" + gate + ":" + venue + ":" + verifier.FormatMemberKey(pub)
}

// ensureIdentity makes the identity key at path unless one is there (an
// identity is never replaced: the roster holds its public key), and
// returns the public key and whether it was made now. Made by root, it is
// given to the wicket user, as wicketd runs as that user.
func ensureIdentity(path string) (ed25519.PublicKey, bool, error) {
	if priv, err := wire.ReadIdentity(path); err == nil {
		return priv.Public().(ed25519.PublicKey), false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	pub, err := wire.GenerateIdentity(path)
	if err != nil {
		return nil, false, err
	}
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("wicket"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			if err := os.Chown(path, uid, gid); err != nil {
				return nil, false, fmt.Errorf("identity key: %w", err)
			}
		}
	}
	return pub, true, nil
}

// printEnrolment shows the gate's public key, as text and as a QR code
// the authority's phone or scanner can read.
func printEnrolment(w io.Writer, gate, venue string, pub ed25519.PublicKey) {
	text := enrolText(gate, venue, pub)
	fmt.Fprintf(w, "\nEnrolment: give the authority this line (or let it scan the code below):\n\n  %s\n\n", text)
	if code, err := terminalQR(text); err == nil {
		fmt.Fprint(w, code)
	}
	fmt.Fprintln(w, "\nUntil the authority has enrolled this gate in the fleet's roster, it decides\n"+
		"as usual but collectors refuse its records (they stay in its outbox).")
}

// terminalQR draws text as a QR code in text, two modules per character
// row: light modules as blocks, for a dark terminal.
func terminalQR(text string) (string, error) {
	// The smallest size Encode accepts draws one pixel per module.
	for size := qr.MinSize; size <= 200; size++ {
		g, err := qr.Encode(text, size, "L")
		if errors.Is(err, qr.ErrSize) {
			continue
		}
		if err != nil {
			return "", err
		}
		dark := func(x, y int) bool { return y < size && g.Pix[y*g.Stride+x] == 0 }
		var b strings.Builder
		for y := 0; y < size; y += 2 {
			for x := range size {
				top, bottom := !dark(x, y), y+1 < size && !dark(x, y+1)
				switch {
				case top && bottom:
					b.WriteString("█")
				case top:
					b.WriteString("▀")
				case bottom:
					b.WriteString("▄")
				default:
					b.WriteString(" ")
				}
			}
			b.WriteByte('\n')
		}
		return b.String(), nil
	}
	return "", errors.New("text too long for a terminal QR code")
}

// cmdIdentity shows the gate's enrolment line and QR code again, making
// the identity key first if the config names one that does not exist.
func cmdIdentity(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	cfg, ok := loadForTool("identity", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	if cfg.Sync.IdentityKey == "" {
		fmt.Fprintf(stderr, "wicketd identity: sync.identity_key is not set; add  identity_key: %s  under sync: in the config\n", identityFile)
		return exitUsage
	}
	path := cfg.Path(cfg.Sync.IdentityKey)
	pub, made, err := ensureIdentity(path)
	if err != nil {
		fmt.Fprintf(stderr, "wicketd identity: %v\n", err)
		return exitUsage
	}
	if made {
		fmt.Fprintf(stdout, "Made the identity key %s (mode 0600).\n", path)
	}
	printEnrolment(stdout, cfg.Gate.ID, cfg.Gate.Venue, pub)
	return exitOK
}
