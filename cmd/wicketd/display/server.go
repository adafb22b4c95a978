// Package display serves the gate's local screen and its observability
// endpoints: a self-contained page fed by server-sent events, an attendant
// action endpoint for kiosk mode, /healthz and Prometheus /metrics.
//
// Publishing never blocks the decision loop: each connected page has a
// bounded mailbox and a slow page loses its oldest events, never the
// latest one.
package display

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Limits of the server.
const (
	// DefaultAddr listens on loopback only: the page is for the gate's own
	// screen.
	DefaultAddr = "127.0.0.1:8080"
	// DefaultIdleAfter is how long a verdict stays on screen.
	DefaultIdleAfter = 5 * time.Second
	// DefaultAttendantHold is how long an attendant prompt stays on screen
	// in kiosk mode, where someone is expected to answer it.
	DefaultAttendantHold = 30 * time.Second
	// DefaultMaxClients bounds connected pages: the gate's screen, a
	// technician's laptop and spare room for reconnects.
	DefaultMaxClients = 16
	// heartbeatEvery keeps proxies and the browser from timing out an
	// idle event stream.
	heartbeatEvery = 15 * time.Second
	// mailboxSize is the number of events a page may lag behind before it
	// loses the oldest; a page only shows the latest.
	mailboxSize = 8
	// writeTimeout bounds one write to a page; a page stuck longer is
	// dropped and reconnects.
	writeTimeout = 10 * time.Second
	// maxAttendantBody bounds the body of POST /attendant.
	maxAttendantBody = 1 << 10
	// shutdownTimeout bounds how long Serve waits for requests in flight.
	shutdownTimeout = 2 * time.Second
	// reconnectMillis is the EventSource retry delay sent to pages.
	reconnectMillis = 2000
)

// Config configures a Server. Zero fields take their defaults.
type Config struct {
	// Addr is the listen address for Run; DefaultAddr when empty. Keep it
	// on loopback unless the port is firewalled.
	Addr string
	// IdleAfter is how long a verdict stays on screen before the idle
	// screen; DefaultIdleAfter when 0.
	IdleAfter time.Duration
	// AttendantHold replaces IdleAfter for attendant prompts in kiosk
	// mode; DefaultAttendantHold when 0.
	AttendantHold time.Duration
	// Kiosk turns on the attendant actions (POST /attendant and the
	// page's confirm and reject buttons).
	Kiosk bool
	// Gate is the gate's name, shown on the idle screen.
	Gate string
	// MaxClients bounds connected event streams; DefaultMaxClients when 0.
	MaxClients int
	// Clock drives idle timers and heartbeats; the real clock when nil.
	Clock clockwork.Clock
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.IdleAfter <= 0 {
		c.IdleAfter = DefaultIdleAfter
	}
	if c.AttendantHold <= 0 {
		c.AttendantHold = DefaultAttendantHold
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
}

// Server is the display and observability server. Create it with New.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	page    []byte
	done    chan struct{}
	close   sync.Once

	// OnAttendant, if set, is called for an attendant's answer to the
	// prompt of scan seq (kiosk mode only). It runs on the request's
	// goroutine; an error is reported to the page as 409. Set it before
	// the handler serves requests.
	OnAttendant func(seq uint64, confirm bool) error

	mu      sync.Mutex
	clients map[*client]struct{}
	state   State
	screen  Event // what a newly connected page shows
	idle    clockwork.Timer
	gen     uint64 // screen generation; a stale idle timer does nothing
}

type client struct {
	ch chan Event
}

// New returns a Server with its defaults filled in. It does not listen:
// use Run or Handler.
func New(cfg Config, log *slog.Logger) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:     cfg,
		log:     log.With("component", "display"),
		metrics: NewMetrics(),
		done:    make(chan struct{}),
		clients: make(map[*client]struct{}),
		state:   State{Reason: "starting"},
	}
	s.page = renderPage(cfg)
	s.screen = s.idleEvent()
	if ip := addrIP(cfg.Addr); ip == nil || !ip.IsLoopback() {
		s.log.Warn("display listens beyond loopback", "addr", cfg.Addr)
	}
	return s
}

func addrIP(addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	if host == "localhost" {
		return net.IPv4(127, 0, 0, 1)
	}
	return net.ParseIP(host)
}

// Metrics returns the server's metrics, served at /metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

func (s *Server) idleEvent() Event {
	return Event{Type: TypeIdle, Verdict: VerdictIdle, At: s.cfg.Clock.Now()}
}

// Publish sends ev to every connected page and makes it what newly
// connected pages show. It never blocks: a page that has fallen
// mailboxSize events behind loses its oldest event. An event of TypeDecision
// returns the page to idle after IdleAfter (AttendantHold for attendant
// prompts in kiosk mode) unless another decision or an idle event
// replaces it; a TypeState event leaves the screen and its timer alone.
// An empty Type is taken as TypeDecision. The server fills in ev.State.
func (s *Server) Publish(ev Event) {
	if ev.Type == "" {
		ev.Type = TypeDecision
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Type == TypeState {
		s.broadcastLocked(ev)
		return
	}
	s.gen++
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	if ev.Type == TypeDecision {
		hold := s.cfg.IdleAfter
		if ev.Attendant && s.cfg.Kiosk {
			hold = s.cfg.AttendantHold
		}
		gen := s.gen
		s.idle = s.cfg.Clock.AfterFunc(hold, func() { s.goIdle(gen) })
	}
	s.screen = ev
	s.broadcastLocked(ev)
}

// goIdle returns the pages to idle if no event came since generation gen.
func (s *Server) goIdle(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return
	}
	s.idle = nil
	s.screen = s.idleEvent()
	s.broadcastLocked(s.screen)
}

// SetState replaces the gate state: /healthz reports it and every page
// gets a TypeState event with the new banners. Never blocks.
func (s *Server) SetState(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == s.state {
		return
	}
	s.state = st
	s.broadcastLocked(Event{Type: TypeState, At: s.cfg.Clock.Now()})
}

// State returns the gate state last set.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Server) broadcastLocked(ev Event) {
	ev.State = s.state
	for c := range s.clients {
		c.offer(ev)
	}
}

// offer puts ev in the mailbox, dropping the oldest event if it is full.
// Callers hold Server.mu, so offers to one client never race each other.
func (c *client) offer(ev Event) {
	for {
		select {
		case c.ch <- ev:
			return
		default:
		}
		select {
		case <-c.ch:
		default:
		}
	}
}

// Handler returns the HTTP handler for the page, /events, /healthz,
// /metrics and, in kiosk mode, POST /attendant.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.Handle("GET /metrics", s.metrics)
	if s.cfg.Kiosk {
		mux.HandleFunc("POST /attendant", s.serveAttendant)
	}
	return mux
}

// Run serves Handler on Config.Addr until ctx ends; see Serve.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("display listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves Handler on ln until ctx ends, then closes the event
// streams and shuts the server down. It returns nil after a shutdown and
// closes ln in every case.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(s.Close)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("display serving", "addr", ln.Addr().String(), "kiosk", s.cfg.Kiosk)
	select {
	case err := <-errc:
		return fmt.Errorf("display serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("display shutdown: %w", err)
	}
	return nil
}

// Close ends every event stream and stops the idle timer. Idempotent.
func (s *Server) Close() {
	s.close.Do(func() {
		close(s.done)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.gen++
		if s.idle != nil {
			s.idle.Stop()
			s.idle = nil
		}
	})
}

func (s *Server) servePage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	s.mu.Lock()
	screen := s.screen
	screen.State = s.state
	s.mu.Unlock()
	initial, err := json.Marshal(screen)
	if err != nil {
		initial = []byte("null")
	}
	_, _ = w.Write(bytes.Replace(s.page, []byte(initialMarker), initial, 1))
}

// initialMarker stands in the page for the current screen, as JSON; Go's
// encoder escapes <, > and &, so it can't end the script element.
const initialMarker = "__WICKET_INITIAL__"

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	st := s.State()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if st.Ready {
		_, _ = w.Write([]byte("{\"ready\":true}\n"))
		return
	}
	reason := st.Reason
	if reason == "" {
		reason = "not ready"
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(struct {
		Ready  bool   `json:"ready"`
		Reason string `json:"reason"`
	}{false, reason})
}

// ErrTooManyClients is reported (as 503) when MaxClients streams are open.
var ErrTooManyClients = errors.New("too many display clients")

func (s *Server) register() (*client, Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.clients) >= s.cfg.MaxClients {
		return nil, Event{}, ErrTooManyClients
	}
	c := &client{ch: make(chan Event, mailboxSize)}
	s.clients[c] = struct{}{}
	first := s.screen
	first.State = s.state
	return c, first, nil
}

func (s *Server) unregister(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, c)
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	c, first, err := s.register()
	if err != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer s.unregister(c)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	hb := s.cfg.Clock.NewTicker(heartbeatEvery)
	defer hb.Stop()
	write := func(p []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(p); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(fmt.Appendf(nil, "retry: %d\n\n", reconnectMillis)) || !write(sseData(first)) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-hb.Chan():
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		case ev := <-c.ch:
			if !write(sseData(ev)) {
				s.log.Debug("display client write failed; dropping it")
				return
			}
		}
	}
}

func sseData(ev Event) []byte {
	b, err := json.Marshal(ev)
	if err != nil {
		b = []byte(`{"type":"idle","verdict":"idle"}`)
	}
	out := make([]byte, 0, len(b)+8)
	out = append(out, "data: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}
