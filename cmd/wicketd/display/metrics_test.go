package display

import (
	"fmt"
	"math"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

// values maps each series' labels to its counter or gauge value.
func values(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType) map[string]float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	if f.GetType() != typ {
		t.Fatalf("%s type %v; want %v", name, f.GetType(), typ)
	}
	if f.GetHelp() == "" {
		t.Errorf("%s has no HELP", name)
	}
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		switch typ {
		case dto.MetricType_COUNTER:
			out[labels(m)] = m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			out[labels(m)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestMetricsParsed(t *testing.T) {
	s, _, _ := newTestServer(t, Config{})
	ts := serve(t, s.MetricsHandler())
	m := s.Metrics()

	fams := scrape(t, ts.URL)
	if got := values(t, fams, "wicket_clock_trusted", dto.MetricType_GAUGE)[""]; got != 0 {
		t.Errorf("clock_trusted before any set = %v; want 0", got)
	}

	m.ObserveDecision("ok", true)
	m.ObserveDecision("ok", true)
	m.ObserveDecision("expired", false)
	m.ObserveDecision("odd \"reason\"\\\n", false)
	m.ObserveScanToRelay(500 * time.Microsecond) // le 0.001
	m.ObserveScanToRelay(time.Millisecond)       // le 0.001 (inclusive)
	m.ObserveScanToRelay(30 * time.Millisecond)  // le 0.05
	m.ObserveScanToRelay(2 * time.Second)        // +Inf only
	m.ObserveDecode(7 * time.Millisecond)        // le 0.01
	m.SetOutbox(42)
	m.SetTrustAge("key_set", 90*time.Minute)
	m.SetTrustAge("status", 1500*time.Millisecond)
	m.SetClockTrusted(true)
	m.DeviceError("scanner")
	m.DeviceError("scanner")
	m.DeviceError("relay")

	fams = scrape(t, ts.URL)
	checks := []struct {
		name string
		typ  dto.MetricType
		want map[string]float64
	}{
		{"wicket_decisions_total", dto.MetricType_COUNTER, map[string]float64{
			"reason=ok,allow=true":                  2,
			"reason=expired,allow=false":            1,
			"reason=odd \"reason\"\\\n,allow=false": 1,
		}},
		{"wicket_outbox_records", dto.MetricType_GAUGE, map[string]float64{"": 42}},
		{"wicket_trust_data_age_seconds", dto.MetricType_GAUGE, map[string]float64{"kind=key_set": 5400, "kind=status": 1.5}},
		{"wicket_clock_trusted", dto.MetricType_GAUGE, map[string]float64{"": 1}},
		{"wicket_device_errors_total", dto.MetricType_COUNTER, map[string]float64{"device=scanner": 2, "device=relay": 1}},
	}
	for _, c := range checks {
		got := values(t, fams, c.name, c.typ)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v; want %v", c.name, got, c.want)
		}
	}

	h := fams["wicket_scan_to_relay_seconds"]
	if h.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("scan_to_relay type %v", h.GetType())
	}
	hist := h.GetMetric()[0].GetHistogram()
	if hist.GetSampleCount() != 4 {
		t.Errorf("scan_to_relay count = %d; want 4", hist.GetSampleCount())
	}
	if want := 2.0315; math.Abs(hist.GetSampleSum()-want) > 1e-9 {
		t.Errorf("scan_to_relay sum = %v; want %v", hist.GetSampleSum(), want)
	}
	wantBuckets := map[float64]uint64{0.001: 2, 0.0025: 2, 0.005: 2, 0.01: 2, 0.025: 2, 0.05: 3, 0.1: 3, 0.25: 3, 0.5: 3, 1: 3, math.Inf(1): 4}
	if len(hist.GetBucket()) != len(wantBuckets) {
		t.Errorf("scan_to_relay has %d buckets; want %d", len(hist.GetBucket()), len(wantBuckets))
	}
	for _, b := range hist.GetBucket() {
		if want, ok := wantBuckets[b.GetUpperBound()]; !ok || b.GetCumulativeCount() != want {
			t.Errorf("scan_to_relay bucket le=%v = %d; want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	dec := fams["wicket_decode_seconds"].GetMetric()[0].GetHistogram()
	if dec.GetSampleCount() != 1 || dec.GetBucket()[3].GetCumulativeCount() != 1 || dec.GetBucket()[2].GetCumulativeCount() != 0 {
		t.Errorf("decode histogram = %v; want one sample in le=0.01", dec)
	}
}

func TestMetricsLabelCap(t *testing.T) {
	m := NewMetrics()
	for i := range 3 * maxLabelValues {
		m.ObserveDecision(fmt.Sprintf("r%d", i), i%2 == 0)
		m.DeviceError(fmt.Sprintf("d%d", i))
		m.SetTrustAge(fmt.Sprintf("k%d", i), time.Second)
	}
	m.ObserveDecision("invalid \xff utf8", true)
	var b strings.Builder
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for name, limit := range map[string]int{
		"wicket_decisions_total":        2*maxLabelValues + 2,
		"wicket_device_errors_total":    maxLabelValues + 1,
		"wicket_trust_data_age_seconds": maxLabelValues + 1,
	} {
		ms := fams[name].GetMetric()
		if len(ms) > limit {
			t.Errorf("%s has %d series; want at most %d", name, len(ms), limit)
		}
		var other float64
		for _, x := range ms {
			if strings.Contains(labels(x), "="+overflowLabel) {
				other += x.GetCounter().GetValue() + x.GetGauge().GetValue()
			}
		}
		if other == 0 {
			t.Errorf("%s: nothing counted under %q", name, overflowLabel)
		}
	}
	var total float64
	for _, x := range fams["wicket_decisions_total"].GetMetric() {
		total += x.GetCounter().GetValue()
	}
	if total != 3*maxLabelValues+1 {
		t.Errorf("decisions total %v; want %d: the cap must not lose counts", total, 3*maxLabelValues+1)
	}
}

func BenchmarkObserveDecision(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveDecision("ok", true)
			m.ObserveScanToRelay(3 * time.Millisecond)
		}
	})
}

// TestMetricsOperatorSeries: the series an operator alerts on parse in the
// text format with their types and values; the broker and station series
// are absent until set (a gate without fleet sync has neither).
func TestMetricsOperatorSeries(t *testing.T) {
	s, _, _ := newTestServer(t, Config{})
	ts := serve(t, s.MetricsHandler())
	m := s.Metrics()
	for _, name := range []string{"wicket_broker_connected", "wicket_tamper_active", "wicket_station_passback_shared", "wicket_station_passback_refused_total"} {
		if _, ok := scrape(t, ts.URL)[name]; ok {
			t.Errorf("%s exported before it was set (a gate without sync or a tamper switch)", name)
		}
	}
	m.SetVersion("1.2.3")
	m.Alert("colour_red")
	m.Alert("disk_full")
	m.AlertUncommitted("colour_red")
	m.ForcedPassage()
	m.SetOutboxDropped(7)
	m.SetStoreCommit(false, true, 3)
	m.SetBrokerConnected(true)
	m.SetEmergency(2)
	m.SetTamper(true)
	m.SetTrustVersion("key_set", 4)
	m.SetTrustVersion("status", 19)
	floor := time.Unix(1_800_000_000, 0)
	m.SetClock(floor, -90*time.Second)
	m.SetStationPassback(false, 5, map[string]uint64{"forged": 2, "replayed": 1})

	fams := scrape(t, ts.URL)
	for _, c := range []struct {
		name string
		typ  dto.MetricType
		want map[string]float64
	}{
		{"wicket_alerts_total", dto.MetricType_COUNTER, map[string]float64{"reason=colour_red": 1, "reason=disk_full": 1}},
		{"wicket_alerts_uncommitted_total", dto.MetricType_COUNTER, map[string]float64{"reason=colour_red": 1}},
		{"wicket_forced_passages_total", dto.MetricType_COUNTER, map[string]float64{"": 1}},
		{"wicket_outbox_dropped_total", dto.MetricType_COUNTER, map[string]float64{"": 7}},
		{"wicket_store_commit_ok", dto.MetricType_GAUGE, map[string]float64{"": 0}},
		{"wicket_store_disk_full", dto.MetricType_GAUGE, map[string]float64{"": 1}},
		{"wicket_store_commit_failures_total", dto.MetricType_COUNTER, map[string]float64{"": 3}},
		{"wicket_broker_connected", dto.MetricType_GAUGE, map[string]float64{"": 1}},
		{"wicket_emergency_state", dto.MetricType_GAUGE, map[string]float64{"": 2}},
		{"wicket_tamper_active", dto.MetricType_GAUGE, map[string]float64{"": 1}},
		{"wicket_trust_version", dto.MetricType_GAUGE, map[string]float64{"kind=key_set": 4, "kind=status": 19}},
		{"wicket_clock_floor_timestamp_seconds", dto.MetricType_GAUGE, map[string]float64{"": 1_800_000_000}},
		{"wicket_clock_ahead_of_floor_seconds", dto.MetricType_GAUGE, map[string]float64{"": -90}},
		{"wicket_station_passback_shared", dto.MetricType_GAUGE, map[string]float64{"": 0}},
		{"wicket_station_passback_accepted_total", dto.MetricType_COUNTER, map[string]float64{"": 5}},
		{"wicket_station_passback_refused_total", dto.MetricType_COUNTER, map[string]float64{"reason=forged": 2, "reason=replayed": 1}},
		{"wicket_build_info", dto.MetricType_GAUGE, map[string]float64{"version=1.2.3,goversion=" + runtime.Version(): 1}},
	} {
		got := values(t, fams, c.name, c.typ)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v; want %v", c.name, got, c.want)
		}
	}
	start := values(t, fams, "process_start_time_seconds", dto.MetricType_GAUGE)[""]
	if now := float64(time.Now().UnixNano()) / 1e9; start <= 0 || start > now || now-start > 3600 {
		t.Errorf("process_start_time_seconds = %v; want this process's start, before %v", start, now)
	}
}
