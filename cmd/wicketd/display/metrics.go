package display

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxLabelValues bounds the distinct values of one label. Reasons and
// device names come from fixed lists well below this; the bound keeps a
// caller bug from growing the exposition without limit. Values beyond it
// are counted under overflowLabel.
const maxLabelValues = 64

// overflowLabel is the label value that takes what maxLabelValues refuses.
const overflowLabel = "other"

// latencyBuckets are the upper bounds, in seconds, of the latency
// histograms: a gate must open well within a second.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// Metrics holds the gate's counters, gauges and histograms and writes them
// in the Prometheus text format 0.0.4. The zero value is not usable;
// create it with NewMetrics. All methods are safe for concurrent use and
// never block on IO; the hot paths are a few atomic operations.
type Metrics struct {
	decisions    [2]labelled // [allow] reason → *atomic.Uint64
	scanToRelay  histogram
	decode       histogram
	outbox       atomic.Int64
	trustAge     labelled // kind → *atomic.Uint64 holding float64 bits
	clockTrusted atomic.Bool
	deviceErrors labelled // device → *atomic.Uint64
	refused      labelled // reason → *atomic.Uint64
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	m := &Metrics{}
	m.decisions[0].limit = maxLabelValues
	m.decisions[1].limit = maxLabelValues
	m.trustAge.limit = maxLabelValues
	m.deviceErrors.limit = maxLabelValues
	m.refused.limit = maxLabelValues
	return m
}

// ObserveDecision counts one decision.
func (m *Metrics) ObserveDecision(reason string, allow bool) {
	i := 0
	if allow {
		i = 1
	}
	m.decisions[i].get(reason).Add(1)
}

// ObserveScanToRelay records the time from a completed scan to the relay
// command.
func (m *Metrics) ObserveScanToRelay(d time.Duration) { m.scanToRelay.observe(d) }

// ObserveDecode records the time one frame took to decode.
func (m *Metrics) ObserveDecode(d time.Duration) { m.decode.observe(d) }

// SetOutbox sets the number of records waiting in the outbox.
func (m *Metrics) SetOutbox(n int) { m.outbox.Store(int64(n)) }

// SetTrustAge sets the age of the installed trust data of one kind
// ("key_set" or "status").
func (m *Metrics) SetTrustAge(kind string, d time.Duration) {
	m.trustAge.get(kind).Store(math.Float64bits(d.Seconds()))
}

// SetClockTrusted sets whether the wall clock is at or above the trusted
// floor.
func (m *Metrics) SetClockTrusted(ok bool) { m.clockTrusted.Store(ok) }

// DeviceError counts one error of the named device.
func (m *Metrics) DeviceError(name string) { m.deviceErrors.get(name).Add(1) }

// Refused counts one HTTP request refused for reason (unknown_host,
// no_credential, cross_origin).
func (m *Metrics) Refused(reason string) { m.refused.get(reason).Add(1) }

// ServeHTTP writes the metrics in the text exposition format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = m.WriteTo(w)
}

// WriteTo writes the metrics in the text exposition format 0.0.4, series
// sorted by label, and returns the bytes written and the first write
// error.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	b := bufio.NewWriter(cw)

	header(b, "wicket_decisions_total", "counter", "Decisions made, by reason and whether the gate opened.")
	for i, allow := range [2]string{"false", "true"} {
		for _, kv := range m.decisions[i].snapshot() {
			b.WriteString(`wicket_decisions_total{reason="`)
			b.WriteString(escapeLabel(kv.key))
			b.WriteString(`",allow="`)
			b.WriteString(allow)
			b.WriteString(`"} `)
			b.WriteString(strconv.FormatUint(kv.v.Load(), 10))
			b.WriteByte('\n')
		}
	}

	header(b, "wicket_scan_to_relay_seconds", "histogram", "Time from a completed scan to the relay command.")
	m.scanToRelay.write(b, "wicket_scan_to_relay_seconds")
	header(b, "wicket_decode_seconds", "histogram", "Time to decode one camera frame.")
	m.decode.write(b, "wicket_decode_seconds")

	header(b, "wicket_outbox_records", "gauge", "Access records waiting to be sent to the fleet.")
	b.WriteString("wicket_outbox_records ")
	b.WriteString(strconv.FormatInt(m.outbox.Load(), 10))
	b.WriteByte('\n')

	header(b, "wicket_trust_data_age_seconds", "gauge", "Age of the installed trust data, by kind.")
	for _, kv := range m.trustAge.snapshot() {
		b.WriteString(`wicket_trust_data_age_seconds{kind="`)
		b.WriteString(escapeLabel(kv.key))
		b.WriteString(`"} `)
		b.WriteString(formatFloat(math.Float64frombits(kv.v.Load())))
		b.WriteByte('\n')
	}

	header(b, "wicket_clock_trusted", "gauge", "1 if the wall clock is at or above the trusted floor, else 0.")
	if m.clockTrusted.Load() {
		b.WriteString("wicket_clock_trusted 1\n")
	} else {
		b.WriteString("wicket_clock_trusted 0\n")
	}

	header(b, "wicket_device_errors_total", "counter", "Errors reported by the gate's devices, by device.")
	writeCounters(b, "wicket_device_errors_total", "device", &m.deviceErrors)
	header(b, "wicket_http_refused_total", "counter", "HTTP requests refused, by reason: unknown_host, no_credential, cross_origin.")
	writeCounters(b, "wicket_http_refused_total", "reason", &m.refused)

	writeProcess(b)
	err := b.Flush()
	return cw.n, err
}

// writeCounters writes the series of a counter with one label.
func writeCounters(b *bufio.Writer, name, label string, l *labelled) {
	for _, kv := range l.snapshot() {
		b.WriteString(name)
		b.WriteByte('{')
		b.WriteString(label)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(kv.key))
		b.WriteString(`"} `)
		b.WriteString(strconv.FormatUint(kv.v.Load(), 10))
		b.WriteByte('\n')
	}
}

// writeProcess writes the standard process gauges of the Prometheus
// client libraries: go_goroutines, and process_resident_memory_bytes where
// /proc/self/statm can be read (Linux). The latter is omitted elsewhere
// rather than reported as 0.
func writeProcess(b *bufio.Writer) {
	header(b, "go_goroutines", "gauge", "Number of goroutines that currently exist.")
	b.WriteString("go_goroutines ")
	b.WriteString(strconv.Itoa(runtime.NumGoroutine()))
	b.WriteByte('\n')
	if rss, err := residentMemory(); err == nil {
		header(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
		b.WriteString("process_resident_memory_bytes ")
		b.WriteString(strconv.FormatUint(rss, 10))
		b.WriteByte('\n')
	}
}

// statmPath is the kernel's per-process memory summary.
const statmPath = "/proc/self/statm"

// residentMemory returns the process's resident set size in bytes: the
// second field of /proc/self/statm (resident pages: anonymous memory plus
// the file-backed pages mapped and present, such as the store's mmapped
// database file) times the page size. It is the value the Prometheus
// client libraries export under the same name.
func residentMemory() (uint64, error) {
	data, err := os.ReadFile(statmPath)
	if err != nil {
		return 0, err
	}
	return parseStatm(data, os.Getpagesize())
}

// parseStatm returns the resident bytes in the contents of a statm file
// ("size resident shared text lib data dt", in pages).
func parseStatm(data []byte, pageSize int) (uint64, error) {
	f := bytes.Fields(data)
	if len(f) < 2 {
		return 0, errors.New("statm: fewer than 2 fields")
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, errors.New("statm: resident field is not a number")
	}
	if pageSize <= 0 {
		return 0, errors.New("statm: bad page size")
	}
	return pages * uint64(pageSize), nil
}

func header(b *bufio.Writer, name, typ, help string) {
	b.WriteString("# HELP ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(help)
	b.WriteString("\n# TYPE ")
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(typ)
	b.WriteByte('\n')
}

// labelled is a bounded set of series keyed by label value.
type labelled struct {
	limit int
	m     sync.Map // string → *atomic.Uint64
	n     atomic.Int64
	mu    sync.Mutex // serialises inserts so n never passes limit
}

// get returns the series for key, creating it if there is room and
// falling back to overflowLabel when there is not.
func (l *labelled) get(key string) *atomic.Uint64 {
	if v, ok := l.m.Load(key); ok {
		return v.(*atomic.Uint64)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.m.Load(key); ok {
		return v.(*atomic.Uint64)
	}
	if l.n.Load() >= int64(l.limit) {
		v, _ := l.m.LoadOrStore(overflowLabel, new(atomic.Uint64))
		return v.(*atomic.Uint64)
	}
	v := new(atomic.Uint64)
	l.m.Store(key, v)
	l.n.Add(1)
	return v
}

type series struct {
	key string
	v   *atomic.Uint64
}

func (l *labelled) snapshot() []series {
	var out []series
	l.m.Range(func(k, v any) bool {
		out = append(out, series{k.(string), v.(*atomic.Uint64)})
		return true
	})
	slices.SortFunc(out, func(a, b series) int { return strings.Compare(a.key, b.key) })
	return out
}

// histogram counts observations per latencyBuckets bucket (not
// cumulative; the last slot is +Inf) and their sum in nanoseconds.
type histogram struct {
	counts [11]atomic.Uint64
	sumNS  atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i, _ := slices.BinarySearch(latencyBuckets, s)
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
}

func (h *histogram) write(b *bufio.Writer, name string) {
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		le := "+Inf"
		if i < len(latencyBuckets) {
			le = formatFloat(latencyBuckets[i])
		}
		b.WriteString(name)
		b.WriteString(`_bucket{le="`)
		b.WriteString(le)
		b.WriteString(`"} `)
		b.WriteString(strconv.FormatUint(cum, 10))
		b.WriteByte('\n')
	}
	b.WriteString(name)
	b.WriteString("_sum ")
	b.WriteString(formatFloat(time.Duration(h.sumNS.Load()).Seconds()))
	b.WriteByte('\n')
	b.WriteString(name)
	b.WriteString("_count ")
	b.WriteString(strconv.FormatUint(cum, 10))
	b.WriteByte('\n')
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// escapeLabel makes s a valid label value: UTF-8, with backslash, quote
// and newline escaped.
func escapeLabel(s string) string { return labelEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD")) }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
