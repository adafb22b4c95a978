package wire

import (
	"fmt"
	"slices"
	"testing"
)

// The shard of a gate is part of the wire format: these values must
// never change, or gates and collectors of different versions disagree.
func TestShardStable(t *testing.T) {
	for _, tc := range []struct {
		gate string
		want int
	}{{"G1", 5}, {"G2", 12}, {"L2-S14-G03", 15}, {"a", 12}} {
		if got := Shard(tc.gate); got != tc.want {
			t.Errorf("Shard(%q) = %d; want %d", tc.gate, got, tc.want)
		}
	}
	// 1600 gate ids spread over every shard, none with more than twice
	// its share.
	n := make([]int, Shards)
	for i := range 1600 {
		n[Shard(fmt.Sprintf("L2-S%02d-G%02d", i/20, i%20))]++
	}
	if lo, hi := slices.Min(n), slices.Max(n); lo == 0 || hi > 2*1600/Shards {
		t.Errorf("1600 gates per shard: %v; want every shard used, none over %d", n, 2*1600/Shards)
	}
}

func TestRecordsTopic(t *testing.T) {
	tp := Topics{Fleet: "f"}
	for _, tc := range []struct {
		topic   string
		gate    string
		shard   int
		wantErr bool
	}{
		{tp.Records("G1"), "G1", 5, false},
		{"wicket/f/gate/G1/records", "G1", -1, false},
		{"wicket/f/gate/G1/records/12", "G1", 12, false},
		{"wicket/f/gate/G1/records/16", "", 0, true},
		{"wicket/f/gate/G1/records/-1", "", 0, true},
		{"wicket/f/gate/G1/records/05", "", 0, true},
		{"wicket/f/gate/G1/records/x", "", 0, true},
		{"wicket/f/gate/G1/records/1/2", "", 0, true},
		{"wicket/f/gate/G1/ack", "", 0, true},
		{"wicket/g/gate/G1/records/5", "", 0, true},
	} {
		gate, shard, err := tp.RecordsTopic(tc.topic)
		if (err != nil) != tc.wantErr || (err == nil && (gate != tc.gate || shard != tc.shard)) {
			t.Errorf("RecordsTopic(%q) = %q, %d, %v; want %q, %d, error %v", tc.topic, gate, shard, err, tc.gate, tc.shard, tc.wantErr)
		}
	}
	if err := CheckShard("G1", 5); err != nil {
		t.Errorf("CheckShard(G1, 5) = %v; want nil", err)
	}
	if err := CheckShard("G1", -1); err != nil {
		t.Errorf("CheckShard(G1, unsharded) = %v; want nil", err)
	}
	if err := CheckShard("G1", 6); err == nil {
		t.Error("CheckShard(G1, 6) = nil; want an error (G1's shard is 5)")
	}
}

func TestSlices(t *testing.T) {
	tp := Topics{Fleet: "f"}
	for _, tc := range []struct {
		in      string
		wantErr bool
		filters []string
	}{
		{"0/1", false, []string{"wicket/f/gate/+/records/#"}},
		{"0/4", false, []string{"wicket/f/gate/+/records", "wicket/f/gate/+/records/0", "wicket/f/gate/+/records/4", "wicket/f/gate/+/records/8", "wicket/f/gate/+/records/12"}},
		{"2/3", false, []string{"wicket/f/gate/+/records/2", "wicket/f/gate/+/records/5", "wicket/f/gate/+/records/8", "wicket/f/gate/+/records/11", "wicket/f/gate/+/records/14"}},
		{"15/16", false, []string{"wicket/f/gate/+/records/15"}},
		{"2/2", true, nil},
		{"0/0", true, nil},
		{"0/17", true, nil},
		{"-1/2", true, nil},
		{"1", true, nil},
		{"a/b", true, nil},
	} {
		s, err := ParseSlice(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseSlice(%q) = %v, %v; want error %v", tc.in, s, err, tc.wantErr)
			continue
		}
		if err == nil && !slices.Equal(tp.Filters(s, ""), tc.filters) {
			t.Errorf("Filters(%q) = %q; want %q", tc.in, tp.Filters(s, ""), tc.filters)
		}
	}
	// Every shard, and the unsharded topic, belongs to exactly one slice
	// of N, for every N.
	for n := 1; n <= Shards; n++ {
		for shard := -1; shard < Shards; shard++ {
			owners := 0
			for i := range n {
				if (Slice{I: i, N: n}).Has(shard) {
					owners++
				}
			}
			if owners != 1 {
				t.Errorf("shard %d has %d owners among %d slices; want 1", shard, owners, n)
			}
		}
	}
	if got := tp.Filters(Slice{I: 1, N: 8}, "c"); !slices.Equal(got, []string{"$share/c/wicket/f/gate/+/records/1", "$share/c/wicket/f/gate/+/records/9"}) {
		t.Errorf("Filters(1/8, group c) = %q", got)
	}
	if got := tp.SharedRecords("c"); got != "$share/c/wicket/f/gate/+/records/#" {
		t.Errorf("SharedRecords(c) = %q", got)
	}
}

func FuzzRecordsTopic(f *testing.F) {
	tp := Topics{Fleet: "f"}
	for _, s := range []string{tp.Records("G1"), "wicket/f/gate/G1/records", "wicket/f/gate/G1/records/99", "wicket/f/gate//records/1", "wicket/f/gate/G1/records/+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		gate, shard, err := tp.RecordsTopic(topic)
		if err != nil {
			return
		}
		want := "wicket/f/gate/" + gate + "/records"
		if shard >= 0 {
			want = tp.ShardTopic(gate, shard)
		}
		if want != topic || shard >= Shards {
			t.Fatalf("RecordsTopic(%q) = %q, %d: does not rebuild the topic", topic, gate, shard)
		}
	})
}
