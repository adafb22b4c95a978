package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/snapfile"
	"wicket/sync/wire"
	"wicket/verifier"
)

// fleetTrust is what the broker holds on the fleet's retained trust
// topics, as far as the pinned roots verify it: what a gate that reads
// every retained document ends up with.
type fleetTrust struct {
	// KeySet is the retained key set's version; 0 when there is none.
	KeySet uint64
	// Top is the highest batch version retained: a snapshot (one
	// document, or every part of one as its index names) or a delta.
	Top uint64
	// Entries are the statements in force after the retained snapshot
	// and the deltas that follow it, by statement key; nil when not asked
	// for.
	Entries map[string]verifier.Entry
	// Manifest is the version of the snapshot the retained manifest
	// announces (snapfile); 0 when there is none.
	Manifest uint64
	// Unlisted, if set, says why the statements of the broker's snapshot
	// are not known (so what a new one drops cannot be listed).
	Unlisted string
	// Ignored names topics holding documents the roots do not verify.
	Ignored []string
	// raw is every retained message read, by topic.
	raw map[string][]byte
}

// holds reports whether the broker retains exactly these documents of a
// version: the key set, a one-document batch, or every part.
func (ft *fleetTrust) holds(topics wire.Topics, keySet bool, version uint64, docs [][]byte) bool {
	switch {
	case keySet:
		return bytes.Equal(ft.raw[topics.KeySet()], docs[0])
	case len(docs) == 1:
		return bytes.Equal(ft.raw[topics.Delta(version)], docs[0]) || bytes.Equal(ft.raw[topics.Snapshot()], docs[0])
	}
	for i, d := range docs {
		if !bytes.Equal(ft.raw[topics.SnapshotPart(uint32(i))], d) {
			return false
		}
	}
	return true
}

// entryID is what a later statement of the same kind replaces.
func entryID(en verifier.Entry) string {
	return fmt.Sprintf("%d:%x", en.Op, en.Key)
}

// describeEntry prints a statement for an operator: kind, key, expiry.
func describeEntry(en verifier.Entry, now time.Time) string {
	until := "in force until"
	if en.Expires <= now.Unix() {
		until = "expired"
	}
	return fmt.Sprintf("%s %s %s %s", en.Op, hex.EncodeToString(en.Key), until, time.Unix(en.Expires, 0).UTC().Format(time.RFC3339))
}

// readFleetTrust reads the retained trust topics with a short-lived
// subscription and verifies every document. Entries is filled only when
// entries is true (a snapshot is about to replace them): at fleet scale it
// is millions of statements.
func readFleetTrust(cl mqtt.Client, topics wire.Topics, rk verifier.RootKeys, entries bool) (*fleetTrust, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A second of quiet: the broker sends retained messages right after
	// the subscription is acknowledged, and a gap that long means it is done.
	got, err := retained(ctx, cl, topics.AllTrust(), time.Second)
	if err != nil {
		return nil, fmt.Errorf("read what the broker holds: %w", err)
	}
	ft := &fleetTrust{raw: got}
	if entries {
		ft.Entries = map[string]verifier.Entry{}
	}
	var snap *verifier.Batch
	var deltas []*verifier.Batch
	parts := map[uint64][]*verifier.Batch{}
	var index wire.SnapshotIndex
	for topic, raw := range got {
		if len(raw) == 0 {
			continue
		}
		switch {
		case topic == topics.KeySet():
			ks, err := rk.ParseKeySet(raw)
			if err != nil {
				ft.Ignored = append(ft.Ignored, topic)
				continue
			}
			ft.KeySet = ks.Version
		case topic == snapfile.Topic(topics.Fleet):
			m, err := snapfile.Parse(rk, raw)
			if err != nil {
				ft.Ignored = append(ft.Ignored, topic)
				continue
			}
			ft.Manifest = m.Version
		case topic == topics.SnapshotIndex():
			if json.Unmarshal(raw, &index) != nil {
				ft.Ignored = append(ft.Ignored, topic)
			}
		case topic == topics.Snapshot() || strings.HasPrefix(topic, strings.TrimSuffix(topics.AllDeltas(), "+")) ||
			strings.HasPrefix(topic, strings.TrimSuffix(topics.AllSnapshotParts(), "+")):
			b, err := rk.ParseBatch(raw)
			switch {
			case err != nil:
				ft.Ignored = append(ft.Ignored, topic)
			case b.Parts != 0:
				parts[b.Version] = append(parts[b.Version], b)
			case b.Snapshot():
				if snap == nil || b.Version > snap.Version {
					snap = b
				}
			default:
				deltas = append(deltas, b)
			}
		}
	}
	// A multi-part snapshot counts once the index names it and every part
	// is there: before that, gates cannot install it.
	if ps := parts[index.Version]; index.Version != 0 && len(ps) == int(index.Parts) {
		if whole, err := verifier.JoinParts(ps); err == nil && (snap == nil || whole.Version > snap.Version) {
			snap = whole
		}
	}
	if ft.Manifest != 0 && (snap == nil || ft.Manifest > snap.Version) {
		if snap, err = ft.fileSnapshot(ctx, cl, topics, rk, ft.Manifest, entries); err != nil {
			return nil, err
		}
	}
	slices.Sort(ft.Ignored)
	if snap != nil {
		ft.Top = snap.Version
		ft.apply(snap)
	}
	slices.SortFunc(deltas, func(a, b *verifier.Batch) int { return cmp.Compare(a.Version, b.Version) })
	for _, d := range deltas {
		if d.Base == ft.Top {
			ft.apply(d)
		}
		ft.Top = max(ft.Top, d.Version)
	}
	return ft, nil
}

func (ft *fleetTrust) apply(b *verifier.Batch) {
	if ft.Entries == nil {
		return
	}
	if b.Snapshot() {
		clear(ft.Entries)
	}
	for _, en := range b.Entries {
		id := entryID(en)
		if old, ok := ft.Entries[id]; !ok || en.Time >= old.Time {
			ft.Entries[id] = en
		}
	}
}

// errRefused is a publish the fleet would ignore or that would drop
// statements without the operator's yes; nothing was published.
var errRefused = errors.New("refused; nothing published")

// checkKeySet refuses a key set gates would ignore.
func (ft *fleetTrust) checkKeySet(version uint64) error {
	if version <= ft.KeySet {
		return fmt.Errorf("%w: key set version %d is not above version %d the broker holds, and every gate ignores a key set that is not newer than its own; sign it with -version %d or higher",
			errRefused, version, ft.KeySet, ft.KeySet+1)
	}
	return nil
}

// checkBatch refuses a batch gates would ignore (a version not above the
// broker's) or hold forever (a delta that does not follow the broker's
// latest), then takes it as the broker's latest.
func (ft *fleetTrust) checkBatch(version, base uint64) error {
	switch {
	case version <= ft.Top:
		return fmt.Errorf("%w: batch version %d is not above version %d the broker holds, and every gate drops such a batch unread; sign it again with -version %d or higher",
			errRefused, version, ft.Top, ft.Top+1)
	case base != 0 && base != ft.Top:
		return fmt.Errorf("%w: delta %d follows version %d, but the broker's latest is %d, so gates would wait for %d forever; sign it again with -base %d",
			errRefused, version, base, ft.Top, base, ft.Top)
	}
	ft.Top = version
	return nil
}

// maxDropsShown bounds the statements a refused snapshot lists.
const maxDropsShown = 20

// drops lists the statements in force at the broker that a snapshot of
// entries would remove before they expire (at now).
func (ft *fleetTrust) drops(entries []verifier.Entry, now time.Time) []verifier.Entry {
	keep := make(map[string]bool, len(entries))
	for _, en := range entries {
		keep[entryID(en)] = true
	}
	var out []verifier.Entry
	for id, en := range ft.Entries {
		if !keep[id] && en.Expires > now.Unix() {
			out = append(out, en)
		}
	}
	slices.SortFunc(out, func(a, b verifier.Entry) int { return strings.Compare(entryID(a), entryID(b)) })
	return out
}

// confirmDrops shows what a snapshot drops and asks before it does so:
// yes (-yes) or "yes" typed on stdin. Nothing to drop needs no answer.
func confirmDrops(e env, what string, drops []verifier.Entry, yes bool) error {
	if len(drops) == 0 {
		return nil
	}
	now := time.Now()
	fmt.Fprintf(e.stdout, "%s drops %d statement(s):\n", what, len(drops))
	for i, en := range drops {
		if i == maxDropsShown {
			fmt.Fprintf(e.stdout, "  ... and %d more\n", len(drops)-maxDropsShown)
			break
		}
		fmt.Fprintf(e.stdout, "  %s\n", describeEntry(en, now))
	}
	if yes {
		return nil
	}
	fmt.Fprint(e.stdout, "type yes to drop them: ")
	var answer string
	if _, err := fmt.Fscanln(e.stdin, &answer); err != nil && !errors.Is(err, io.EOF) {
		answer = ""
	}
	if strings.TrimSpace(answer) != "yes" {
		fmt.Fprintln(e.stdout)
		return fmt.Errorf("%w: %s would drop %d statement(s) (listed above); run again with -yes to drop them, or include them",
			errRefused, what, len(drops))
	}
	return nil
}

// fileSnapshot is the snapshot a manifest announces, read from its
// fallback parts on the broker: whole when entries are wanted, else only
// its version. When its parts are not all there (published with
// -no-fallback) Unlisted says so and the snapshot counts with no entries.
func (ft *fleetTrust) fileSnapshot(ctx context.Context, cl mqtt.Client, topics wire.Topics, rk verifier.RootKeys, version uint64, entries bool) (*verifier.Batch, error) {
	if !entries {
		return &verifier.Batch{Version: version}, nil
	}
	got, err := retained(ctx, cl, snapfile.AllFallback(topics.Fleet), time.Second)
	if err != nil {
		return nil, fmt.Errorf("read the fallback parts: %w", err)
	}
	var parts []*verifier.Batch
	for _, raw := range got {
		if b, err := rk.ParseBatch(raw); err == nil && b.Version == version {
			parts = append(parts, b)
		}
	}
	if len(parts) == 1 && parts[0].Parts == 0 {
		return parts[0], nil
	}
	whole, err := verifier.JoinParts(parts)
	if err != nil {
		ft.Unlisted = fmt.Sprintf("the broker's manifest announces snapshot %d, but its fallback parts are not all retained (published with -no-fallback?): what a new snapshot drops cannot be listed", version)
		return &verifier.Batch{Version: version}, nil
	}
	return whole, nil
}
