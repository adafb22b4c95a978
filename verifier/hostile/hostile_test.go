package hostile_test

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"wicket/verifier"
	"wicket/verifier/hostile/internal/corpus"
	"wicket/verifier/verifiertest"
)

// corpusFile is the committed corpus, relative to this package.
var corpusFile = filepath.Join("testdata", "corpus.json")

func load(t *testing.T) *corpus.File {
	t.Helper()
	b, err := os.ReadFile(corpusFile)
	if err != nil {
		t.Fatalf("%v; run: go run ./verifier/hostile/gen", err)
	}
	f, err := corpus.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) < 500 {
		t.Fatalf("corpus has %d cases, want at least 500", len(f.Cases))
	}
	return f
}

// verify runs one input, turning a panic into a test failure.
func verify(t *testing.T, v *verifier.Verifier, name string, input []byte) (d verifier.Decision, ok bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: Verify panicked: %v", name, r)
			ok = false
		}
	}()
	return v.Verify(input), true
}

// The gate allows the controls (so the keys, times and policy are the ones
// the corpus was made for) and denies every case with its reason.
func TestCorpus(t *testing.T) {
	t.Parallel()
	f := load(t)
	g := verifiertest.NewHostileGate(t)
	if now := g.Clock.Now(); !now.Equal(f.VerifyAt) {
		t.Fatalf("gate clock %v, corpus made for %v", now, f.VerifyAt)
	}
	for _, c := range f.Controls {
		d, ok := verify(t, g.Verifier, "control "+c.Name, c.Input)
		if ok && !d.Allow {
			t.Errorf("control %q: denied with %s (%s); the gate is not the one the corpus assumes", c.Name, d.Reason, d.Detail)
		}
	}
	known := map[verifier.Reason]bool{}
	for _, r := range verifier.Reasons() {
		known[r] = true
	}
	seen := map[string]bool{}
	inputs := map[string]string{}
	perLayer := map[string]int{}
	for _, c := range f.Cases {
		id := c.Layer + "/" + c.Name
		if seen[id] {
			t.Errorf("duplicate case %s", id)
		}
		seen[id] = true
		if other, ok := inputs[string(c.Input)]; ok {
			t.Errorf("%s: same input as %s", id, other)
		}
		inputs[string(c.Input)] = id
		perLayer[c.Layer]++
		if !known[c.Want] || c.Want == verifier.ReasonOK {
			t.Errorf("%s: expected reason %q is not a denial reason", id, c.Want)
		}
		d, ok := verify(t, g.Verifier, id, c.Input)
		if !ok {
			continue
		}
		if d.Allow {
			t.Errorf("%s: ALLOWED (reason %s); want denied with %s\ninput %q", id, d.Reason, c.Want, c.Input)
			continue
		}
		if d.Reason != c.Want {
			t.Errorf("%s: denied with %s (%s); want %s", id, d.Reason, d.Detail, c.Want)
		}
	}
	for _, l := range corpus.Layers {
		if perLayer[l] == 0 {
			t.Errorf("no cases for layer %s", l)
		}
	}
	t.Logf("%d cases; %d controls", len(f.Cases), len(f.Controls))
}

// Verifying the whole corpus many times leaves the heap where it was:
// nothing a hostile code does is kept. The passes run on up to 4 CPUs;
// the test is not parallel, so no other test allocates meanwhile.
func TestCorpusHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the corpus 20 times")
	}
	f := load(t)
	g := verifiertest.NewHostileGate(t)
	var allowed atomic.Int32
	pass := func() {
		for _, c := range f.Cases {
			if d := g.Verifier.Verify(c.Input); d.Allow {
				allowed.Add(1)
			}
		}
	}
	pass() // fill pools and lazily built tables
	const passes = 20
	var before, after runtime.MemStats
	gc := func() { runtime.GC(); runtime.GC() } // twice: pools keep a victim cache for one cycle
	gc()
	runtime.ReadMemStats(&before)
	work := make(chan struct{}, passes)
	for range passes {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 4) {
		wg.Go(func() {
			for range work {
				pass()
			}
		})
	}
	wg.Wait()
	gc()
	runtime.ReadMemStats(&after)
	if n := allowed.Load(); n > 0 {
		t.Errorf("%d verifications allowed a hostile code", n)
	}
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap %d → %d bytes (%+d) over %d verifications", before.HeapAlloc, after.HeapAlloc, growth, passes*len(f.Cases))
	const limit = 4 << 20
	if growth > limit {
		t.Errorf("heap grew %d bytes verifying the corpus %d times, over %d", growth, passes, limit)
	}
}

// The committed file is what the generator makes now.
func TestCorpusUpToDate(t *testing.T) {
	t.Parallel()
	want, err := corpus.Marshal(corpus.Generate(t))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(corpusFile)
	if err != nil {
		t.Fatalf("%v; run: go run ./verifier/hostile/gen", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from its generator (%d bytes, generator %d, first difference at byte %d); run: go run ./verifier/hostile/gen",
			corpusFile, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
