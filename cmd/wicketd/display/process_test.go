package display

import (
	"os"
	"runtime"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func TestParseStatm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		page int
		want uint64
		ok   bool
	}{
		{"5342 1234 567 89 0 2345 0\n", 4096, 1234 * 4096, true},
		{"5342 10 567 89 0 2345 0", 16384, 10 * 16384, true},
		{"5342", 4096, 0, false},
		{"", 4096, 0, false},
		{"5342 x 567", 4096, 0, false},
		{"5342 -1 567", 4096, 0, false},
		{"5342 10", 0, 0, false},
	} {
		got, err := parseStatm([]byte(tc.in), tc.page)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseStatm(%q, %d) = %d, %v; want %d, ok %v", tc.in, tc.page, got, err, tc.want, tc.ok)
		}
	}
}

// TestProcessMetrics checks the process gauges on /metrics: the goroutine
// count follows goroutines started and stopped, and the resident memory
// (Linux) is plausible and agrees with /proc/self/statm.
func TestProcessMetrics(t *testing.T) {
	s, _, _ := newTestServer(t, Config{})
	ts := serve(t, s.MetricsHandler())

	gauge := func(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
		t.Helper()
		if _, ok := fams[name]; !ok {
			return 0, false
		}
		v, ok := values(t, fams, name, dto.MetricType_GAUGE)[""]
		if !ok {
			t.Fatalf("%s has no unlabelled series", name)
		}
		return v, true
	}

	fams := scrape(t, ts.URL)
	g0, ok := gauge(fams, "go_goroutines")
	if !ok {
		t.Fatal("no go_goroutines")
	}
	if g0 < 1 {
		t.Errorf("go_goroutines = %v; want at least 1", g0)
	}

	const extra = 50
	stop := make(chan struct{})
	started := make(chan struct{}, extra)
	for range extra {
		go func() {
			started <- struct{}{}
			<-stop
		}()
	}
	for range extra {
		<-started
	}
	g1, _ := gauge(scrape(t, ts.URL), "go_goroutines")
	close(stop)
	// Other goroutines (HTTP connections, the test server) come and go;
	// the 50 parked ones must show.
	if g1 < g0+extra-5 {
		t.Errorf("go_goroutines = %v with %d more parked; before %v", g1, extra, g0)
	}

	rss, ok := gauge(fams, "process_resident_memory_bytes")
	if runtime.GOOS != "linux" {
		if _, err := os.Stat(statmPath); err != nil {
			if ok {
				t.Errorf("process_resident_memory_bytes reported without %s", statmPath)
			}
			return
		}
	}
	if !ok {
		t.Fatal("no process_resident_memory_bytes on Linux")
	}
	// A Go test binary is resident in megabytes, not bytes or terabytes.
	if rss < 1<<20 || rss > 1<<40 {
		t.Errorf("process_resident_memory_bytes = %v; implausible", rss)
	}
	direct, err := residentMemory()
	if err != nil {
		t.Fatal(err)
	}
	// Both readings are of the same process moments apart.
	if d := rss - float64(direct); d > 64<<20 || d < -64<<20 {
		t.Errorf("process_resident_memory_bytes = %v; statm now says %d", rss, direct)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if rss < float64(ms.HeapInuse)/2 {
		t.Errorf("process_resident_memory_bytes = %v below half the heap in use (%d)", rss, ms.HeapInuse)
	}
}
