// Package display serves the gate's HTTP surfaces, each on its own
// address: the passenger page (read-only, fed by server-sent events), the
// observability endpoints (/healthz and Prometheus /metrics), and the
// admin API (the attendant's kiosk page and actions, emergency
// acknowledge), which takes only authenticated requests. Every surface
// refuses a Host header that does not name the gate.
//
// Publishing never blocks the decision loop: each connected page has a
// bounded mailbox and a slow page loses its oldest events, never the
// latest one.
package display

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"wicket/device"
)

// Limits of the server.
const (
	// DefaultIdleAfter is how long a verdict stays on screen.
	DefaultIdleAfter = 5 * time.Second
	// DefaultAttendantHold is how long an attendant prompt stays on screen
	// in kiosk mode, where someone is expected to answer it.
	DefaultAttendantHold = 30 * time.Second
	// DefaultMaxClients bounds the event streams of remote pages (the
	// gate's own screen, on loopback, is not counted): a kiosk, a
	// technician's laptop and spare room for reconnects.
	DefaultMaxClients = 16
	// DefaultMaxPerSource bounds the event streams of one source address.
	// A page holds one; a few more cover reloads and a second tab. A new
	// stream beyond it ends that source's oldest one, so no source can
	// lock itself out, nor hold more than its share.
	DefaultMaxPerSource = 4
	// minToken is the shortest admin token accepted: 128 bits as hex.
	minToken = 32
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
	// Addr is where Run serves the passenger page; empty: no page. Keep it
	// on loopback unless the port is firewalled.
	Addr string
	// MetricsAddr is where Run serves /metrics and /healthz; empty: not
	// served.
	MetricsAddr string
	// AdminAddr is where Run serves the admin API; empty: not served. Run
	// refuses to serve it without a credential (AdminToken or
	// AdminTLS.ClientCAs).
	AdminAddr string
	// AdminToken is the admin API's bearer token (also accepted as the
	// password of HTTP basic authentication, which a browser asks for);
	// at least minToken bytes. Empty: no token accepted.
	AdminToken []byte
	// AdminTLS, if set, makes the admin API speak TLS with its
	// certificate. With ClientCAs set, a client certificate that verifies
	// against them is a credential too.
	AdminTLS *tls.Config
	// Hosts are the names, besides localhost and the IP address a request
	// arrived at, by which the gate is reached; a request with any other
	// Host header is refused on every surface (a DNS-rebinding page
	// presents its own name).
	Hosts []string
	// IdleAfter is how long a verdict stays on screen before the idle
	// screen; DefaultIdleAfter when 0.
	IdleAfter time.Duration
	// AttendantHold replaces IdleAfter for attendant prompts in kiosk
	// mode; DefaultAttendantHold when 0.
	AttendantHold time.Duration
	// Kiosk turns on the attendant actions: POST /attendant and the
	// confirm and reject buttons of the page served by the admin API.
	Kiosk bool
	// Gate is the gate's name, shown on the idle screen.
	Gate string
	// MaxClients bounds the event streams of remote (non-loopback)
	// sources together; DefaultMaxClients when 0.
	MaxClients int
	// MaxPerSource bounds the event streams of one source address;
	// DefaultMaxPerSource when 0.
	MaxPerSource int
	// Clock drives idle timers and heartbeats; the real clock when nil.
	Clock clockwork.Clock
}

func (c *Config) setDefaults() {
	if c.IdleAfter <= 0 {
		c.IdleAfter = DefaultIdleAfter
	}
	if c.AttendantHold <= 0 {
		c.AttendantHold = DefaultAttendantHold
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxPerSource <= 0 {
		c.MaxPerSource = DefaultMaxPerSource
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
}

// Server is the display and observability server. Create it with New.
type Server struct {
	cfg       Config
	log       *slog.Logger
	metrics   *Metrics
	page      [2][]byte // the passenger page, open and closed
	kiosk     [2][]byte // the page of the admin API, open and closed
	hosts     map[string]bool
	tokenHash [sha256.Size]byte
	done      chan struct{}
	close     sync.Once

	// OnAttendant, if set, is called for an attendant's answer to the
	// prompt of scan seq (kiosk mode only). It runs on the request's
	// goroutine; an error is reported to the page as 409. Set it before
	// the handler serves requests.
	OnAttendant func(seq uint64, confirm bool) error
	// OnAcknowledge, if set, is called for an authenticated request to
	// end a latched emergency release; by says who asked, and ended
	// whether there was a release to end. It runs on the request's
	// goroutine. An error wrapping gate.ErrEmergencyActive is reported as
	// 409 (the input is still active; the gate stays free), any other as
	// 500. Set it before the handler serves requests.
	OnAcknowledge func(by string) (ended bool, err error)
	// OnClockReset, if set, is called for an authenticated request to
	// apply a signed clock-floor reset (POST /clock-reset); by says who
	// asked. It runs on the request's goroutine. Set it before the
	// handler serves requests.
	OnClockReset func(order []byte, by string) ClockResetAnswer
	// OnStatus, if set, gives the gate's status for GET /status on the
	// admin API. It must not block.
	OnStatus func() any

	refusedMu  sync.Mutex
	refusedLog *device.LogLimiter

	mu      sync.Mutex
	clients map[*client]struct{}
	streams uint64 // streams ever registered: the age of a client
	state   State
	screen  Event // what a newly connected page shows
	idle    clockwork.Timer
	gen     uint64 // screen generation; a stale idle timer does nothing
}

type client struct {
	ch   chan Event
	src  netip.Addr
	n    uint64        // registration order; the oldest has the lowest
	gone chan struct{} // closed when a newer stream of src takes its place
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
	s.refusedLog = device.NewLogLimiter(refuseLogEvery)
	s.page = [2][]byte{pageOpen: renderPage(cfg, false, false), pageClosed: renderPage(cfg, false, true)}
	s.kiosk = [2][]byte{pageOpen: renderPage(cfg, true, false), pageClosed: renderPage(cfg, true, true)}
	s.hosts = make(map[string]bool, len(cfg.Hosts))
	for _, h := range cfg.Hosts {
		s.hosts[normalHost(h)] = true
	}
	if len(cfg.AdminToken) > 0 {
		s.tokenHash = sha256.Sum256(cfg.AdminToken)
	}
	s.screen = s.idleEvent()
	return s
}

// IsLoopback reports whether addr (host:port) listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
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

// PageHandler returns the passenger page's handler: GET / and GET
// /events. It changes nothing on the gate.
func (s *Server) PageHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { s.servePage(w, s.page, passengerState) })
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) { s.serveEvents(w, r, passengerState) })
	return s.checkHost(mux)
}

// MetricsHandler returns the observability handler: GET /healthz and GET
// /metrics. It changes nothing on the gate.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.Handle("GET /metrics", s.metrics)
	return s.checkHost(mux)
}

// AdminHandler returns the admin API's handler. Every request must name
// the gate in its Host header, carry a credential and, if a browser marks
// where it comes from, come from the admin page itself. It serves the
// kiosk page (GET /), its events, the gate state (GET /state), the
// gate's status for wicketd status (GET /status), POST
// /emergency/ack, POST /clock-reset and, in kiosk mode, POST /attendant.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { s.servePage(w, s.kiosk, technicianState) })
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) { s.serveEvents(w, r, technicianState) })
	mux.HandleFunc("GET /state", s.serveState)
	mux.HandleFunc("GET /status", s.serveStatus)
	mux.HandleFunc("POST /emergency/ack", s.serveAcknowledge)
	mux.HandleFunc("POST /clock-reset", s.serveClockReset)
	if s.cfg.Kiosk {
		mux.HandleFunc("POST /attendant", s.serveAttendant)
	}
	return s.checkHost(s.checkAdmin(mux))
}

// Listeners are the sockets of the surfaces; a nil one is not served.
type Listeners struct {
	Page, Metrics, Admin net.Listener
}

func (l Listeners) close() {
	for _, ln := range []net.Listener{l.Page, l.Metrics, l.Admin} {
		if ln != nil {
			ln.Close()
		}
	}
}

// ErrNoCredential: the admin API was asked for without a token or a
// client CA.
var ErrNoCredential = errors.New("admin API without a credential: set a token file or a client CA")

// listenRetry is how long Run waits before it tries again to listen on an
// address it could not get (another process holds the port).
const listenRetry = 10 * time.Second

// surface is one HTTP surface: its name in logs and errors, its handler
// and its TLS config (nil: plain HTTP).
type surface struct {
	name string
	h    http.Handler
	tls  *tls.Config
}

func (s *Server) surfaces() (page, metrics, admin surface) {
	return surface{"page", s.PageHandler(), nil}, surface{"metrics", s.MetricsHandler(), nil}, surface{"admin", s.AdminHandler(), s.cfg.AdminTLS}
}

// checkAdminCredential refuses an admin API that would take anyone.
func (s *Server) checkAdminCredential() error {
	if len(s.cfg.AdminToken) == 0 && (s.cfg.AdminTLS == nil || s.cfg.AdminTLS.ClientCAs == nil) {
		return ErrNoCredential
	}
	if n := len(s.cfg.AdminToken); n > 0 && n < minToken {
		return fmt.Errorf("admin token: %d bytes; at least %d", n, minToken)
	}
	return nil
}

// Run serves each configured surface on its address until ctx ends; see
// Serve. It refuses at once (ErrNoCredential) an admin API without a
// credential. A surface whose address cannot be had (the port is taken)
// is logged as an error and tried again every listenRetry while the
// others serve: the gate's decisions never wait on its HTTP surfaces.
func (s *Server) Run(ctx context.Context) error {
	defer s.Close()
	if s.cfg.AdminAddr != "" {
		if err := s.checkAdminCredential(); err != nil {
			return err
		}
	}
	page, metrics, admin := s.surfaces()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, x := range []struct {
		addr string
		surface
	}{{s.cfg.Addr, page}, {s.cfg.MetricsAddr, metrics}, {s.cfg.AdminAddr, admin}} {
		if x.addr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ln, err := net.Listen("tcp", x.addr)
				if err == nil {
					errs[i] = s.serveOne(ctx, x.surface, ln)
					return
				}
				s.log.Error("http surface cannot listen; retrying, the gate keeps deciding", "surface", x.name, "addr", x.addr, "err", err, "retry", listenRetry)
				select {
				case <-ctx.Done():
					return
				case <-s.cfg.Clock.After(listenRetry):
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Serve serves each surface on its listener until ctx ends, then closes
// the event streams and shuts the servers down. The admin API speaks TLS
// when Config.AdminTLS is set. It returns nil after a shutdown, or the
// errors of the surfaces that failed, each named; it closes every
// listener in every case. With no listener at all it returns at once.
func (s *Server) Serve(ctx context.Context, l Listeners) error {
	defer s.Close()
	if l.Admin != nil {
		if err := s.checkAdminCredential(); err != nil {
			l.close()
			return err
		}
	}
	page, metrics, admin := s.surfaces()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, x := range []struct {
		ln net.Listener
		surface
	}{{l.Page, page}, {l.Metrics, metrics}, {l.Admin, admin}} {
		if x.ln == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.serveOne(ctx, x.surface, x.ln)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// serveOne serves one surface on ln until ctx ends or serving fails, then
// shuts it down; it closes ln.
func (s *Server) serveOne(ctx context.Context, x surface, ln net.Listener) error {
	hs := &http.Server{
		Handler:           x.h,
		TLSConfig:         x.tls,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for handlers; event streams end only when told.
	hs.RegisterOnShutdown(s.Close)
	addr := ln.Addr().String()
	if x.tls != nil {
		ln = tls.NewListener(ln, x.tls)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("http serving", "surface", x.name, "addr", addr, "tls", x.tls != nil, "kiosk", s.cfg.Kiosk && x.name == "admin")
	if x.name != "metrics" && !IsLoopback(addr) {
		s.log.Warn("http surface reachable beyond loopback", "surface", x.name, "addr", addr)
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	serr := hs.Shutdown(sctx)
	if err == nil {
		err = <-errc
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("%s serve: %w", x.name, err)
	}
	if serr != nil {
		serr = fmt.Errorf("%s shutdown: %w", x.name, serr)
	}
	return errors.Join(err, serr)
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

// passengerState is the gate state as the passenger page has it: without
// the technician's reason, in the page as in the event stream. The page
// says in its own words that the gate is closed; the reason is for the
// admin page and /healthz.
func passengerState(st State) State {
	st.Reason = ""
	return st
}

// technicianState is the gate state as the admin page has it: all of it.
func technicianState(st State) State { return st }

// servePage serves one of the pages, closed or open as the gate is, with
// the current screen in it and the gate state as view lets that page have
// it.
func (s *Server) servePage(w http.ResponseWriter, pages [2][]byte, view func(State) State) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	s.mu.Lock()
	screen := s.screen
	screen.State = view(s.state)
	s.mu.Unlock()
	initial, err := json.Marshal(screen)
	if err != nil {
		initial = []byte("null")
	}
	page := pages[pageOpen]
	if !screen.State.Ready {
		page = pages[pageClosed]
	}
	_, _ = w.Write(bytes.Replace(page, []byte(initialMarker), initial, 1))
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

// ErrTooManyClients is reported (as 503) when remote sources hold
// MaxClients streams.
var ErrTooManyClients = errors.New("too many display clients")

// register adds a stream from src. A source at MaxPerSource streams gets
// the new one in place of its oldest, whose gone channel is closed.
// Remote sources together hold at most MaxClients streams; loopback
// sources (the gate's own screen) are not counted against that bound, so
// remote pages can never lock the screen out.
func (s *Server) register(src netip.Addr) (*client, Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest *client
	same, remote := 0, 0
	for c := range s.clients {
		if !c.src.IsLoopback() {
			remote++
		}
		if c.src != src {
			continue
		}
		same++
		if oldest == nil || c.n < oldest.n {
			oldest = c
		}
	}
	switch {
	case same >= s.cfg.MaxPerSource:
		delete(s.clients, oldest)
		close(oldest.gone)
	case !src.IsLoopback() && remote >= s.cfg.MaxClients:
		return nil, Event{}, ErrTooManyClients
	}
	s.streams++
	c := &client{ch: make(chan Event, mailboxSize), src: src, n: s.streams, gone: make(chan struct{})}
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

// source is the address a request comes from; the zero Addr (counted as
// one remote source) if it cannot be read.
func source(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// serveEvents streams the screen's events to one page, each with the gate
// state as view lets that page have it.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, view func(State) State) {
	c, first, err := s.register(source(r))
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
	send := func(ev Event) bool {
		ev.State = view(ev.State)
		return write(sseData(ev))
	}
	if !write(fmt.Appendf(nil, "retry: %d\n\n", reconnectMillis)) || !send(first) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-c.gone:
			return
		case <-hb.Chan():
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		case ev := <-c.ch:
			if !send(ev) {
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
