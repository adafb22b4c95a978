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

	alerts       labelled // reason → *atomic.Uint64
	uncommitted  labelled // reason → *atomic.Uint64
	trustVersion labelled // kind → *atomic.Uint64
	broker       gauge
	tamper       gauge
	emergency    gauge // 0 normal, 1 active, 2 latched
	dropped      gauge
	storeOK      gauge
	diskFull     gauge
	commitFails  gauge
	clockFloor   gauge
	clockAhead   gauge
	forced       atomic.Uint64
	version      atomic.Pointer[string]

	stationShared   gauge
	stationAccepted gauge
	stationRefused  labelled // reason → *atomic.Uint64
}

// gauge is a float64 that is only written out once it has been set.
type gauge struct {
	bits atomic.Uint64
	set  atomic.Bool
}

func (g *gauge) store(f float64) {
	g.bits.Store(math.Float64bits(f))
	g.set.Store(true)
}

func (g *gauge) write(b *bufio.Writer, name, typ, help string) {
	if !g.set.Load() {
		return
	}
	header(b, name, typ, help)
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(formatFloat(math.Float64frombits(g.bits.Load())))
	b.WriteByte('\n')
}

func boolFloat(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

// processStart is when this process started, near enough: package
// variables are set before main runs.
var processStart = time.Now()

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	m := &Metrics{}
	m.decisions[0].limit = maxLabelValues
	m.decisions[1].limit = maxLabelValues
	m.trustAge.limit = maxLabelValues
	m.deviceErrors.limit = maxLabelValues
	m.refused.limit = maxLabelValues
	m.alerts.limit = maxLabelValues
	m.uncommitted.limit = maxLabelValues
	m.trustVersion.limit = maxLabelValues
	m.stationRefused.limit = maxLabelValues
	return m
}

// SetStationPassback sets the station's anti-passback state: shared over
// the broker or local-only, the grants of other gates accepted, and the
// grant messages refused by reason (all since start). A gate without
// fleet sync never calls it and exports no such series.
func (m *Metrics) SetStationPassback(shared bool, accepted uint64, refused map[string]uint64) {
	m.stationShared.store(boolFloat(shared))
	m.stationAccepted.store(float64(accepted))
	for reason, n := range refused {
		m.stationRefused.get(reason).Store(n)
	}
}

// SetVersion sets the version wicket_build_info reports.
func (m *Metrics) SetVersion(v string) { m.version.Store(&v) }

// Alert counts one alert raised, by reason (colour_red, fever,
// relay_fault, store_failure, disk_full, forced_passage, outbox_full,
// emergency, ...).
func (m *Metrics) Alert(reason string) { m.alerts.get(reason).Add(1) }

// AlertUncommitted counts an alert the store could not commit: it went to
// the log and the broker from memory only.
func (m *Metrics) AlertUncommitted(reason string) { m.uncommitted.get(reason).Add(1) }

// ForcedPassage counts one passage the passage sensor saw with no grant.
func (m *Metrics) ForcedPassage() { m.forced.Add(1) }

// SetBrokerConnected sets whether the fleet broker connection is up. A
// gate without fleet sync never calls it and exports no such series.
func (m *Metrics) SetBrokerConnected(ok bool) { m.broker.store(boolFloat(ok)) }

// SetTamper sets whether the enclosure is open (its tamper switch
// active). A gate without a tamper switch never calls it and exports no
// such series.
func (m *Metrics) SetTamper(open bool) { m.tamper.store(boolFloat(open)) }

// SetEmergency sets the emergency release state: 0 normal, 1 input
// active, 2 latched (cleared, waiting for an acknowledge).
func (m *Metrics) SetEmergency(state int) { m.emergency.store(float64(state)) }

// SetOutboxDropped sets how many records were not queued for sync because
// the outbox was full, since the store was created.
func (m *Metrics) SetOutboxDropped(n uint64) { m.dropped.store(float64(n)) }

// SetStoreCommit sets the state of the store's last commit and the count
// of failed commits since start.
func (m *Metrics) SetStoreCommit(ok, diskFull bool, failures uint64) {
	m.storeOK.store(boolFloat(ok))
	m.diskFull.store(boolFloat(diskFull))
	m.commitFails.store(float64(failures))
}

// SetTrustVersion sets the version of the installed trust data of one kind
// ("key_set" or "status").
func (m *Metrics) SetTrustVersion(kind string, v uint64) { m.trustVersion.get(kind).Store(v) }

// SetClock sets the trusted clock floor and how far the wall clock is
// ahead of it (negative: behind, so the clock is not trusted).
func (m *Metrics) SetClock(floor time.Time, ahead time.Duration) {
	if !floor.IsZero() {
		m.clockFloor.store(float64(floor.UnixNano()) / 1e9)
	}
	m.clockAhead.store(ahead.Seconds())
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

	header(b, "wicket_alerts_total", "counter", "Alerts raised, by reason.")
	writeCounters(b, "wicket_alerts_total", "reason", &m.alerts)
	header(b, "wicket_alerts_uncommitted_total", "counter", "Alerts the store could not commit (sent from memory only), by reason.")
	writeCounters(b, "wicket_alerts_uncommitted_total", "reason", &m.uncommitted)
	header(b, "wicket_forced_passages_total", "counter", "Passages the passage sensor saw with the gate locked.")
	b.WriteString("wicket_forced_passages_total ")
	b.WriteString(strconv.FormatUint(m.forced.Load(), 10))
	b.WriteByte('\n')
	m.dropped.write(b, "wicket_outbox_dropped_total", "counter", "Access records not queued for sync because the outbox was full.")
	m.storeOK.write(b, "wicket_store_commit_ok", "gauge", "1 if the store's last commit succeeded, else 0.")
	m.diskFull.write(b, "wicket_store_disk_full", "gauge", "1 if the store's last commit failed for a full file system, else 0.")
	m.commitFails.write(b, "wicket_store_commit_failures_total", "counter", "Store commits that failed since start.")
	m.broker.write(b, "wicket_broker_connected", "gauge", "1 if the fleet broker connection is up, else 0.")
	m.stationShared.write(b, "wicket_station_passback_shared", "gauge", "1 while anti-passback is shared with the station's gates over the broker, 0 while local-only.")
	m.stationAccepted.write(b, "wicket_station_passback_accepted_total", "counter", "Grants of the station's other gates taken into the anti-passback memory.")
	if m.stationShared.set.Load() {
		header(b, "wicket_station_passback_refused_total", "counter", "Station grant messages refused, by reason.")
		writeCounters(b, "wicket_station_passback_refused_total", "reason", &m.stationRefused)
	}
	m.emergency.write(b, "wicket_emergency_state", "gauge", "Emergency release: 0 normal, 1 input active, 2 latched until acknowledged.")
	m.tamper.write(b, "wicket_tamper_active", "gauge", "1 while the enclosure's tamper switch is open, else 0.")
	header(b, "wicket_trust_version", "gauge", "Version of the installed trust data, by kind.")
	writeCounters(b, "wicket_trust_version", "kind", &m.trustVersion)
	m.clockFloor.write(b, "wicket_clock_floor_timestamp_seconds", "gauge", "The trusted clock floor, in seconds since the epoch.")
	m.clockAhead.write(b, "wicket_clock_ahead_of_floor_seconds", "gauge", "Seconds the wall clock is ahead of the trusted floor; negative when behind.")

	version := "unknown"
	if v := m.version.Load(); v != nil {
		version = *v
	}
	header(b, "wicket_build_info", "gauge", "Always 1; the labels name the build.")
	b.WriteString(`wicket_build_info{version="`)
	b.WriteString(escapeLabel(version))
	b.WriteString(`",goversion="`)
	b.WriteString(escapeLabel(runtime.Version()))
	b.WriteString("\"} 1\n")

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
	header(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
	b.WriteString("process_start_time_seconds ")
	b.WriteString(formatFloat(float64(processStart.UnixNano()) / 1e9))
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
