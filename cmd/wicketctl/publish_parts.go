package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/wire"
	"wicket/verifier"
)

// partSet is a verified multi-part snapshot on disk.
type partSet struct {
	dir      string
	files    []string // by part number
	version  uint64
	issuedAt time.Time
	single   string // the directory holds a one-document snapshot instead
	rk       verifier.RootKeys
}

func (ps *partSet) count() int {
	if ps == nil {
		return 0
	}
	return len(ps.files)
}

// readPartSet verifies every document in dir: all parts of one snapshot,
// each once, none missing (or exactly one whole snapshot).
func readPartSet(e env, rk verifier.RootKeys, dir, prog string) (*partSet, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.cose"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("-snapshot %s: no .cose documents", dir)
	}
	slices.Sort(files)
	ps := &partSet{dir: dir, rk: rk}
	bar := newProgress(e.stderr, prog, "verifying", "documents", int64(len(files)))
	defer bar.finish()
	for _, f := range files {
		b, err := readPart(rk, f)
		if err != nil {
			return nil, err
		}
		bar.add(1)
		if b.Parts == 0 {
			if len(files) != 1 || !b.Snapshot() {
				return nil, fmt.Errorf("-snapshot %s: %s is a whole batch, not a part; give it with -batch", dir, f)
			}
			ps.single = f
			return ps, nil
		}
		if ps.files == nil {
			ps.files, ps.version, ps.issuedAt = make([]string, b.Parts), b.Version, b.IssuedAt
		}
		switch {
		case b.Version != ps.version || !b.IssuedAt.Equal(ps.issuedAt) || int(b.Parts) != len(ps.files):
			return nil, fmt.Errorf("-snapshot %s: %s is part of snapshot %d (%d parts, issued %v), others of %d (%d parts, issued %v)",
				dir, f, b.Version, b.Parts, b.IssuedAt.UTC(), ps.version, len(ps.files), ps.issuedAt.UTC())
		case ps.files[b.Part] != "":
			return nil, fmt.Errorf("-snapshot %s: part %d twice: %s and %s", dir, b.Part, ps.files[b.Part], f)
		}
		ps.files[b.Part] = f
	}
	for i, f := range ps.files {
		if f == "" {
			return nil, fmt.Errorf("-snapshot %s: part %d of %d missing", dir, i, len(ps.files))
		}
	}
	return ps, nil
}

// join reads the parts again and joins them into the whole snapshot.
func (ps *partSet) join() (*verifier.Batch, error) {
	parts := make([]*verifier.Batch, 0, len(ps.files))
	for _, f := range ps.files {
		b, err := readPart(ps.rk, f)
		if err != nil {
			return nil, err
		}
		parts = append(parts, b)
	}
	return verifier.JoinParts(parts)
}

func readPart(rk verifier.RootKeys, path string) (*verifier.Batch, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := rk.ParseBatch(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// publishState records how far a publish of a snapshot got, in the
// snapshot's directory, so a rerun resumes after the last part the broker
// acknowledged. It resumes only with the same broker URL and fleet: parts
// acknowledged by one broker say nothing about another.
type publishState struct {
	Broker   string `json:"broker"`
	Fleet    string `json:"fleet"`
	Version  uint64 `json:"version"`
	IssuedAt int64  `json:"issued_at"`
	Parts    int    `json:"parts"`
	Next     int    `json:"next"`
}

const publishStateName = ".publish-state.json"

// publish sends the parts in order, retained, each acknowledged by the
// broker before the next and recorded in the state file; then it clears
// what the snapshot supersedes (extra part topics of a larger earlier
// snapshot, an older one-document snapshot, older deltas) and records the
// part count on the index topic.
func (ps *partSet) publish(e env, cl mqtt.Client, broker string, topics wire.Topics, prog string) error {
	statePath := filepath.Join(ps.dir, publishStateName)
	want := publishState{Broker: broker, Fleet: topics.Fleet, Version: ps.version, IssuedAt: ps.issuedAt.Unix(), Parts: len(ps.files)}
	st := want
	if raw, err := os.ReadFile(statePath); err == nil {
		var old publishState
		if json.Unmarshal(raw, &old) == nil && old.Next > 0 && old.Next <= old.Parts {
			cmp := old
			cmp.Next = 0
			if cmp == want {
				st.Next = old.Next
				fmt.Fprintf(e.stdout, "resuming snapshot %d: parts 0 to %d of %d were published before\n", ps.version, old.Next-1, len(ps.files))
			}
		}
	}
	bar := newProgress(e.stderr, prog, "publishing", "parts", int64(len(ps.files)))
	bar.add(int64(st.Next))
	for i := st.Next; i < len(ps.files); i++ {
		raw, err := os.ReadFile(ps.files[i])
		if err != nil {
			return err
		}
		topic := topics.SnapshotPart(uint32(i))
		if err := waitToken(cl.Publish(topic, 1, true, raw)); err != nil {
			bar.finish()
			return fmt.Errorf("publish part %d of %d (%s): %w; run the same command again to resume", i, len(ps.files), topic, err)
		}
		st.Next = i + 1
		b, _ := json.Marshal(st)
		if err := writeFileAtomic(statePath, b, 0o644); err != nil {
			return fmt.Errorf("record progress: %w", err)
		}
		bar.add(1)
	}
	bar.finish()
	fmt.Fprintf(e.stdout, "snapshot %d: %d parts → %s\n", ps.version, len(ps.files), topics.AllSnapshotParts())
	if err := clearParts(e, cl, topics, uint32(len(ps.files)), ps.version); err != nil {
		return err
	}
	idx, _ := json.Marshal(wire.SnapshotIndex{Version: ps.version, Parts: uint32(len(ps.files))})
	if err := waitToken(cl.Publish(topics.SnapshotIndex(), 1, true, idx)); err != nil {
		return fmt.Errorf("publish %s: %w", topics.SnapshotIndex(), err)
	}
	if err := clearOlderSnapshot(e, cl, ps.rk, topics, ps.version); err != nil {
		return err
	}
	if err := clearManifest(e, cl, ps.rk, topics, ps.version); err != nil {
		return err
	}
	if err := clearDeltas(e, cl, topics, ps.version); err != nil {
		return err
	}
	if err := os.Remove(statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// clearParts removes the retained part topics numbered from on that the
// last complete multi-part snapshot used (from the index topic), once a
// snapshot of the given version supersedes them.
func clearParts(e env, cl mqtt.Client, topics wire.Topics, from uint32, version uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := retained(ctx, cl, topics.SnapshotIndex(), 500*time.Millisecond)
	if err != nil {
		return err
	}
	var idx wire.SnapshotIndex
	raw := got[topics.SnapshotIndex()]
	if len(raw) == 0 || json.Unmarshal(raw, &idx) != nil || idx.Version >= version {
		return nil
	}
	n := 0
	for p := from; p < idx.Parts; p++ {
		if err := waitToken(cl.Publish(topics.SnapshotPart(p), 1, true, []byte{})); err != nil {
			return fmt.Errorf("clear %s: %w", topics.SnapshotPart(p), err)
		}
		n++
	}
	if from == 0 {
		if err := waitToken(cl.Publish(topics.SnapshotIndex(), 1, true, []byte{})); err != nil {
			return fmt.Errorf("clear %s: %w", topics.SnapshotIndex(), err)
		}
	}
	if n > 0 {
		fmt.Fprintf(e.stdout, "cleared %d retained parts of snapshot %d, superseded by %d\n", n, idx.Version, version)
	}
	return nil
}

// clearOlderSnapshot removes a retained one-document snapshot older than
// version.
func clearOlderSnapshot(e env, cl mqtt.Client, rk verifier.RootKeys, topics wire.Topics, version uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := retained(ctx, cl, topics.Snapshot(), 500*time.Millisecond)
	if err != nil {
		return err
	}
	raw := got[topics.Snapshot()]
	if len(raw) == 0 {
		return nil
	}
	if b, err := rk.ParseBatch(raw); err == nil && b.Version >= version {
		return nil
	}
	if err := waitToken(cl.Publish(topics.Snapshot(), 1, true, []byte{})); err != nil {
		return fmt.Errorf("clear %s: %w", topics.Snapshot(), err)
	}
	fmt.Fprintf(e.stdout, "cleared the retained one-document snapshot, superseded by %d\n", version)
	return nil
}
