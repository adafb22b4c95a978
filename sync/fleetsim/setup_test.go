package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"wicket/sync/collector"
	"wicket/sync/mqttconn"
	"wicket/sync/mqttsync"
	"wicket/sync/store"
	"wicket/sync/trust"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// setupParallel is how many gates are set up at once: opening a store
// and committing its backlog is mostly waiting on the file system, so a
// few per core keep the machine busy without thousands of goroutines
// each holding a half-built store.
var setupParallel = 4 * runtime.NumCPU()

// trustSilence is the gates' mqttsync.Config.TrustSilence: a gate that
// resumed its session and heard nothing on the trust tree for this long
// subscribes to it again. Every scenario publishes a delta within
// seconds of the reconnects it causes.
const trustSilence = 30 * time.Second

// simCollector is one collector of the run, which the collector-kill
// scenario stops and replaces.
type simCollector struct {
	col    *collector.Collector
	cancel context.CancelFunc
	done   chan struct{}
}

// storeDir is where the gates' stores go: WICKET_FLEET_DIR, else a
// directory on tmpfs (/dev/shm) when there is one, else the test's
// temporary directory. On tmpfs an fsync costs nothing: 5,000 gates'
// backlogs (100,000 commits) are set up in seconds instead of minutes,
// and the broker, collector and gates, not the disk, set the pace.
func storeDir(t *testing.T) string {
	t.Helper()
	parent := os.Getenv("WICKET_FLEET_DIR")
	if parent == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			parent = "/dev/shm"
		}
	}
	if parent == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "wicket-fleetsim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// gateIDs are the ids of n gates: G0000, G0001, ...
func gateIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("G%04d", i)
	}
	return ids
}

// setupGates builds one gate per id, setupParallel at a time: its store
// in dir with perGate records waiting in the outbox, its trust applier
// and its sync (not running), connecting with conn(first+k, id) for
// ids[k]. The stores are closed when the test ends.
func setupGates(t *testing.T, f *verifiertest.Fixture, conn func(int, string) mqttconn.Conn, ids []string, first, perGate int, dir string) []*simGate {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	gates := make([]*simGate, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, setupParallel)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			gates[i], errs[i] = setupGate(f, conn(first+i, id), id, perGate, dir, quiet)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, g := range gates {
			if g != nil {
				g.st.Close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return gates
}

// setupGate builds one gate (see setupGates).
func setupGate(f *verifiertest.Fixture, conn mqttconn.Conn, id string, perGate int, dir string, log *slog.Logger) (*simGate, error) {
	st, err := store.Open(store.Options{Path: filepath.Join(dir, id+".db"), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("gate %s: %w", id, err)
	}
	g := &simGate{id: id, st: st, reached: map[uint64]time.Time{}, received: map[uint64]time.Time{}}
	for range perGate {
		ev := store.Event{Type: "decision", At: time.Now(), Gate: id, Venue: "SIM", Allow: true, Reason: "ok"}
		if _, err := st.Append(&ev, 0); err != nil {
			return g, fmt.Errorf("gate %s: %w", id, err)
		}
	}
	v, _ := verifier.New(verifier.NewTrustedClock(f.Clock, time.Time{}), st, &f.Policy)
	tr := trust.New(f.Roots(), st, v, log)
	tr.OnChange = func() {
		now := time.Now()
		g.mu.Lock()
		g.reached[st.Info().Version] = now
		g.mu.Unlock()
	}
	g.sync, err = mqttsync.New(mqttsync.Config{
		Conn:  conn,
		Fleet: "sim", Gate: id, StatusEvery: time.Hour, ReconnectMin: 100 * time.Millisecond, ReconnectMax: 2 * time.Second,
		AckTimeout: 5 * time.Second, Key: wiretest.GateKey, Roots: f.Roots(), TrustSilence: trustSilence,
		NewClient: g.client, StatusSpread: statusSpread(), TrustQoS0: trustQoS() == 0,
	}, st, tr, func() wire.Status { return wire.Status{Gate: id} }, log)
	if err != nil {
		return g, fmt.Errorf("gate %s: %w", id, err)
	}
	return g, nil
}

// statusSpread is the gates' mqttsync.Config.StatusSpread:
// WICKET_FLEET_STATUS_SPREAD_MS milliseconds (-1: a status at once after
// each change), else the default.
func statusSpread() time.Duration {
	ms, err := strconv.Atoi(os.Getenv("WICKET_FLEET_STATUS_SPREAD_MS"))
	if err != nil {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// trustQoS is the QoS of the gates' trust subscription:
// WICKET_FLEET_TRUST_QOS, 1 (the default) or 0 (mqttsync's TrustQoS0).
func trustQoS() int {
	if os.Getenv("WICKET_FLEET_TRUST_QOS") == "0" {
		return 0
	}
	return 1
}

// fleetState sums the gates' sync states up for progress lines and
// failure messages: how many are connected, lack a confirmed
// subscription, still hold records; connection attempts and refused
// subscriptions in all.
func fleetState(gates []*simGate) string {
	var connected, unsubscribed, waiting int
	var attempts, refused, resends uint64
	for _, g := range gates {
		st := g.sync.State()
		if st.Connected {
			connected++
		}
		if st.Unsubscribed != "" {
			unsubscribed++
		}
		if s, err := g.st.Stats(); err == nil && s.Outbox > 0 {
			waiting++
		}
		attempts, refused, resends = attempts+st.Attempts, refused+st.SubscribeRefused, resends+st.Resends
	}
	return fmt.Sprintf("%d of %d gates connected, %d without a confirmed subscription, %d with records in the outbox; %d connection attempts, %d subscriptions refused, %d resends",
		connected, len(gates), unsubscribed, waiting, attempts, refused, resends)
}

// loadAverage is the machine's 1-minute load average, "?" where
// /proc/loadavg cannot be read.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
