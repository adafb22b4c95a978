package snapfile_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/sync/mqttconn"
	"wicket/sync/mqtttest"
	"wicket/sync/snapfile"
	"wicket/sync/snapfile/snapfiletest"
	"wicket/sync/store"
	"wicket/sync/trust"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// rig is a gate's store, verifier and trust Applier, and a directory of
// snapshot files as wicketctl writes them.
type rig struct {
	f     *verifiertest.Fixture
	st    *store.Store
	tr    *trust.Applier
	files string
	log   *testkit.Buffer
	dl    string // the Fetcher's download directory
}

func newRig(t *testing.T) *rig {
	t.Helper()
	f := verifiertest.New(t)
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "w.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	v, err := verifier.New(f.TClock, st, &f.Policy)
	if err != nil {
		t.Fatal(err)
	}
	f.Verifier = v
	return &rig{f: f, st: st, tr: trust.New(f.Roots(), st, v, slog.New(slog.DiscardHandler)), files: t.TempDir(), log: &testkit.Buffer{}}
}

// snap is one signed snapshot: its parts and manifest.
type snap struct {
	version  uint64
	parts    [][]byte
	entries  []verifier.Entry
	manifest snapfile.Manifest
}

// snapshot signs a snapshot of n revocations in parts of per entries
// and writes each part into the rig's file directory under its hash.
func (r *rig) snapshot(t testing.TB, version uint64, n, per int) *snap {
	t.Helper()
	entries := verifiertest.Revocations(n)
	for i := range entries {
		entries[i].Key[6] = byte(version) // each version revokes other ids
	}
	s := &snap{version: version, entries: entries, manifest: snapfile.Manifest{Version: version, IssuedAt: verifiertest.Epoch.Add(-time.Hour)}}
	count := (n + per - 1) / per
	for p := range count {
		b := verifier.Batch{Version: version, IssuedAt: s.manifest.IssuedAt, Entries: entries[p*per : min((p+1)*per, n)]}
		if count > 1 {
			b.Part, b.Parts = uint32(p), uint32(count)
		}
		raw, err := verifier.SignBatch(r.f.Root, b)
		if err != nil {
			t.Fatal(err)
		}
		part := snapfile.PartOf(raw)
		if err := os.WriteFile(filepath.Join(r.files, part.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		s.parts = append(s.parts, raw)
		s.manifest.Parts = append(s.manifest.Parts, part)
	}
	return s
}

// sign signs the manifest of s with the given base URLs.
func (r *rig) sign(t testing.TB, s *snap, urls ...string) []byte {
	t.Helper()
	m := s.manifest
	m.URLs = urls
	raw, err := m.Sign(r.f.Root)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// fetcher starts a Fetcher with no jitter and short retries.
func (r *rig) fetcher(t *testing.T, fb snapfile.Fallback) *snapfile.Fetcher {
	t.Helper()
	r.dl = t.TempDir()
	fe, err := snapfile.New(snapfile.Config{
		Roots: r.f.Roots(), Dir: r.dl, Jitter: -1, RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		FallbackWait: 20 * time.Second, Fallback: fb,
	}, r.st, r.tr, slog.New(slog.NewTextHandler(r.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runFetcher(t, fe)
	return fe
}

// runFetcher runs fe until the test ends and returns the context it
// runs in.
func runFetcher(t *testing.T, fe *snapfile.Fetcher) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fe.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ctx
}

// settled waits until the fetch of version ends, done or failed.
func settled(t *testing.T, fe *snapfile.Fetcher, version uint64) snapfile.State {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("the fetch of snapshot %d to end", version), 60*time.Second, func() bool {
		s := fe.State()
		return s.Version == version && (s.Phase == snapfile.Done || s.Phase == snapfile.Failed)
	})
	return fe.State()
}

// installed checks that snapshot s is in force: its version, and the
// first and last of its revocations.
func (r *rig) installed(t *testing.T, s *snap) {
	t.Helper()
	if v := r.st.Info().Version; v != s.version {
		t.Fatalf("installed version %d, want %d", v, s.version)
	}
	for _, e := range []verifier.Entry{s.entries[0], s.entries[len(s.entries)-1]} {
		if ok, err := r.st.Revoked(e.Key); err != nil || !ok {
			t.Fatalf("Revoked(%x) = %v, %v after snapshot %d", e.Key, ok, err, s.version)
		}
	}
}

func TestFetchFromNginx(t *testing.T) {
	r := newRig(t)
	s := r.snapshot(t, 3, 2000, 600)
	ng := snapfiletest.StartNginx(t, r.files)
	fe := r.fetcher(t, nil)
	if ok, err := fe.Offer(r.sign(t, s, ng.URL())); !ok || err != nil {
		t.Fatalf("Offer = %v, %v", ok, err)
	}
	st := settled(t, fe, 3)
	if st.Phase != snapfile.Done || st.Have != 4 || st.BrokerParts != 0 {
		t.Fatalf("state %+v, want done with 4 parts over HTTP", st)
	}
	if st.HTTPBytes != s.manifest.Total() {
		t.Errorf("HTTP bytes %d, want exactly the parts' %d", st.HTTPBytes, s.manifest.Total())
	}
	r.installed(t, s)
	if n := strings.Count(ng.AccessLog(), "GET /"); n != 4 {
		t.Errorf("nginx served %d requests, want 4:\n%s", n, ng.AccessLog())
	}
	// The retained manifest again (a resubscription): nothing to do.
	if ok, err := fe.Offer(r.sign(t, s, ng.URL())); ok || err != nil {
		t.Errorf("the same manifest again: Offer = %v, %v; want not taken, no error", ok, err)
	}
}

// TestResumeAfterCut: a download cut mid-part continues from the byte it
// reached (a Range request, 206 from nginx), so the bytes over the wire
// are the part once, not once and a half.
func TestResumeAfterCut(t *testing.T) {
	r := newRig(t)
	s := r.snapshot(t, 4, 30000, 15000) // two parts of about 330 KB
	ng := snapfiletest.StartNginx(t, r.files)
	px := snapfiletest.StartProxy(t, ng.Addr())
	cutAt := s.manifest.Parts[0].Size / 2
	px.CutAfter(cutAt)
	fe := r.fetcher(t, nil)
	if _, err := fe.Offer(r.sign(t, s, px.URL())); err != nil {
		t.Fatal(err)
	}
	st := settled(t, fe, 4)
	if st.Phase != snapfile.Done {
		t.Fatalf("state %+v, want done", st)
	}
	r.installed(t, s)
	down, conns, cuts := px.Stats()
	if cuts != 1 || conns < 2 {
		t.Fatalf("proxy: %d cuts over %d connections; want the one cut and a new connection after it", cuts, conns)
	}
	if st.HTTPBytes != s.manifest.Total() {
		t.Errorf("body bytes received %d, want %d: a restart would have fetched the first half again", st.HTTPBytes, s.manifest.Total())
	}
	// Headers are a few hundred bytes per response; a restart would add
	// the cut half (about 165 KB).
	if over := down - s.manifest.Total(); over < 0 || over > 4096 {
		t.Errorf("%d bytes through the proxy for %d bytes of parts: %d over", down, s.manifest.Total(), over)
	}
	if !strings.Contains(ng.AccessLog(), "\" 206 ") {
		t.Errorf("no 206 (range) response in nginx's log:\n%s", ng.AccessLog())
	}
	if !strings.Contains(r.log.String(), "interrupted; retrying") {
		t.Errorf("the cut is not in the log:\n%s", r.log.String())
	}
}

// TestRestartResumes: what an earlier run left in the download directory
// is used: half a part is completed with a Range request, a whole part
// that does not match is fetched again.
func TestRestartResumes(t *testing.T) {
	r := newRig(t)
	s := r.snapshot(t, 4, 30000, 15000)
	ng := snapfiletest.StartNginx(t, r.files)
	fe := r.fetcher(t, nil)
	half := s.parts[0][:len(s.parts[0])/2]
	if err := os.WriteFile(filepath.Join(r.dl, s.manifest.Parts[0].Name()), half, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), s.parts[1]...)
	bad[10] ^= 1
	if err := os.WriteFile(filepath.Join(r.dl, s.manifest.Parts[1].Name()), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	fe.Offer(r.sign(t, s, ng.URL()))
	st := settled(t, fe, 4)
	if st.Phase != snapfile.Done {
		t.Fatalf("state %+v, want done", st)
	}
	r.installed(t, s)
	if want := s.manifest.Total() - int64(len(half)); st.HTTPBytes != want {
		t.Errorf("HTTP bytes %d, want %d: the half already there should not come again", st.HTTPBytes, want)
	}
	log := ng.AccessLog()
	if !strings.Contains(log, "/"+s.manifest.Parts[0].Name()+" HTTP/1.1\" 206 ") || !strings.Contains(log, "/"+s.manifest.Parts[1].Name()+" HTTP/1.1\" 200 ") {
		t.Errorf("want a 206 for part 0 and a 200 for part 1:\n%s", log)
	}
}

// TestWrongHash: a URL that serves other bytes under a part's name (a
// bad mirror, a tampered file) is refused on the manifest's hash before
// the Applier sees it; with no other source, the gate keeps its data
// and says why.
func TestWrongHash(t *testing.T) {
	r := newRig(t)
	old := r.snapshot(t, 5, 100, 100)
	ng := snapfiletest.StartNginx(t, r.files)
	fe := r.fetcher(t, nil)
	fe.Offer(r.sign(t, old, ng.URL()))
	if st := settled(t, fe, 5); st.Phase != snapfile.Done {
		t.Fatalf("snapshot 5: %+v", st)
	}
	s := r.snapshot(t, 6, 300, 100)
	// Part 1's file with one byte changed: same size, other content.
	bad := append([]byte(nil), s.parts[1]...)
	bad[len(bad)/2] ^= 1
	if err := os.WriteFile(filepath.Join(r.files, s.manifest.Parts[1].Name()), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	fe.Offer(r.sign(t, s, ng.URL()))
	st := settled(t, fe, 6)
	if st.Phase != snapfile.Failed || !strings.Contains(st.Reason, snapfile.ErrHash.Error()) || !strings.Contains(st.Reason, "part 1") {
		t.Fatalf("state %+v; want failed on part 1's hash", st)
	}
	r.installed(t, old)
	if ts := r.tr.Stats(); ts.Refused != 0 {
		t.Errorf("the Applier saw the wrong file (refused %d: %s); the hash should have stopped it", ts.Refused, ts.LastRefusal)
	}
	if strings.Count(ng.AccessLog(), "/"+s.manifest.Parts[1].Name()) != 1 {
		t.Errorf("the wrong file was fetched more than once (same URL, same bytes):\n%s", ng.AccessLog())
	}
}

// TestOversizeRefused: a server that sends more than the manifest's size
// is cut off at the size, not read to its end.
func TestOversizeRefused(t *testing.T) {
	r := newRig(t)
	s := r.snapshot(t, 2, 100, 100)
	big := make([]byte, 4<<20)
	var sent atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n, _ := w.Write(big) // no Content-Length: chunked, so only reading finds out
		sent.Add(int64(n))
	}))
	t.Cleanup(hs.Close)
	fe := r.fetcher(t, nil)
	fe.Offer(r.sign(t, s, hs.URL))
	st := settled(t, fe, 2)
	if st.Phase != snapfile.Failed || !strings.Contains(st.Reason, snapfile.ErrOversize.Error()) {
		t.Fatalf("state %+v; want failed as oversize", st)
	}
	if st.HTTPBytes > s.manifest.Total()+1 {
		t.Errorf("read %d bytes for a part of %d", st.HTTPBytes, s.manifest.Total())
	}
	if v := r.st.Info().Version; v != 0 {
		t.Errorf("installed version %d after a refused snapshot", v)
	}
}

// TestUnreachableFallsBackToBroker: with no URL answering, the parts come
// from the broker's fallback topics, each checked against the manifest,
// and the status says why.
func TestUnreachableFallsBackToBroker(t *testing.T) {
	r := newRig(t)
	s := r.snapshot(t, 8, 3000, 1000)
	b := withFallback(t, s)
	dead := closedPort(t)
	fe := r.fetcher(t, &snapfile.Broker{Conn: mqttconn.Conn{Broker: b.URL(), ClientID: "gate-1"}, Fleet: "f1"})
	fe.Offer(r.sign(t, s, dead, dead+"mirror/"))
	st := settled(t, fe, 8)
	if st.Phase != snapfile.Done || st.BrokerParts != 3 || !strings.Contains(st.Reason, "no URL delivered part 0") || !strings.Contains(st.Reason, "connection refused") {
		t.Fatalf("state %+v; want done from the broker, saying why", st)
	}
	if !strings.Contains(st.String(), "3 from the broker") {
		t.Errorf("status line %q does not say the parts came from the broker", st.String())
	}
	r.installed(t, s)
	if !strings.Contains(r.log.String(), "taking its parts from the broker") {
		t.Errorf("the fallback is not in the log:\n%s", r.log.String())
	}
}

// TestForgedAndReplayedManifest: a manifest no root signed, and an older
// one signed, are refused with their reason; the gate keeps the
// snapshot it has and fetches nothing.
func TestForgedAndReplayedManifest(t *testing.T) {
	r := newRig(t)
	s1 := r.snapshot(t, 10, 100, 100)
	s2 := r.snapshot(t, 11, 100, 100)
	ng := snapfiletest.StartNginx(t, r.files)
	fe := r.fetcher(t, nil)
	old := r.sign(t, s1, ng.URL())
	leftover := filepath.Join(r.dl, strings.Repeat("ab", 32)) // an earlier manifest's unfinished download
	if err := os.WriteFile(leftover, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	fe.Offer(old)
	settled(t, fe, 10)
	if des, _ := os.ReadDir(r.dl); len(des) != 0 {
		t.Errorf("download directory holds %d files after the snapshot was installed, want none", len(des))
	}
	fe.Offer(r.sign(t, s2, ng.URL()))
	settled(t, fe, 11)
	r.installed(t, s2)
	requests := strings.Count(ng.AccessLog(), "GET /")

	stranger, _ := decoder.NewSigner(verifiertest.EdKey(9), nil)
	m := s2.manifest
	m.Version, m.URLs = 12, []string{ng.URL()}
	forged, _ := m.Sign(stranger)
	if ok, err := fe.Offer(forged); ok || !errors.Is(err, verifier.ErrTrustSignature) {
		t.Errorf("forged manifest: Offer = %v, %v; want refused as unsigned", ok, err)
	}
	if ok, err := fe.Offer(old); ok || !errors.Is(err, snapfile.ErrReplayed) {
		t.Errorf("replayed manifest 10: Offer = %v, %v; want refused as replayed", ok, err)
	}
	st := fe.State()
	if st.Refused != 2 || !strings.Contains(st.LastRefusal, "manifest 10: replayed") || st.Version != 11 || st.Phase != snapfile.Done {
		t.Errorf("state %+v; want 2 refused, the last as a replay, snapshot 11 still done", st)
	}
	r.installed(t, s2)
	if n := strings.Count(ng.AccessLog(), "GET /"); n != requests {
		t.Errorf("%d requests after the refused manifests, want none", n-requests)
	}
}

// TestJitter: the download waits a random time up to Jitter after the
// manifest, on the injected clock, before its first request.
func TestJitter(t *testing.T) {
	r := newRig(t)
	s := r.snapshot(t, 2, 100, 100)
	var requests atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		requests.Add(1)
		http.ServeFile(w, req, filepath.Join(r.files, filepath.Base(req.URL.Path)))
	}))
	t.Cleanup(hs.Close)
	fc := clockwork.NewFakeClock()
	fe, err := snapfile.New(snapfile.Config{
		Roots: r.f.Roots(), Dir: t.TempDir(), Jitter: time.Hour, Clock: fc,
		Rand: func(n int64) int64 { return n - 1 },
	}, r.st, r.tr, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := runFetcher(t, fe)
	fe.Offer(r.sign(t, s, hs.URL))
	if err := fc.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fc.Advance(time.Hour - 2*time.Nanosecond)
	if n := requests.Load(); n != 0 || fe.State().Phase != snapfile.Waiting {
		t.Fatalf("%d requests, phase %v before the jitter passed", n, fe.State().Phase)
	}
	fc.Advance(time.Nanosecond)
	st := settled(t, fe, 2)
	if st.Phase != snapfile.Done || requests.Load() != 1 {
		t.Fatalf("after the jitter: %+v, %d requests", st, requests.Load())
	}
}

// closedPort is an http:// base URL where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/"
}

// TestRestartFetchesStoredManifest: a manifest taken before a restart is
// fetched by the next run without the broker sending it again.
func TestRestartFetchesStoredManifest(t *testing.T) {
	r := newRig(t)
	s := r.snapshot(t, 6, 200, 100)
	ng := snapfiletest.StartNginx(t, r.files)
	first, err := snapfile.New(snapfile.Config{Roots: r.f.Roots(), Dir: t.TempDir(), Jitter: time.Hour, Clock: clockwork.NewFakeClock()}, r.st, r.tr, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := first.Offer(r.sign(t, s, ng.URL())); !ok || err != nil {
		t.Fatalf("Offer = %v, %v", ok, err)
	}
	// The first run never gets past its jitter: the gate restarts.
	second := r.fetcher(t, nil)
	if st := settled(t, second, 6); st.Phase != snapfile.Done {
		t.Fatalf("after the restart: %+v, want done", st)
	}
	r.installed(t, s)
}

// withFallback starts Mosquitto with the parts of s retained on fleet
// f1's fallback topics.
func withFallback(t *testing.T, s *snap) *mqtttest.Broker {
	t.Helper()
	b := mqtttest.StartMosquitto(t)
	msgs := map[string][]byte{}
	for i, raw := range s.parts {
		msgs[snapfile.FallbackTopic("f1", i)] = raw
	}
	publishRetained(t, b.URL(), msgs)
	return b
}

// TestMixedSources: the parts a URL delivers come from it, the rest from
// the broker once the URL fails (404 is not retried), and the snapshot
// is whole.
func TestMixedSources(t *testing.T) {
	r := newRig(t)
	s := r.snapshot(t, 7, 400, 100)
	for _, p := range s.manifest.Parts[2:] {
		os.Remove(filepath.Join(r.files, p.Name()))
	}
	ng := snapfiletest.StartNginx(t, r.files)
	b := withFallback(t, s)
	fe := r.fetcher(t, &snapfile.Broker{Conn: mqttconn.Conn{Broker: b.URL(), ClientID: "gate-1"}, Fleet: "f1"})
	fe.Offer(r.sign(t, s, ng.URL()))
	st := settled(t, fe, 7)
	if st.Phase != snapfile.Done || st.BrokerParts != 2 || st.HTTPBytes != s.manifest.Parts[0].Size+s.manifest.Parts[1].Size || !strings.Contains(st.Reason, "no URL delivered part 2") || !strings.Contains(st.Reason, "404") {
		t.Fatalf("state %+v; want parts 0 and 1 over HTTP, 2 and 3 from the broker after a 404", st)
	}
	r.installed(t, s)
	if n := strings.Count(ng.AccessLog(), "/"+s.manifest.Parts[2].Name()); n != 1 {
		t.Errorf("the missing part was asked for %d times, want once (404 is final)", n)
	}
}
