package wire

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Shards is how many shards the gates' records are spread over: a gate
// publishes on wicket/<fleet>/gate/<gate>/records/<shard>, with shard =
// Shard(gate), so that N collectors can each subscribe to a slice of the
// shards on a broker without shared subscriptions (NATS). It is part of
// the wire format: every gate and collector of a fleet must agree on it,
// and N collectors can split the records at most Shards ways. 16 allows
// 1, 2, 4, 8 or 16 equal slices, and 3 to 16 collectors that differ by at
// most one shard.
const Shards = 16

// Shard is the shard of a gate's records: FNV-1a (32 bit) of the gate id,
// modulo Shards. It depends on the id alone, so it never changes for a
// gate and every collector computes the same.
func Shard(gate string) int {
	h := fnv.New32a()
	h.Write([]byte(gate))
	return int(h.Sum32() % Shards)
}

// ShardTopic is the records topic of gate on shard: Records(gate) when
// shard is Shard(gate). Any other shard is a topic a collector refuses.
func (t Topics) ShardTopic(gate string, shard int) string {
	return t.gate(gate, "records/"+strconv.Itoa(shard))
}

// ShardRecords is the filter of one shard's records, every gate.
func (t Topics) ShardRecords(shard int) string { return t.gate("+", "records/"+strconv.Itoa(shard)) }

// UnshardedRecords is the filter of the records topic gates used before
// sharding, wicket/<fleet>/gate/+/records.
func (t Topics) UnshardedRecords() string { return t.gate("+", "records") }

// RecordsTopic reads a records topic: the gate, and the shard it names,
// or -1 for the unsharded topic (wicket/<fleet>/gate/<gate>/records). A
// shard level that is not a number from 0 to Shards-1 is an error; the
// shard is not checked against the gate (see CheckShard).
func (t Topics) RecordsTopic(topic string) (gate string, shard int, err error) {
	gate, err = t.GateOf(topic)
	if err != nil {
		return "", 0, err
	}
	rest := strings.TrimPrefix(topic, Root+"/"+t.Fleet+"/gate/"+gate+"/")
	if rest == "records" {
		return gate, -1, nil
	}
	level, ok := strings.CutPrefix(rest, "records/")
	if !ok {
		return "", 0, fmt.Errorf("topic %q is not a records topic", topic)
	}
	n, err := strconv.Atoi(level)
	if err != nil || n < 0 || n >= Shards || strconv.Itoa(n) != level {
		return "", 0, fmt.Errorf("topic %q: shard %q is not a number from 0 to %d", topic, level, Shards-1)
	}
	return gate, n, nil
}

// CheckShard reports an error if shard (from RecordsTopic) is not the
// gate's own: a gate that publishes on another shard would reach another
// collector than the one that serves it.
func CheckShard(gate string, shard int) error {
	if shard >= 0 && shard != Shard(gate) {
		return fmt.Errorf("gate %q published on shard %d; its shard is %d", gate, shard, Shard(gate))
	}
	return nil
}

// Slice is the shards a collector takes when N collectors split them:
// shard s belongs to slice s mod N. Slice{0, 1} (or the zero Slice) is
// every shard.
type Slice struct {
	I, N int
}

// ParseSlice reads "i/N", 0 <= i < N <= Shards (so "0/0" is refused).
func ParseSlice(s string) (Slice, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return Slice{}, fmt.Errorf("%q: want i/N, e.g. 0/2", s)
	}
	sl := Slice{I: i, N: n}
	if sl == (Slice{}) {
		// The zero Slice means every shard only when no slice is given.
		return Slice{}, fmt.Errorf("%q: want i/N with N at least 1 (0/1 takes every shard)", s)
	}
	return sl, sl.Valid()
}

// Valid checks 0 <= I < N <= Shards (the zero Slice is valid: all).
func (s Slice) Valid() error {
	if s == (Slice{}) {
		return nil
	}
	if s.N < 1 || s.N > Shards || s.I < 0 || s.I >= s.N {
		return fmt.Errorf("slice %d/%d: want i/N with 0 <= i < N <= %d", s.I, s.N, Shards)
	}
	return nil
}

// All reports whether s takes every shard.
func (s Slice) All() bool { return s.N <= 1 }

// Has reports whether shard belongs to s. The unsharded topic (shard -1)
// belongs to slice 0, so records of gates from before sharding are
// stored by one collector.
func (s Slice) Has(shard int) bool {
	if s.All() {
		return true
	}
	if shard < 0 {
		return s.I == 0
	}
	return shard%s.N == s.I
}

// String is "i/N", or "all".
func (s Slice) String() string {
	if s.All() {
		return "all"
	}
	return strconv.Itoa(s.I) + "/" + strconv.Itoa(s.N)
}

// Filters are the records filters of the collectors of slice s: AllRecords
// for every shard, else one filter per shard of the slice and, for slice
// 0, the unsharded topic. With group, each goes behind
// $share/<group>/, so several collectors can also share one slice.
func (t Topics) Filters(s Slice, group string) []string {
	var fs []string
	if s.All() {
		fs = []string{t.AllRecords()}
	} else {
		if s.Has(-1) {
			fs = append(fs, t.UnshardedRecords())
		}
		for shard := s.I; shard < Shards; shard += s.N {
			fs = append(fs, t.ShardRecords(shard))
		}
	}
	return shared(fs, group)
}

// EveryFilter is every records filter a collector of any slice
// subscribes to with group: what a collector that changed its slice
// unsubscribes from, less its own.
func (t Topics) EveryFilter(group string) []string {
	fs := []string{t.AllRecords(), t.UnshardedRecords()}
	for shard := range Shards {
		fs = append(fs, t.ShardRecords(shard))
	}
	return shared(fs, group)
}

// shared puts each filter behind $share/<group>/ when group is set.
func shared(fs []string, group string) []string {
	if group != "" {
		for i, f := range fs {
			fs[i] = "$share/" + group + "/" + f
		}
	}
	return fs
}
