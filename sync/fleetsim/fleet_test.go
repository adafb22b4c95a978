package fleetsim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"wicket/internal/clock"
	"wicket/sync/mqttconn"
	"wicket/sync/store"
	"wicket/verifier/verifiertest"
)

// fleet is the simulated gates as the scenarios drive them: in this
// process (localFleet) or spread over worker processes (remoteFleet),
// which a city-sized fleet needs: each gate holds four file descriptors
// (three for its store, one socket), and a process here may open 20,000.
type fleet interface {
	// run starts every gate's sync, each after a random delay within
	// spread.
	run(spread time.Duration)
	// appendAll commits k decisions at every gate and returns the
	// slowest commit.
	appendAll(k int) (time.Duration, error)
	// arrivals waits until every gate holds version, at most timeout,
	// and returns when each one had it, and when each one's client
	// received the delta (zero where it did not).
	arrivals(version uint64, timeout time.Duration) (applied, received []time.Time, err error)
	// settled waits until every gate is connected and holds version, at
	// most timeout.
	settled(version uint64, timeout time.Duration) error
	// drained waits until every gate's outbox is empty, at most timeout.
	drained(timeout time.Duration) error
	// summary is fleetState over every gate.
	summary() string
	// counts is the connection attempts of every gate, and the bytes
	// their connections carried both ways.
	counts() (attempts uint64, bytes int64)
	// profile starts (on) or stops a CPU profile of every process that
	// runs gates, written to WICKET_FLEET_PROFILE (a directory); nothing
	// without it.
	profile(on bool) error
	// stop stops every gate's sync and waits for it.
	stop()
}

// gateConnFor is gate i's connection: every node, through the URLs
// (one per node), starting with node i mod len(urls) so the gates
// spread over the cluster.
func gateConnFor(urls []string, i int, clientID string) mqttconn.Conn {
	rot := make([]string, len(urls))
	for j := range rot {
		rot[j] = urls[(i+j)%len(urls)]
	}
	return mqttconn.Conn{Brokers: rot, ClientID: clientID, KeepAlive: 30 * time.Second}
}

// localFleet is gates in this process.
type localFleet struct {
	gates  []*simGate
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLocalFleet(gates []*simGate) *localFleet {
	ctx, cancel := context.WithCancel(context.Background())
	return &localFleet{gates: gates, ctx: ctx, cancel: cancel}
}

func (l *localFleet) run(spread time.Duration) {
	for _, g := range l.gates {
		l.wg.Go(func() {
			if clock.Sleep(l.ctx, nil, rand.N(spread+1)) {
				g.sync.Run(l.ctx)
			}
		})
	}
}

func (l *localFleet) appendAll(k int) (time.Duration, error) {
	var worst time.Duration
	for _, g := range l.gates {
		for range k {
			ev := store.Event{Type: "decision", At: time.Now(), Gate: g.id, Venue: "SIM", Allow: true, Reason: "ok"}
			t0 := time.Now()
			if _, err := g.st.Append(&ev, 0); err != nil {
				return worst, fmt.Errorf("gate %s: %w", g.id, err)
			}
			worst = max(worst, time.Since(t0))
		}
		g.sync.Notify()
	}
	return worst, nil
}

// waitEach waits until cond holds for every gate, at most timeout, and
// names the first gate it does not hold for.
func (l *localFleet) waitEach(what string, timeout time.Duration, cond func(*simGate) bool) error {
	deadline := time.Now().Add(timeout)
	for _, g := range l.gates {
		if !within(time.Until(deadline), 10*time.Millisecond, func() bool { return cond(g) }) {
			return fmt.Errorf("after %v gate %s is not %s: version %d, sync state %+v; %s", timeout, g.id, what, g.st.Info().Version, g.sync.State(), l.summary())
		}
	}
	return nil
}

func (l *localFleet) arrivals(version uint64, timeout time.Duration) (applied, received []time.Time, err error) {
	err = l.waitEach(fmt.Sprintf("at version %d", version), timeout, func(g *simGate) bool {
		t, ok := g.at(version)
		if ok {
			applied = append(applied, t)
			received = append(received, g.receivedAt(version))
		}
		return ok
	})
	return applied, received, err
}

// profileName is this process's CPU profile file in WICKET_FLEET_PROFILE.
var profileName = "coordinator"

// cpuProfile is the profile being written, if any.
var cpuProfile *os.File

func (l *localFleet) profile(on bool) error { return profileCPU(on) }

// profileCPU starts or stops this process's CPU profile.
func profileCPU(on bool) error {
	dir := os.Getenv("WICKET_FLEET_PROFILE")
	if dir == "" {
		return nil
	}
	if !on {
		if cpuProfile != nil {
			pprof.StopCPUProfile()
			cpuProfile.Close()
			cpuProfile = nil
		}
		return nil
	}
	f, err := os.Create(filepath.Join(dir, profileName+".pprof"))
	if err != nil {
		return err
	}
	cpuProfile = f
	return pprof.StartCPUProfile(f)
}

func (l *localFleet) settled(version uint64, timeout time.Duration) error {
	return l.waitEach(fmt.Sprintf("connected at version %d", version), timeout, func(g *simGate) bool {
		_, ok := g.at(version)
		return ok && g.sync.State().Connected
	})
}

func (l *localFleet) drained(timeout time.Duration) error {
	return l.waitEach("drained (outbox empty)", timeout, func(g *simGate) bool {
		s, err := g.st.Stats()
		return err == nil && s.Outbox == 0
	})
}

func (l *localFleet) summary() string { return fleetState(l.gates) }

func (l *localFleet) counts() (attempts uint64, bytes int64) {
	for _, g := range l.gates {
		attempts += g.sync.State().Attempts
		bytes += g.bytes.Load()
	}
	return attempts, bytes
}

func (l *localFleet) stop() {
	l.cancel()
	l.wg.Wait()
}

// gatesPerProc is the most gates TestFleetSim runs in one process by
// default (WICKET_FLEET_PROCS overrides the number of processes): 2,500
// gates hold some 15,000 file descriptors.
const gatesPerProc = 2500

// Worker processes: the test binary runs TestFleetWorker with these
// variables set; it sets its gates up, answers "ready", then takes one
// command a line on stdin and answers one line on stdout, prefixed with
// workerTag so that test output is told apart.
const (
	envWorker     = "WICKET_FLEET_WORKER"      // "from:to", the gates' indexes
	envWorkerURLs = "WICKET_FLEET_WORKER_URLS" // the nodes, comma-separated
	// envWorkerRecords is the backlog per gate.
	envWorkerRecords = "WICKET_FLEET_WORKER_RECORDS"
	workerTag        = "fleetworker: "
)

// command is one request to a worker.
type command struct {
	Op      string        `json:"op"` // run, append, arrivals, settled, drained, summary, profile, stop
	N       int           `json:"n,omitempty"`
	Version uint64        `json:"version,omitempty"`
	Wait    time.Duration `json:"wait,omitempty"`
}

// answer is a worker's reply.
type answer struct {
	Err      string        `json:"err,omitempty"`
	Worst    time.Duration `json:"worst,omitempty"`
	At       []time.Time   `json:"at,omitempty"`
	Received []time.Time   `json:"received,omitempty"`
	Summary  string        `json:"summary,omitempty"`
	Attempts uint64        `json:"attempts,omitempty"`
	Bytes    int64         `json:"bytes,omitempty"`
	Setup    time.Duration `json:"setup,omitempty"`
}

// TestFleetWorker is one worker process of a remoteFleet; it skips
// unless started as one.
func TestFleetWorker(t *testing.T) {
	span := os.Getenv(envWorker)
	if span == "" {
		t.Skip("run by TestFleetSim as a worker process")
	}
	from, to, _ := strings.Cut(span, ":")
	lo, err1 := strconv.Atoi(from)
	hi, err2 := strconv.Atoi(to)
	urls := strings.Split(os.Getenv(envWorkerURLs), ",")
	if err := errors.Join(err1, err2); err != nil || lo >= hi {
		t.Fatalf("%s=%q: want from:to", envWorker, span)
	}
	perGate := envInt(envWorkerRecords, 1)
	profileName = fmt.Sprintf("worker-%d-%d", lo, hi)
	out := bufio.NewWriter(os.Stdout)
	reply := func(a answer) {
		b, _ := json.Marshal(a)
		fmt.Fprintf(out, "%s%s\n", workerTag, b)
		out.Flush()
	}
	started := time.Now()
	gates := setupGates(t, verifiertest.New(t), func(i int, id string) mqttconn.Conn { return gateConnFor(urls, i, "wicket-sim-"+id) }, gateIDs(hi)[lo:], lo, perGate, storeDir(t))
	l := newLocalFleet(gates)
	defer l.stop()
	reply(answer{Setup: time.Since(started)})
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			t.Fatalf("command %q: %v", in.Text(), err)
		}
		var a answer
		var err error
		switch c.Op {
		case "run":
			l.run(c.Wait)
		case "append":
			a.Worst, err = l.appendAll(c.N)
		case "arrivals":
			a.At, a.Received, err = l.arrivals(c.Version, c.Wait)
		case "settled":
			err = l.settled(c.Version, c.Wait)
		case "drained":
			err = l.drained(c.Wait)
		case "profile":
			err = profileCPU(c.N == 1)
		case "summary":
			a.Summary = l.summary()
			a.Attempts, a.Bytes = l.counts()
		case "stop":
			l.stop()
			reply(a)
			return
		default:
			err = fmt.Errorf("unknown command %q", c.Op)
		}
		if err != nil {
			a.Err = err.Error()
		}
		reply(a)
	}
}

// worker is one worker process as the coordinator drives it.
type worker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// call sends c and reads the answer.
func (w *worker) call(c command) (answer, error) {
	b, _ := json.Marshal(c)
	if _, err := fmt.Fprintf(w.in, "%s\n", b); err != nil {
		return answer{}, fmt.Errorf("worker: %w", err)
	}
	return w.read()
}

// read skips test output up to the next answer.
func (w *worker) read() (answer, error) {
	for w.out.Scan() {
		line, ok := strings.CutPrefix(w.out.Text(), workerTag)
		if !ok {
			continue
		}
		var a answer
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			return a, fmt.Errorf("worker answer %q: %w", line, err)
		}
		if a.Err != "" {
			return a, errors.New(a.Err)
		}
		return a, nil
	}
	return answer{}, fmt.Errorf("worker ended: %v", w.out.Err())
}

// remoteFleet is gates spread over worker processes.
type remoteFleet struct {
	workers []*worker
	setup   time.Duration // the slowest worker's setup
}

// startRemoteFleet starts procs workers of the test binary, the gates
// split evenly between them, and waits until every one has set its
// gates up. They are killed when the test ends if stop was not called.
func startRemoteFleet(t *testing.T, n, procs, perGate int, urls []string) *remoteFleet {
	t.Helper()
	r := &remoteFleet{}
	for p := range procs {
		lo, hi := n*p/procs, n*(p+1)/procs
		cmd := exec.Command(os.Args[0], "-test.run=^TestFleetWorker$", "-test.count=1", "-test.timeout=2h")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d", envWorker, lo, hi), envWorkerURLs+"="+strings.Join(urls, ","),
			fmt.Sprintf("%s=%d", envWorkerRecords, perGate))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		r.workers = append(r.workers, &worker{cmd: cmd, in: in, out: sc})
	}
	for _, w := range r.workers {
		a, err := w.read()
		if err != nil {
			t.Fatalf("worker setup: %v", err)
		}
		r.setup = max(r.setup, a.Setup)
	}
	return r
}

// all sends c to every worker at once and returns their answers.
func (r *remoteFleet) all(c command) ([]answer, error) {
	as := make([]answer, len(r.workers))
	errs := make([]error, len(r.workers))
	var wg sync.WaitGroup
	for i, w := range r.workers {
		wg.Go(func() { as[i], errs[i] = w.call(c) })
	}
	wg.Wait()
	return as, errors.Join(errs...)
}

func (r *remoteFleet) run(spread time.Duration) {
	r.all(command{Op: "run", Wait: spread})
}

func (r *remoteFleet) appendAll(k int) (time.Duration, error) {
	as, err := r.all(command{Op: "append", N: k})
	var worst time.Duration
	for _, a := range as {
		worst = max(worst, a.Worst)
	}
	return worst, err
}

func (r *remoteFleet) arrivals(version uint64, timeout time.Duration) (applied, received []time.Time, err error) {
	as, err := r.all(command{Op: "arrivals", Version: version, Wait: timeout})
	for _, a := range as {
		applied = append(applied, a.At...)
		received = append(received, a.Received...)
	}
	return applied, received, err
}

func (r *remoteFleet) profile(on bool) error {
	n := 0
	if on {
		n = 1
	}
	_, err := r.all(command{Op: "profile", N: n})
	return errors.Join(err, profileCPU(on))
}

func (r *remoteFleet) settled(version uint64, timeout time.Duration) error {
	_, err := r.all(command{Op: "settled", Version: version, Wait: timeout})
	return err
}

func (r *remoteFleet) drained(timeout time.Duration) error {
	_, err := r.all(command{Op: "drained", Wait: timeout})
	return err
}

func (r *remoteFleet) summary() string {
	as, err := r.all(command{Op: "summary"})
	if err != nil {
		return err.Error()
	}
	var parts []string
	for i, a := range as {
		parts = append(parts, fmt.Sprintf("worker %d: %s", i, a.Summary))
	}
	return strings.Join(parts, "; ")
}

func (r *remoteFleet) counts() (attempts uint64, bytes int64) {
	as, _ := r.all(command{Op: "summary"})
	for _, a := range as {
		attempts, bytes = attempts+a.Attempts, bytes+a.Bytes
	}
	return attempts, bytes
}

func (r *remoteFleet) stop() {
	r.all(command{Op: "stop"})
	for _, w := range r.workers {
		w.in.Close()
		w.cmd.Wait()
	}
}
