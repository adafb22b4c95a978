package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// signState is the air-gapped authority's memory of the batches it has
// signed (-state FILE): the last version and its base, so no version is
// signed twice and a delta follows the batch before it. It is JSON,
// replaced atomically after each signed batch is on disk.
type signState struct {
	// Last is the last batch version signed with this file; 0 when none.
	Last uint64 `json:"last_version"`
	// LastBase is Last's base (0: it was a snapshot).
	LastBase uint64 `json:"last_base"`
	// Signed lists every batch signed with this file, oldest first.
	Signed []signedBatch `json:"signed"`
}

type signedBatch struct {
	Version uint64    `json:"version"`
	Base    uint64    `json:"base"`
	Entries int       `json:"entries"`
	Out     string    `json:"out"`
	At      time.Time `json:"signed_at"`
}

// loadState reads a state file; a missing file is an empty state.
func loadState(path string) (*signState, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &signState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("-state: %w", err)
	}
	var st signState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("-state %s: %w (the file is not a wicketctl state file; fix or move it, never delete it to get past this)", path, err)
	}
	return &st, nil
}

// record adds a signed batch and writes the file atomically.
func (st *signState) record(path string, b signedBatch) error {
	st.Last, st.LastBase = b.Version, b.Base
	st.Signed = append(st.Signed, b)
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("-state: %w", err)
	}
	return nil
}

// versionPlan is what the state file and the flags say the next batch is.
type versionPlan struct {
	version, base uint64
}

// plan checks the version and base the operator gave (or left out)
// against the state file. version 0 and base nil mean "not given".
// A snapshot needs snapshot true; base is never silently 0.
func (st *signState) plan(statePath string, version uint64, base *uint64, snapshot bool) (versionPlan, error) {
	p := versionPlan{version: version}
	if p.version == 0 {
		p.version = st.Last + 1
		if base != nil && *base >= p.version {
			p.version = *base + 1
		}
	}
	if p.version <= st.Last {
		return p, usagef("version %d was already used: %s records batch %d as the last one signed, and gates ignore a version that is not above the one they hold; leave -version out to sign %d",
			version, statePath, st.Last, st.Last+1)
	}
	switch {
	case snapshot && base != nil:
		return p, usagef("give -snapshot or -base, not both")
	case snapshot:
		return p, nil
	case base == nil && st.Last == 0:
		return p, usagef("-base is required: %s records no batch yet, so give the version the gates hold now (the last batch published) as -base, or -snapshot -yes to replace every revocation and override they hold", statePath)
	case base == nil:
		p.base = st.Last
	case st.Last != 0 && *base != st.Last:
		return p, usagef("-base %d: %s records batch %d as the last one signed, and a delta must follow the batch before it; leave -base out to follow %d", *base, statePath, st.Last, st.Last)
	default:
		p.base = *base
	}
	if p.base == 0 {
		return p, usagef("-base 0 would make a snapshot that replaces everything gates hold; give -snapshot -yes if that is what you want")
	}
	if p.version <= p.base {
		return p, usagef("-version %d is not above -base %d", p.version, p.base)
	}
	return p, nil
}
