// Package mqttsync connects a gate to its fleet over MQTT 3.1.1: it sends
// the store's outbox as batches of records and deletes them only when a
// collector acknowledges them (wire.Ack), receives signed key sets and
// revocation/override batches (retained snapshot plus deltas) and hands
// them to the trust Applier, publishes alerts, and keeps a retained
// status with a last will that says "offline".
//
// Nothing here blocks the decision loop: the loop only calls Notify and
// Alert, which never wait. Message handlers only queue; workers do the
// store and trust work.
package mqttsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/mqttconn"
	"wicket/sync/store"
	"wicket/sync/trust"
	"wicket/sync/wire"
)

// Client is the part of paho the gate uses (paho's mqtt.Client has it).
type Client interface {
	Connect() mqtt.Token
	Disconnect(quiesce uint)
	Publish(topic string, qos byte, retained bool, payload any) mqtt.Token
	Subscribe(topic string, qos byte, callback mqtt.MessageHandler) mqtt.Token
}

// Config configures the gate's sync.
type Config struct {
	mqttconn.Conn
	Fleet, Gate string
	// BatchSize is the most records in one message.
	BatchSize int
	// MaxInflight is how many unacknowledged batches may be out at once.
	MaxInflight int
	// AckTimeout: unacknowledged batches are sent again after this long
	// (collectors drop duplicates).
	AckTimeout time.Duration
	// StatusEvery is how often the retained status is refreshed.
	StatusEvery time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between attempts.
	ReconnectMin, ReconnectMax time.Duration
	// NewClient makes the MQTT client; nil means paho.
	NewClient func(*mqtt.ClientOptions) Client
}

// Limits with their reasons.
const (
	// handlerQueue bounds messages waiting for a worker. Acks are tiny and
	// idempotent; a trust document dropped here is fetched again by a
	// resubscription (retained messages are resent).
	handlerQueue = 256
	// publishWait bounds one wait for the broker's PUBACK.
	publishWait = 10 * time.Second
	// tick is how often the publisher looks at the outbox without a Notify.
	tick = time.Second
	// gapWait is how long a delta may wait for the version it follows
	// before the gate asks the broker for the retained documents again:
	// long enough for the deltas of one catch-up (delivered in any order)
	// to arrive, short enough that a revocation held behind a lost delta
	// is in force within a few seconds. Retried after gapRetry.
	gapWait  = 500 * time.Millisecond
	gapRetry = 30 * time.Second
	// maxSent bounds the remembered ranges of batches sent and not yet
	// acknowledged: MaxInflight batches per AckTimeout, kept across a
	// few resends. An ack of a range forgotten here is refused and the
	// records are sent (and acknowledged) again.
	maxSent = 1024
)

// State is what the gate's status reports about sync.
type State struct {
	Connected   bool
	Attempts    uint64 // connection attempts, failed ones included
	LastConnect time.Time
	LastAck     time.Time
	Published   uint64 // records sent (resends included)
	Acked       uint64 // outbox rows deleted on acks
	Resends     uint64 // times unacknowledged batches were sent again
	Dropped     uint64 // incoming messages dropped on a full queue
	// AcksRefused counts acks that covered records the gate has not
	// sent, or already had acknowledged: forged or misdirected.
	AcksRefused uint64
	// Ignored counts messages on topics the gate has no use for (junk
	// on the trust tree, leftovers of an old subscription): acknowledged
	// and dropped as they arrive, so they never hold the session.
	Ignored uint64
	// Subscribes counts subscriptions made: on a connect that found no
	// session on the broker, on a resync, or when the gate lacks trust
	// data. A reconnect to a live session makes none, so the broker does
	// not resend the retained trust documents.
	Subscribes uint64
}

// Sync runs the gate's side. Create it with New and call Run.
type Sync struct {
	cfg    Config
	topics wire.Topics
	st     *store.Store
	tr     *trust.Applier
	status func() wire.Status
	log    *slog.Logger

	notify    chan struct{}
	alerts    chan store.Event
	incoming  chan mqtt.Message
	lost      chan error
	resync    atomic.Bool
	parts     chan mqtt.Message // snapshot parts, handed over unbuffered
	quit      chan struct{}     // closed when Run returns
	statusDue atomic.Bool

	mu    sync.Mutex
	state State
	// sent are the seq ranges of batches published and not yet
	// acknowledged; an ack applies only within one of them.
	sent []seqRange
}

// seqRange is the seqs of one records batch, From <= seq <= Through.
type seqRange struct{ from, through uint64 }

// New returns a Sync. status builds the gate's status message.
func New(cfg Config, st *store.Store, tr *trust.Applier, status func() wire.Status, log *slog.Logger) (*Sync, error) {
	if err := wire.ValidName(cfg.Fleet); err != nil {
		return nil, fmt.Errorf("sync.fleet: %w", err)
	}
	if err := wire.ValidName(cfg.Gate); err != nil {
		return nil, fmt.Errorf("gate.id: %w", err)
	}
	if err := cfg.Conn.Validate("sync."); err != nil {
		return nil, err
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > wire.MaxRecordsPerBatch {
		cfg.BatchSize = 100
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 4
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = time.Minute
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = time.Second
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = 2 * time.Minute
	}
	if cfg.NewClient == nil {
		cfg.NewClient = func(o *mqtt.ClientOptions) Client { return mqtt.NewClient(o) }
	}
	return &Sync{
		cfg: cfg, topics: wire.Topics{Fleet: cfg.Fleet}, st: st, tr: tr, status: status,
		log:    log.With("component", "sync"),
		notify: make(chan struct{}, 1), alerts: make(chan store.Event, 64),
		incoming: make(chan mqtt.Message, handlerQueue), lost: make(chan error, 1),
		parts: make(chan mqtt.Message), quit: make(chan struct{}),
	}, nil
}

// Notify says new records are in the outbox. It never blocks.
func (s *Sync) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// StatusChanged asks for the status to be published soon. It never blocks.
func (s *Sync) StatusChanged() { s.statusDue.Store(true); s.Notify() }

// Resync asks for the retained trust data again (the broker sends it on a
// new subscription), for example after the gate dropped damaged data.
func (s *Sync) Resync() { s.resync.Store(true); s.Notify() }

// Alert publishes an alert event at once if connected (best effort: the
// event is in the records as well). It never blocks.
func (s *Sync) Alert(ev store.Event) {
	select {
	case s.alerts <- ev:
	default:
	}
}

// State returns a copy of the sync state.
func (s *Sync) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Sync) update(f func(*State)) {
	s.mu.Lock()
	f(&s.state)
	s.mu.Unlock()
}

// Run connects and keeps the gate in sync until ctx ends; then it
// publishes the offline status and disconnects.
func (s *Sync) Run(ctx context.Context) error {
	opts, err := s.cfg.Conn.Options()
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	will, _ := json.Marshal(wire.Status{Gate: s.cfg.Gate, Online: false})
	opts.SetBinaryWill(s.topics.Status(s.cfg.Gate), will, 1, true)
	// Every message, from the first one after CONNACK, has a handler:
	// a resumed session delivers its queued messages before any
	// Subscribe could register a route, and paho never acknowledges a
	// message without one, which fills the broker's in-flight window and
	// wedges the session.
	opts.SetDefaultPublishHandler(s.onMessage)
	opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		select {
		case s.lost <- err:
		default:
		}
	})
	client := s.cfg.NewClient(opts)
	defer close(s.quit)
	go s.worker(ctx)
	bo := mqttconn.Backoff{Min: s.cfg.ReconnectMin, Max: s.cfg.ReconnectMax}
	for ctx.Err() == nil {
		if err := s.connect(ctx, client); err != nil {
			wait := bo.Next()
			s.log.Warn("broker unreachable; retrying", "broker", s.cfg.Broker, "in", wait.Round(time.Millisecond), "err", err)
			if !mqttconn.Sleep(ctx, wait) {
				break
			}
			continue
		}
		bo.Reset()
		err := s.session(ctx, client)
		s.update(func(st *State) { st.Connected = false })
		if ctx.Err() != nil {
			break
		}
		wait := bo.Next()
		s.log.Warn("broker connection lost; reconnecting", "in", wait.Round(time.Millisecond), "err", err)
		if !mqttconn.Sleep(ctx, wait) {
			break
		}
	}
	s.goodbye(client)
	return nil
}

// connect connects and, when the broker holds no session for the gate
// (or the gate needs its trust data again), subscribes; it waits at most
// the connect timeout. A reconnect to a live session subscribes to
// nothing: the subscriptions are still there, and subscribing again
// would make the broker resend every retained trust document.
func (s *Sync) connect(ctx context.Context, c Client) error {
	select {
	case <-s.lost:
	default:
	}
	s.update(func(st *State) { st.Attempts++ })
	tok := c.Connect()
	if err := wait(ctx, tok); err != nil {
		return err
	}
	present := false
	if ct, ok := tok.(*mqtt.ConnectToken); ok {
		present = ct.SessionPresent()
	}
	if !present || s.needsTrust() {
		s.resync.Store(false)
		for _, topic := range []string{s.topics.Ack(s.cfg.Gate), s.topics.AllTrust()} {
			if err := wait(ctx, c.Subscribe(topic, 1, s.onMessage)); err != nil {
				c.Disconnect(0)
				return fmt.Errorf("subscribe %s: %w", topic, err)
			}
		}
		s.update(func(st *State) { st.Subscribes++ })
	}
	s.update(func(st *State) { st.Connected, st.LastConnect = true, time.Now() })
	s.log.Info("connected to broker", "broker", s.cfg.Broker, "client_id", s.cfg.ClientID, "session_present", present)
	return nil
}

// needsTrust reports whether the gate lacks trust data the broker keeps
// retained: no key set, no revocation/override status, or a delta held
// for a version that never came. Then it subscribes even to a live
// session, which makes the broker resend the retained documents.
func (s *Sync) needsTrust() bool {
	if s.resync.Load() || s.tr.Stats().Gap || s.st.Info().Version == 0 {
		return true
	}
	raw, _, err := s.st.TrustDoc(store.TrustKeySet)
	return err != nil || raw == nil
}

// topic kinds the gate acts on.
const (
	topicOther = iota // nobody wants it: acknowledged and dropped
	topicAck
	topicKeySet
	topicSnapshot
	topicDelta
	topicPart
)

// kind says what a topic is to this gate.
func (s *Sync) kind(topic string) int {
	switch {
	case topic == s.topics.Ack(s.cfg.Gate):
		return topicAck
	case topic == s.topics.KeySet():
		return topicKeySet
	case topic == s.topics.Snapshot():
		return topicSnapshot
	}
	if _, err := s.topics.DeltaVersion(topic); err == nil {
		return topicDelta
	}
	if _, err := s.topics.PartNumber(topic); err == nil {
		return topicPart
	}
	return topicOther
}

// onMessage is paho's handler: it only queues. A trust message that finds
// the queue full makes the gate resubscribe, which brings the retained
// documents again; a lost ack only delays a delete (the batch is resent).
//
// A snapshot part (up to a few MB each, and a large snapshot has hundreds)
// is handed over instead, waiting for the worker: paho acknowledges a
// message when its handler returns, so the broker's in-flight window
// (Mosquitto's max_inflight_messages) bounds the parts held in memory.
//
// A message on a topic the gate has no use for is counted and dropped
// here; paho acknowledges it when onMessage returns.
func (s *Sync) onMessage(_ mqtt.Client, m mqtt.Message) {
	switch s.kind(m.Topic()) {
	case topicOther:
		s.update(func(st *State) { st.Ignored++ })
		return
	case topicPart:
		select {
		case s.parts <- m:
		case <-s.quit:
		}
		return
	}
	select {
	case s.incoming <- m:
	default:
		s.update(func(st *State) { st.Dropped++ })
		if m.Topic() != s.topics.Ack(s.cfg.Gate) {
			s.resync.Store(true)
		}
	}
}

// inflight is one batch waiting for its ack.
type inflight struct {
	from, through uint64
	sent          time.Time
}

// session publishes until the connection is lost or ctx ends.
func (s *Sync) session(ctx context.Context, c Client) error {
	var out []inflight
	var after uint64 // highest seq sent in this round
	t := time.NewTicker(tick)
	defer t.Stop()
	lastStatus := time.Time{}
	var gapSince, lastGapResync time.Time
	for {
		gapSince, lastGapResync = s.checkGap(gapSince, lastGapResync)
		if time.Since(lastStatus) >= s.cfg.StatusEvery || s.statusDue.Swap(false) {
			if err := s.publishStatus(ctx, c); err != nil {
				return err
			}
			lastStatus = time.Now()
		}
		if s.resync.Swap(false) {
			s.log.Info("resubscribing to trust data after a dropped message")
			if err := s.waitLive(ctx, c.Subscribe(s.topics.AllTrust(), 1, s.onMessage)); err != nil {
				return err
			}
			s.update(func(st *State) { st.Subscribes++ })
		}
		out = s.dropAcked(out)
		if len(out) > 0 && time.Since(out[0].sent) > s.cfg.AckTimeout {
			s.log.Info("records not acknowledged in time; sending again", "from", out[0].from, "unacked_batches", len(out))
			s.update(func(st *State) { st.Resends++ })
			out, after = nil, 0
		}
		for len(out) < s.cfg.MaxInflight {
			evs, err := s.st.Outbox(after, s.cfg.BatchSize)
			if err != nil {
				s.log.Error("read outbox", "err", err)
				break
			}
			if len(evs) == 0 {
				break
			}
			payload, err := json.Marshal(wire.Records{Gate: s.cfg.Gate, Records: evs})
			if err != nil {
				return err
			}
			if err := s.waitLive(ctx, c.Publish(s.topics.Records(s.cfg.Gate), 1, false, payload)); err != nil {
				return fmt.Errorf("publish records: %w", err)
			}
			first, last := evs[0].Seq, evs[len(evs)-1].Seq
			s.remember(seqRange{first, last})
			out = append(out, inflight{from: first, through: last, sent: time.Now()})
			after = last
			s.update(func(st *State) { st.Published += uint64(len(evs)) })
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-s.lost:
			return err
		case ev := <-s.alerts:
			if b, err := json.Marshal(ev); err == nil {
				c.Publish(s.topics.Alerts(s.cfg.Gate), 1, false, b)
			}
		case <-s.notify:
		case <-t.C:
		}
	}
}

// checkGap asks for a resync when a delta has been held for gapWait
// (its predecessor lost, for example pushed out of a full session queue
// on the broker), at most once per gapRetry. It returns the new gapSince
// and lastResync.
func (s *Sync) checkGap(since, last time.Time) (time.Time, time.Time) {
	if !s.tr.Stats().Gap {
		return time.Time{}, last
	}
	now := time.Now()
	if since.IsZero() {
		time.AfterFunc(gapWait, s.Notify)
		return now, last
	}
	if now.Sub(since) < gapWait || (!last.IsZero() && now.Sub(last) < gapRetry) {
		return since, last
	}
	s.log.Info("a delta waits for a version that has not come; asking for the retained trust data again")
	s.resync.Store(true)
	return since, now
}

// dropAcked forgets in-flight batches whose rows are gone from the outbox.
func (s *Sync) dropAcked(out []inflight) []inflight {
	keep := out[:0]
	for _, b := range out {
		evs, err := s.st.Outbox(b.from-1, 1)
		if err == nil && len(evs) > 0 && evs[0].Seq <= b.through {
			keep = append(keep, b)
		}
	}
	return keep
}

func (s *Sync) publishStatus(ctx context.Context, c Client) error {
	st := s.status()
	st.Online = true
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.waitLive(ctx, c.Publish(s.topics.Status(s.cfg.Gate), 1, true, b))
}

// goodbye publishes the offline status (the will covers a crash) and
// disconnects.
func (s *Sync) goodbye(c Client) {
	st := s.status()
	st.Online = false
	if b, err := json.Marshal(st); err == nil {
		c.Publish(s.topics.Status(s.cfg.Gate), 1, true, b).WaitTimeout(2 * time.Second)
	}
	c.Disconnect(250)
}

// worker handles incoming messages: acks delete outbox rows; trust
// documents go to the Applier.
func (s *Sync) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.incoming:
			s.handle(m)
		case m := <-s.parts:
			s.handle(m)
		}
	}
}

func (s *Sync) handle(m mqtt.Message) {
	topic, payload := m.Topic(), m.Payload()
	if len(payload) == 0 {
		return
	}
	var res trust.Result
	switch s.kind(topic) {
	case topicAck:
		s.applyAck(payload)
		return
	case topicKeySet:
		res, _ = s.tr.KeySet(payload, "broker")
	case topicSnapshot:
		res, _ = s.tr.Batch(payload, "broker snapshot")
	case topicDelta:
		res, _ = s.tr.Batch(payload, "broker delta")
	case topicPart:
		res, _ = s.tr.Batch(payload, "broker snapshot part")
	}
	switch res {
	case trust.Applied:
		s.StatusChanged()
	case trust.Held:
		s.Notify() // the session loop watches the gap
	}
}

// remember notes a published batch, forgetting the oldest beyond
// maxSent.
func (s *Sync) remember(r seqRange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) >= maxSent {
		s.sent = append(s.sent[:0], s.sent[len(s.sent)-maxSent+1:]...)
	}
	s.sent = append(s.sent, r)
}

// claim reports whether [from, through] lies within one batch sent and
// not yet acknowledged, and then forgets the batches the ack covers
// whole. A refusal is counted; it returns the count so far.
func (s *Sync) claim(from, through uint64) (bool, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.sent, func(r seqRange) bool { return r.from <= from && through <= r.through }) {
		s.state.AcksRefused++
		return false, s.state.AcksRefused
	}
	s.sent = slices.DeleteFunc(s.sent, func(r seqRange) bool { return from <= r.from && r.through <= through })
	return true, s.state.AcksRefused
}

// applyAck deletes the outbox rows an ack covers, if the gate sent them
// and has not had them acknowledged yet.
func (s *Sync) applyAck(payload []byte) {
	a, err := wire.DecodeAck(payload)
	if err != nil {
		s.log.Warn("bad ack", "err", err)
		return
	}
	if ok, refused := s.claim(a.From, a.Through); !ok {
		// Logged the first time and every 100th: a flood of forged acks
		// must not flood the log.
		if refused%100 == 1 {
			s.log.Warn("refused an ack of records not sent or already acknowledged", "from", a.From, "through", a.Through, "refused_total", refused)
		}
		return
	}
	n, err := s.st.AckRange(a.From, a.Through)
	if err != nil {
		s.log.Error("apply ack", "err", err)
		return
	}
	s.update(func(st *State) { st.LastAck, st.Acked = time.Now(), st.Acked+uint64(n) })
	s.Notify()
}

// errTimeout: the broker did not answer in time.
var errTimeout = errors.New("broker did not answer in time")

// waitLive is wait that also ends when the connection is lost: with a
// persistent session paho never completes a QoS 1 publish whose
// connection dropped, so without this a cut mid-publish would hold the
// session for publishWait before reconnecting.
func (s *Sync) waitLive(ctx context.Context, t mqtt.Token) error {
	return waitOr(ctx, t, s.lost)
}

// wait waits for a token, ctx or publishWait, whichever is first.
func wait(ctx context.Context, t mqtt.Token) error {
	return waitOr(ctx, t, nil)
}

// waitOr is wait that also ends on a lost-connection signal (a nil
// channel never sends).
func waitOr(ctx context.Context, t mqtt.Token, lost <-chan error) error {
	timer := time.NewTimer(publishWait)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case err := <-lost:
		return fmt.Errorf("connection lost while waiting for the broker: %w", err)
	case <-timer.C:
		return errTimeout
	}
}
