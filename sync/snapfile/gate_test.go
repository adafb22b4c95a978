package snapfile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/internal/testkit"
	"wicket/sync/mqttconn"
	"wicket/sync/mqttsync"
	"wicket/sync/mqtttest"
	"wicket/sync/snapfile"
	"wicket/sync/snapfile/snapfiletest"
	"wicket/sync/wire"
)

// publishRetained publishes messages retained, each acknowledged.
func publishRetained(t testing.TB, broker string, msgs map[string][]byte) {
	t.Helper()
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("authority"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	for topic, raw := range msgs {
		if tok := cl.Publish(topic, 1, true, raw); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
}

// delivery is what one gate took to install a snapshot.
type delivery struct {
	mqttDown  int64 // bytes the broker sent the gate
	httpBytes int64
	took      time.Duration
}

// deliver publishes a snapshot of n entries in parts of per to fleet on
// the broker, as a manifest (the parts on nginx, and on the fallback
// topics, which the gate must not receive) or as MQTT parts, starts a
// gate's sync behind a counting proxy and returns what it took to
// install.
func deliver(t *testing.T, b *mqtttest.Broker, fleet string, n, per int, manifest bool) delivery {
	t.Helper()
	r := newRig(t)
	s := r.snapshot(t, 2, n, per)
	topics := wire.Topics{Fleet: fleet}
	msgs := map[string][]byte{}
	if manifest {
		ng := snapfiletest.StartNginx(t, r.files)
		msgs[snapfile.Topic(fleet)] = r.sign(t, s, ng.URL())
		for i, raw := range s.parts {
			msgs[snapfile.FallbackTopic(fleet, i)] = raw
		}
	} else {
		for i, raw := range s.parts {
			msgs[topics.SnapshotPart(uint32(i))] = raw
		}
		idx, _ := json.Marshal(wire.SnapshotIndex{Version: s.version, Parts: uint32(len(s.parts))})
		msgs[topics.SnapshotIndex()] = idx
	}
	publishRetained(t, b.URL(), msgs)

	px := mqtttest.StartProxy(t, b.Addr())
	conn := mqttconn.Conn{Broker: px.URL(), ClientID: "gate-" + fleet, KeepAlive: 30 * time.Second}
	fe, err := snapfile.New(snapfile.Config{Roots: r.f.Roots(), Dir: t.TempDir(), Jitter: -1, Fallback: &snapfile.Broker{Conn: conn, Fleet: fleet}}, r.st, r.tr, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sy, err := mqttsync.New(mqttsync.Config{
		Conn: conn, Fleet: fleet, Gate: "g1", StatusEvery: time.Hour, Roots: r.f.Roots(),
		Manifest: func(raw []byte) { fe.Offer(raw) },
	}, r.st, r.tr, func() wire.Status { return wire.Status{Gate: "g1"} }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	start := time.Now()
	go func() { sy.Run(ctx); done <- struct{}{} }()
	go func() { fe.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()
	testkit.Eventually(t, fmt.Sprintf("snapshot %d installed over %s", s.version, map[bool]string{true: "a manifest", false: "MQTT parts"}[manifest]), 30*time.Minute, func() bool {
		return r.st.Info().Version == s.version
	})
	d := delivery{mqttDown: px.Stats().BytesDown, took: time.Since(start)}
	if manifest {
		st := settled(t, fe, s.version)
		if st.Phase != snapfile.Done || st.BrokerParts != 0 {
			t.Fatalf("fetch state %+v, want done over HTTP", st)
		}
		d.httpBytes = st.HTTPBytes
	}
	r.installed(t, s)
	return d
}

// TestGateMQTTBytes: a gate that learns of a snapshot by manifest
// receives a few KB over MQTT (the manifest, not the parts, not the
// fallback copies), and installs it from nginx through its own sync.
func TestGateMQTTBytes(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	byManifest := deliver(t, b, "m", 6000, 1000, true)
	byParts := deliver(t, b, "p", 6000, 1000, false)
	t.Logf("6000 entries in 6 parts: MQTT bytes to the gate %d by manifest (+%d over HTTP), %d by MQTT parts", byManifest.mqttDown, byManifest.httpBytes, byParts.mqttDown)
	if byManifest.mqttDown > 10<<10 || byManifest.mqttDown*10 > byParts.mqttDown {
		t.Errorf("MQTT bytes by manifest %d, by parts %d; want under 10 KB and a tenth of the parts' bytes", byManifest.mqttDown, byParts.mqttDown)
	}
}

// TestMeasureMQTTBytes is the benchmark of docs/BENCHMARKS.md: a gate's
// MQTT bytes for a snapshot of WICKET_SNAPFILE_ENTRIES entries (parts of
// 65536, the most a part holds) by manifest and by MQTT parts, and the
// size of the signed manifest of a snapshot ten times as large.
func TestMeasureMQTTBytes(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WICKET_SNAPFILE_ENTRIES"))
	if n <= 0 {
		t.Skip("set WICKET_SNAPFILE_ENTRIES (e.g. 1000000) to measure")
	}
	const per = 65536
	b := mqtttest.StartMosquitto(t)
	var runs [2]delivery
	for i, manifest := range []bool{true, false} {
		runs[i] = deliver(t, b, fmt.Sprintf("f%d", i), n, per, manifest)
	}
	parts := (n + per - 1) / per
	t.Logf("%d entries, %d parts: by manifest: %d MQTT bytes, %d HTTP bytes, %v; by MQTT parts: %d MQTT bytes, %v",
		n, parts, runs[0].mqttDown, runs[0].httpBytes, runs[0].took.Round(time.Millisecond), runs[1].mqttDown, runs[1].took.Round(time.Millisecond))

	// The manifest's size depends only on the part count (every size
	// over 65535 is a 5-byte CBOR integer, every hash 32 bytes).
	r := newRig(t)
	for _, entries := range []int{n, 10 * n} {
		k := (entries + per - 1) / per
		m := snapfile.Manifest{Version: 2, IssuedAt: time.Unix(1700000000, 0), URLs: []string{"https://snapshots.metro.example/wicket/"}}
		for range k {
			m.Parts = append(m.Parts, snapfile.Part{Size: 1 << 20, SHA256: make([]byte, 32)})
		}
		raw, err := m.Sign(r.f.Root)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("signed manifest for %d entries (%d parts): %d bytes", entries, k, len(raw))
	}
}
