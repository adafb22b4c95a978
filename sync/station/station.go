package station

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/internal/clock"
	"wicket/sync/mqttconn"
	"wicket/sync/wire"
	"wicket/verifier"
)

// Config configures a gate's share of its station's anti-passback.
type Config struct {
	// Conn is the gate's broker connection (sync.*). The station uses a
	// connection of its own, with ClientID + "-passback" as its client id
	// and a clean session: a grant missed while away is no use later.
	Conn mqttconn.Conn
	// Fleet and Gate are the fleet and this gate's id (its roster id).
	Fleet, Gate string
	// Key is the gate's identity key; grants are signed with it. Without
	// it the gate stays local-only.
	Key ed25519.PrivateKey
	// Roster returns the installed roster (nil before one arrives). The
	// gate's station is its member's station there.
	Roster func() *verifier.Roster
	// Window returns the longest anti-passback window in force (the
	// policy may be reloaded): older grants are refused and forgotten. 0
	// shares nothing.
	Window func() time.Duration
	// Now is the clock grants are dated and judged by; nil: time.Now.
	Now func() time.Time
	// MaxSkew is how far ahead a grant may be dated (DefaultMaxSkew).
	MaxSkew time.Duration
	// MaxEntries bounds the memory (DefaultMaxEntries).
	MaxEntries int
	// Retry is how often a gate without a roster or station in it looks
	// again (DefaultRetry); ReconnectMin and ReconnectMax bound the
	// backoff after a lost connection (1s and 2m).
	Retry, ReconnectMin, ReconnectMax time.Duration
	// OnAccept, if set, sees each grant once it is in the memory. It
	// must not block.
	OnAccept func(Grant)
	// Logger; nil discards.
	Logger *slog.Logger
}

// State is what the gate's status and metrics say about the station's
// anti-passback.
type State struct {
	// Shared is true while the gate is connected and subscribed to its
	// station's grants; otherwise it decides on its own memory only.
	Shared bool
	// Station is the gate's station from the roster, "" if none.
	Station string
	// Since is when the current mode (shared or local-only) began.
	Since time.Time
	// Why says why the gate is local-only.
	Why string
	// Published counts grants sent; Unsent grants dropped (queue full,
	// or not connected when their turn came); Accepted grants of other
	// gates taken into the memory.
	Published, Unsent, Accepted uint64
	// Refused counts refused grant messages by reason (Refused*).
	Refused map[string]uint64
	// Entries is the memory's size; Evicted counts entries forgotten
	// early because it was full.
	Entries int
	Evicted uint64
}

// String is the status line: "shared (station S) since …" or
// "local-only since …: why".
func (s State) String() string {
	since := "start"
	if !s.Since.IsZero() {
		since = s.Since.UTC().Format(time.RFC3339)
	}
	if s.Shared {
		return fmt.Sprintf("shared (station %s) since %s", s.Station, since)
	}
	return fmt.Sprintf("local-only since %s: %s", since, s.Why)
}

// Station is a gate's share of its station's anti-passback. Create it
// with New, run it with Run; Granted and LastAllowed never block and may
// be called before, during and after Run.
type Station struct {
	cfg    Config
	qos    byte // of grants; grantQoS, tests compare 1
	mem    *Memory
	grants chan Grant
	log    *slog.Logger

	mu      sync.Mutex
	state   State
	lastSeq map[string]uint64
}

// New returns a Station. It checks only what Run could not work without.
func New(cfg Config) (*Station, error) {
	if err := wire.ValidName(cfg.Fleet); err != nil {
		return nil, fmt.Errorf("station: fleet: %w", err)
	}
	if err := wire.ValidName(cfg.Gate); err != nil {
		return nil, fmt.Errorf("station: gate: %w", err)
	}
	if cfg.Roster == nil || cfg.Window == nil {
		return nil, errors.New("station: Roster and Window are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = time.Second
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = 2 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Station{cfg: cfg, qos: grantQoS, mem: NewMemory(cfg.MaxEntries), grants: make(chan Grant, grantQueue),
		log: log.With("component", "station"), lastSeq: make(map[string]uint64)}
	s.state = State{Since: cfg.Now(), Why: "not started", Refused: make(map[string]uint64)}
	return s, nil
}

// Granted announces that this gate admitted voucher (its record hash) at
// at, recorded as seq. It never blocks: with the queue full the grant is
// dropped and counted in Unsent.
func (s *Station) Granted(voucher string, at time.Time, seq uint64) {
	select {
	case s.grants <- Grant{Gate: s.cfg.Gate, Voucher: voucher, At: at.UnixNano(), Seq: seq}:
	default:
		s.update(func(st *State) { st.Unsent++ })
	}
}

// LastAllowed returns when another gate of the station last admitted
// voucher (its record hash), if the memory holds it.
func (s *Station) LastAllowed(voucher string) (time.Time, bool) {
	return s.mem.LastAllowed(voucher)
}

// State returns the current state.
func (s *Station) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.Refused = maps.Clone(s.state.Refused)
	st.Entries, st.Evicted = s.mem.Len(), s.mem.Evicted()
	return st
}

func (s *Station) update(f func(*State)) {
	s.mu.Lock()
	f(&s.state)
	s.mu.Unlock()
}

// setMode records the mode, shared or local-only (and why), and logs a
// change once; Since moves only when the gate goes from one mode to the
// other.
func (s *Station) setMode(shared bool, station, why string) {
	s.mu.Lock()
	changed := s.state.Shared != shared || s.state.Why != why || s.state.Station != station
	if changed {
		if s.state.Shared != shared {
			s.state.Since = s.cfg.Now()
		}
		s.state.Shared, s.state.Station, s.state.Why = shared, station, why
	}
	s.mu.Unlock()
	switch {
	case !changed:
	case shared:
		s.log.Info("station anti-passback shared", "station", station)
	default:
		s.log.Warn("station anti-passback is local-only: this gate decides on its own memory", "why", why)
	}
}

// ownStation returns the gate's station from the roster, or why it has
// none.
func (s *Station) ownStation() (string, string) {
	switch m := s.cfg.Roster().Member(s.cfg.Gate); {
	case len(s.cfg.Key) != ed25519.PrivateKeySize:
		return "", "no identity key (sync.identity_key)"
	case s.cfg.Roster() == nil:
		return "", "no roster yet"
	case m == nil || m.Role != verifier.RoleGate:
		return "", "this gate is not enrolled in the roster"
	case m.Station == "":
		return "", "the roster gives this gate no station"
	default:
		return m.Station, ""
	}
}

// errStationChanged ends a session whose station the roster changed.
var errStationChanged = errors.New("the roster moved this gate to another station")

// Run shares grants until ctx ends, then returns nil. It connects,
// subscribes to the station's topic and publishes the gate's grants;
// without a broker, roster or station it stays local-only, retrying with
// jittered backoff, and says so in State. It forgets grants older than
// the window every second, connected or not.
func (s *Station) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.forgetLoop(ctx)
	}()
	defer wg.Wait()
	backoff := clock.Backoff{Min: s.cfg.ReconnectMin, Max: s.cfg.ReconnectMax}
	for {
		station, why := s.ownStation()
		wait := s.cfg.Retry
		if why == "" {
			err := s.session(ctx, station, &backoff)
			if ctx.Err() != nil {
				s.setMode(false, station, "stopped")
				return nil
			}
			why = "broker: " + err.Error()
			wait = backoff.Next()
			if errors.Is(err, errStationChanged) {
				wait = 0
			}
		}
		s.setMode(false, station, why)
		if !clock.Sleep(ctx, nil, wait) {
			return nil
		}
	}
}

// forgetEvery is how often the memory drops grants past the window.
const forgetEvery = time.Second

func (s *Station) forgetLoop(ctx context.Context) {
	t := time.NewTicker(forgetEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mem.Forget(s.cfg.Now(), s.cfg.Window())
		}
	}
}

// session is one connection: connect, subscribe, then publish grants
// until ctx ends or the connection is lost.
func (s *Station) session(ctx context.Context, station string, backoff *clock.Backoff) error {
	o, err := s.cfg.Conn.Options()
	if err != nil {
		return err
	}
	lost := make(chan error, 1)
	o.SetClientID(s.cfg.Conn.ClientID + "-passback").SetCleanSession(true).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	c := mqtt.NewClient(o)
	if err := wait(ctx, c.Connect()); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Disconnect(100)
	topic := Topic(s.cfg.Fleet, station)
	if err := wait(ctx, c.Subscribe(topic, s.qos, func(_ mqtt.Client, m mqtt.Message) { s.receive(station, m.Payload()) })); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	backoff.Reset()
	s.setMode(true, station, "")
	check := time.NewTicker(s.cfg.Retry)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-lost:
			return fmt.Errorf("connection lost: %w", err)
		case <-check.C:
			if now, _ := s.ownStation(); now != station {
				return errStationChanged
			}
		case g := <-s.grants:
			if err := s.publish(ctx, c, topic, station, g); err != nil {
				s.update(func(st *State) { st.Unsent++ })
				return fmt.Errorf("publish: %w", err)
			}
		}
	}
}

// publish signs and sends one grant.
func (s *Station) publish(ctx context.Context, c mqtt.Client, topic, station string, g Grant) error {
	g.Station = station
	payload, err := g.Sign(s.cfg.Fleet, s.cfg.Key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	if err := wait(ctx, c.Publish(topic, s.qos, false, payload)); err != nil {
		return err
	}
	s.update(func(st *State) { st.Published++ })
	return nil
}

// receive checks one message from the station's topic and remembers the
// grant it carries, or counts why it was refused. The gate's own grants
// come back to it and are skipped: its own store remembers them.
func (s *Station) receive(station string, payload []byte) {
	if sm, err := wire.Open(payload); err == nil && sm.Signer == s.cfg.Gate {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := checker{fleet: s.cfg.Fleet, station: station, roster: s.cfg.Roster(), now: s.cfg.Now(),
		window: s.cfg.Window(), skew: s.cfg.MaxSkew, lastSeq: func(g string) uint64 { return s.lastSeq[g] }}
	g, err := c.check(payload)
	if err != nil {
		reason := ReasonOf(err)
		s.state.Refused[reason]++
		s.log.Warn("station grant refused", "reason", reason, "err", err)
		return
	}
	s.lastSeq[g.Gate] = g.Seq
	s.mem.Put(g.Voucher, time.Unix(0, g.At))
	s.state.Accepted++
	if s.cfg.OnAccept != nil {
		s.cfg.OnAccept(g)
	}
}

// wait waits for a paho token or ctx.
func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Done():
		return t.Error()
	}
}
