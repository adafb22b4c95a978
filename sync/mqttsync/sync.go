// Package mqttsync connects a gate to its fleet over MQTT 3.1.1: it sends
// the store's outbox as batches of records signed with the gate's
// identity key and deletes them only when an enrolled collector
// acknowledges them (a signed wire.Ack within a batch the gate sent and
// has not had acknowledged), receives signed key sets, rosters and
// revocation/override batches (retained snapshot plus deltas) and the
// authority's signed orders (clock-floor resets, emergency acknowledges)
// and hands them to the trust Applier, publishes alerts, and keeps a
// signed retained status with a last will that says "offline".
//
// A session never wedges: every message has a handler from the first
// one after CONNACK, and what the gate has no use for is acknowledged
// and dropped. The gate subscribes only when the broker kept no session
// for it (or it lacks trust data), so a reconnect does not make the
// broker resend the retained trust documents.
//
// A subscription counts only once the broker confirmed it: a SUBACK
// with the failure code 0x80 (a NATS node that could not create the
// JetStream consumer behind it, a Mosquitto ACL that refuses it) or no
// SUBACK in time leaves it pending, and the gate subscribes again with
// backoff on the same connection until the broker takes it. The ack
// subscription is made on the first connect of every Run and renewed
// (unsubscribe, subscribe) after three resends in a row without an ack,
// as a broker may report a session present whose
// subscriptions it failed to restore. A trust subscription that brings
// none of the retained documents within retainedWait is renewed too,
// and with Config.TrustSilence so is one resumed on a reconnect that
// then stays silent. With Config.TrustQoS0 the trust tree is subscribed
// at QoS 0 and renewed on every connect.
// A connect is never abandoned half-way: the gate waits for paho's
// Connect to finish before it tries again, so it never has two connects
// in flight.
//
// Nothing here blocks the decision loop: the loop only calls Notify and
// Alert, which never wait. Message handlers only queue; workers do the
// store and trust work.
package mqttsync

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/internal/clock"
	"wicket/sync/mqttconn"
	"wicket/sync/snapfile"
	"wicket/sync/store"
	"wicket/sync/trust"
	"wicket/sync/wire"
	"wicket/verifier"
)

// Client is the part of paho the gate uses (paho's mqtt.Client has it).
type Client interface {
	Connect() mqtt.Token
	Disconnect(quiesce uint)
	Publish(topic string, qos byte, retained bool, payload any) mqtt.Token
	Subscribe(topic string, qos byte, callback mqtt.MessageHandler) mqtt.Token
	Unsubscribe(topics ...string) mqtt.Token
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
	// StatusSpread is the most a status asked for by StatusChanged waits
	// before it is published, at random (DefaultStatusSpread); changes
	// within the wait share one status. Negative: at once.
	StatusSpread time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between attempts.
	ReconnectMin, ReconnectMax time.Duration
	// NewClient makes the MQTT client; nil means paho.
	NewClient func(*mqtt.ClientOptions) Client

	// lookWait and lookHold time the second look of a trust subscription
	// at QoS 0 (secondLook; zero: the constants); tests shorten them.
	lookWait, lookHold time.Duration
	// Clock drives the backoff, the resend and status timers and the
	// times in State; nil means the real clock.
	Clock clock.Clock
	// Key is the gate's Ed25519 identity key (wicketd init makes it); it
	// signs records batches and the status. Without it the gate is not
	// enrolled: it still decides, but publishes no records (no collector
	// would take them; they stay in the outbox) and an unsigned status.
	Key ed25519.PrivateKey
	// Roots verify the fleet's roster, which says whose acks to trust.
	Roots verifier.RootKeys
	// TrustSilence, if set, is how long after a reconnect to a live
	// session (one the gate did not subscribe to the trust tree on) the
	// gate waits for a message on the trust tree before it suspects the
	// broker restored the session without that subscription (a NATS
	// node whose consumer for it is stalled or could not be created
	// says nothing): it then unsubscribes and subscribes again, once per
	// connection, which brings every retained trust document again. 0
	// never checks: a fleet whose authority publishes rarely would pay
	// the retained documents after every reconnect.
	TrustSilence time.Duration
	// TrustQoS0 subscribes to the trust tree at QoS 0, and again on
	// every connect (unsubscribe first if the session was kept), so that
	// the broker sends the retained trust documents each time instead of
	// queueing what is published while the gate is away. On a NATS
	// cluster each QoS 1 subscription is a JetStream consumer, created
	// on every node change and lost with its node when it has one
	// replica; at QoS 0 the gate has none. Every trust document is
	// retained, so what a connect brings is what a new gate would get:
	// the key set, roster, manifest (or snapshot) and the deltas since;
	// with a snapshot in MQTT parts rather than files, all its parts.
	TrustQoS0 bool
	// Manifest, if set, takes each message on the snapshot manifest
	// topic (snapfile.Topic) from the worker; it must not block on the
	// network (snapfile.Fetcher.Offer). Nil: the topic is ignored.
	Manifest func(raw []byte)
}

// withDefaults fills the zero fields with their defaults.
func (c Config) withDefaults() Config {
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.MaxInflight = cmp.Or(c.MaxInflight, DefaultMaxInflight)
	c.AckTimeout = cmp.Or(c.AckTimeout, DefaultAckTimeout)
	c.StatusEvery = cmp.Or(c.StatusEvery, DefaultStatusEvery)
	c.StatusSpread = cmp.Or(c.StatusSpread, DefaultStatusSpread)
	c.ReconnectMin = cmp.Or(c.ReconnectMin, DefaultReconnectMin)
	c.ReconnectMax = cmp.Or(c.ReconnectMax, DefaultReconnectMax)
	c.lookWait = cmp.Or(c.lookWait, lookWait)
	c.lookHold = cmp.Or(c.lookHold, lookHold)
	return c
}

// validate refuses values no default stands for, naming the field and
// the fix; zero fields are valid and mean their defaults.
func (c Config) validate() error {
	d := c.withDefaults()
	switch {
	case c.BatchSize < 0 || c.BatchSize > wire.MaxRecordsPerBatch:
		return fmt.Errorf("sync.batch_size: %d: use 1 to %d, or 0 for %d", c.BatchSize, wire.MaxRecordsPerBatch, DefaultBatchSize)
	case c.MaxInflight < 0:
		return fmt.Errorf("sync.max_inflight: %d: use a positive number, or 0 for %d", c.MaxInflight, DefaultMaxInflight)
	case c.AckTimeout < 0:
		return fmt.Errorf("sync.ack_timeout: %v: use a positive duration, or 0 for %v", c.AckTimeout, DefaultAckTimeout)
	case c.StatusEvery < 0:
		return fmt.Errorf("sync.status_every: %v: use a positive duration, or 0 for %v", c.StatusEvery, DefaultStatusEvery)
	case c.TrustSilence < 0:
		return fmt.Errorf("sync.trust_silence: %v: use a positive duration, or 0 to never check", c.TrustSilence)
	case c.ReconnectMin < 0 || c.ReconnectMax < 0 || d.ReconnectMax < d.ReconnectMin:
		return fmt.Errorf("sync.reconnect_min/reconnect_max: %v/%v: need 0 < reconnect_min <= reconnect_max (0 for %v and %v)", d.ReconnectMin, d.ReconnectMax, DefaultReconnectMin, DefaultReconnectMax)
	}
	return nil
}

// rosterDoc is the store's name of the installed roster.
const rosterDoc = store.TrustRoster

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
	Connected bool
	// Broker is the URL of the broker (the cluster node) of the last
	// connection.
	Broker      string
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
	// RosterRefused counts roster documents refused (bad signature,
	// malformed).
	RosterRefused uint64
	// Ignored counts messages on topics the gate has no use for (junk
	// on the trust tree, leftovers of an old subscription): acknowledged
	// and dropped as they arrive, so they never hold the session.
	Ignored uint64
	// Oversized counts messages over the connection's read limit
	// (mqttconn.DefaultMaxMessage): streamed past unread, acknowledged
	// and dropped, so they neither fill memory nor hold the session.
	Oversized uint64
	// Subscribes counts subscriptions made: on a connect that found no
	// session on the broker, on a resync, or when the gate lacks trust
	// data. A reconnect to a live session makes none, so the broker does
	// not resend the retained trust documents.
	Subscribes uint64
	// SubscribeRefused counts subscriptions the broker refused (SUBACK
	// failure code 0x80) or did not answer in time; each is tried again
	// with backoff.
	SubscribeRefused uint64
	// Unsubscribed names the topic filters the gate lacks a confirmed
	// subscription to and why ("" when it has them all).
	Unsubscribed string

	resendsSinceAck uint64 // resends since the last ack applied
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
	parts     chan mqtt.Message        // snapshot parts, handed over unbuffered
	quit      chan struct{}            // closed when Run returns
	running   atomic.Bool              // Run was called
	gapTimer  interface{ Stop() bool } // the pending gap re-check; session goroutine only
	statusDue atomic.Bool
	roster    atomic.Pointer[verifier.Roster]

	// subs says, per topic filter of the gate, whether the broker
	// confirmed the subscription (Run's goroutine only).
	subs map[string]bool
	// subRetry paces subscriptions the broker refused; subNext is when
	// the next may be made (Run's goroutine only).
	subRetry clock.Backoff
	subNext  time.Time
	// quietSince is when the trust subscription was made, or resumed
	// on a reconnect, and no trust message has come since (zero: no
	// check pending); after quietLimit the gate subscribes again.
	// trustSeen is set by any message other than an ack (Run's
	// goroutine, and onMessage). quietRetry paces the checks after
	// fresh subscriptions that brought nothing.
	quietSince time.Time
	quietLimit time.Duration
	quietRetry clock.Backoff
	trustSeen  atomic.Bool
	// renew marks topic filters to unsubscribe from before subscribing
	// again: on NATS a second SUBSCRIBE keeps a consumer that does not
	// deliver, an UNSUBSCRIBE deletes it (Run's goroutine only).
	renew map[string]bool
	// lookAt is when the trust subscription made at QoS 0 on this
	// connection takes its second look (Config.TrustQoS0; zero: none
	// due), lookUntil when that look's subscription ends (Run's
	// goroutine only).
	lookAt, lookUntil time.Time

	mu    sync.Mutex
	state State
	// sent are the seq ranges of batches published and not yet
	// acknowledged; an ack applies only within one of them.
	sent []seqRange
}

// seqRange is the seqs of one records batch, From <= seq <= Through.
type seqRange struct{ from, through uint64 }

// New returns a Sync. status builds the gate's status message. A Config
// value no default stands for is refused, naming the field; zero fields
// take the defaults in limits.go.
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
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.NewClient == nil {
		cfg.NewClient = func(o *mqtt.ClientOptions) Client { return mqtt.NewClient(o) }
	}
	cfg.Clock = clock.OrReal(cfg.Clock)
	if cfg.Counters == nil {
		cfg.Counters = new(mqttconn.Counters) // tells which node the gate is on
	}
	if cfg.Key != nil && len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("sync: identity key is not an Ed25519 private key")
	}
	s := &Sync{
		cfg: cfg, topics: wire.Topics{Fleet: cfg.Fleet}, st: st, tr: tr, status: status,
		log:    log.With("component", "sync"),
		notify: make(chan struct{}, 1), alerts: make(chan store.Event, 64),
		incoming: make(chan mqtt.Message, handlerQueue), lost: make(chan error, 1),
		parts: make(chan mqtt.Message), quit: make(chan struct{}),
		subRetry:   clock.Backoff{Min: cfg.ReconnectMin, Max: max(cfg.ReconnectMax, maxSubscribeWait)},
		quietRetry: clock.Backoff{Min: retainedWait, Max: maxRetainedWait},
		renew:      map[string]bool{},
	}
	// The ack subscription is made on the first connect of every Run,
	// live session or not (it brings no retained messages); the trust
	// subscription only when the gate lacks its trust data (needsTrust),
	// so a restarted gate does not fetch every retained document again.
	s.subs = map[string]bool{s.topics.Ack(cfg.Gate): false, s.topics.AllTrust(): true}
	raw, _, err := st.TrustDoc(rosterDoc)
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	if raw != nil {
		r, err := cfg.Roots.ParseRoster(raw)
		if err != nil {
			s.log.Warn("stored roster refused; waiting for one from the broker", "err", err)
		} else {
			s.roster.Store(r)
		}
	}
	return s, nil
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
// publishes the offline status, disconnects and waits for its worker
// (the goroutine that applies acks and trust documents to the store), so
// the store may be closed once Run returned. Run may be called once; a
// second call returns an error.
func (s *Sync) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("sync: Run called twice")
	}
	opts, err := s.cfg.Conn.Options()
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if s.cfg.Key == nil {
		s.log.Warn("no identity key: this gate is not enrolled; it decides, but its records stay in the outbox")
	}
	will, err := s.statusPayload(wire.Status{Gate: s.cfg.Gate, Online: false, At: s.cfg.Clock.Now().UTC()})
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	opts.SetBinaryWill(s.topics.Status(s.cfg.Gate), will, statusQoS, true)
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
	var worker sync.WaitGroup
	worker.Go(func() { s.worker(ctx) })
	defer worker.Wait()
	defer close(s.quit) // first: a handler waiting to hand a part over gives up
	bo := clock.Backoff{Min: s.cfg.ReconnectMin, Max: s.cfg.ReconnectMax}
	for ctx.Err() == nil {
		if err := s.connect(ctx, client); err != nil {
			// A connect that failed after CONNACK (a subscription cut
			// off) leaves paho connected; Connect would fail on that.
			client.Disconnect(0)
			wait := bo.Next()
			s.log.Warn("broker unreachable; retrying", "brokers", s.cfg.URLs(), "in", wait.Round(time.Millisecond), "err", err)
			if !clock.Sleep(ctx, s.cfg.Clock, wait) {
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
		// The session may have ended on a broker that stopped answering
		// while the connection stayed up: drop it, or every later Connect
		// fails with "already connected" and the gate never publishes
		// again.
		client.Disconnect(0)
		wait := bo.Next()
		s.log.Warn("broker connection lost; reconnecting", "in", wait.Round(time.Millisecond), "err", err)
		if !clock.Sleep(ctx, s.cfg.Clock, wait) {
			break
		}
	}
	s.goodbye(client)
	return nil
}

// connect connects and, when the broker holds no session for the gate
// (or the gate needs its trust data again), subscribes. It waits for
// paho's Connect to finish (waitConnect); a subscription the broker
// refuses stays pending for the session loop to retry, only a lost
// connection fails the connect. A reconnect to a live session
// subscribes to nothing: the subscriptions are still there, and
// subscribing again would make the broker resend every retained trust
// document. With Config.TrustQoS0 that is what it does, on purpose.
func (s *Sync) connect(ctx context.Context, c Client) error {
	select {
	case <-s.lost:
	default:
	}
	s.update(func(st *State) { st.Attempts++ })
	tok := c.Connect()
	if err := s.waitConnect(ctx, c, tok); err != nil {
		return err
	}
	present := false
	if ct, ok := tok.(*mqtt.ConnectToken); ok {
		present = ct.SessionPresent()
	}
	if !present {
		for topic := range s.subs {
			s.subs[topic] = false
		}
	}
	if s.needsTrust() || s.cfg.TrustQoS0 {
		s.resync.Store(false)
		s.subs[s.topics.AllTrust()] = false
	}
	if present && s.cfg.TrustQoS0 {
		s.renew[s.topics.AllTrust()] = true
	}
	s.subNext = time.Time{}
	s.quietSince = time.Time{}
	s.lookAt, s.lookUntil = time.Time{}, time.Time{}
	if present && s.subs[s.topics.AllTrust()] && s.cfg.TrustSilence > 0 {
		s.trustSeen.Store(false)
		s.quietSince, s.quietLimit = s.cfg.Clock.Now(), s.cfg.TrustSilence
	}
	if err := s.subscribePending(ctx, c); err != nil {
		return err
	}
	broker := s.cfg.Counters.Broker()
	s.update(func(st *State) { st.Connected, st.LastConnect, st.Broker = true, s.cfg.Clock.Now(), broker })
	s.log.Info("connected to broker", "broker", broker, "client_id", s.cfg.ClientID, "session_present", present)
	return nil
}

// waitConnect waits until paho's Connect has finished or ctx ends. paho
// tries every node once, each up to the connect timeout, so a connect
// may take ConnectWait, longer than any other wait here. Giving up
// sooner would leave paho connecting: the next Connect would be refused
// while it does, and a connection it then completed would never be used
// (every later Connect fails with "already connected"). Should paho
// overrun ConnectWait by publishWait, the attempt is cancelled
// (Disconnect) and waited for all the same.
func (s *Sync) waitConnect(ctx context.Context, c Client, tok mqtt.Token) error {
	if err := s.waitOr(ctx, tok, nil, s.cfg.ConnectWait()+publishWait); !errors.Is(err, errTimeout) {
		return err
	}
	c.Disconnect(0)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return err
		}
		return errTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errRefused: the broker answered a SUBSCRIBE with the failure code.
var errRefused = errors.New("refused by the broker (SUBACK 0x80)")

// subscribePending subscribes to each topic filter the broker has not
// confirmed, once the backoff after the last refusal has passed. A
// refusal or a SUBACK that does not come in time keeps the filter
// pending and sets the next try; a lost connection (or ctx) is returned.
// The first refusal after a success is logged, and the success after
// refusals, not every try.
func (s *Sync) subscribePending(ctx context.Context, c Client) error {
	if s.cfg.Clock.Now().Before(s.subNext) {
		return nil
	}
	var failed []string
	var lastErr error
	made := false
	for _, topic := range []string{s.topics.Ack(s.cfg.Gate), s.topics.AllTrust()} {
		if s.subs[topic] {
			continue
		}
		if s.renew[topic] {
			filters := []string{topic}
			if topic == s.topics.AllTrust() && s.cfg.TrustQoS0 {
				// A second look cut short by a lost connection may
				// have left its subscription in the session.
				filters = append(filters, s.topics.AllTrustStatus())
			}
			if err := s.waitLive(ctx, c.Unsubscribe(filters...)); err != nil && !errors.Is(err, errTimeout) {
				return fmt.Errorf("unsubscribe %s: %w", topic, err)
			}
			delete(s.renew, topic)
		}
		trust := topic == s.topics.AllTrust()
		if trust {
			s.trustSeen.Store(false)
		}
		err := s.subscribe(ctx, c, topic)
		switch {
		case err == nil:
			s.subs[topic], made = true, true
			if trust {
				// Every fleet keeps a key set, roster and snapshot
				// retained: a trust subscription that brings none of
				// them is not delivering.
				s.quietSince, s.quietLimit = s.cfg.Clock.Now(), s.quietRetry.Next()
				if s.cfg.TrustQoS0 {
					s.lookAt = s.cfg.Clock.Now().Add(s.cfg.lookWait)
				}
			}
		case errors.Is(err, errRefused) || errors.Is(err, errTimeout):
			failed, lastErr = append(failed, topic), err
		default:
			return fmt.Errorf("subscribe %s: %w", topic, err)
		}
	}
	if made {
		s.update(func(st *State) { st.Subscribes++ })
	}
	was := s.State().Unsubscribed
	if len(failed) == 0 {
		s.subRetry.Reset()
		s.subNext = time.Time{}
		if was != "" {
			s.log.Info("subscribed after the broker had refused", "was", was)
			s.update(func(st *State) { st.Unsubscribed = "" })
		}
		return nil
	}
	wait := s.subRetry.Next()
	s.subNext = s.cfg.Clock.Now().Add(wait)
	now := fmt.Sprintf("%v: %v", failed, lastErr)
	s.update(func(st *State) { st.SubscribeRefused += uint64(len(failed)); st.Unsubscribed = now })
	if was != now {
		s.log.Warn("subscription not confirmed by the broker; subscribing again with backoff", "topics", failed, "err", lastErr, "in", wait.Round(time.Millisecond))
	}
	return nil
}

// secondLook, with Config.TrustQoS0, subscribes to the revocation data
// (AllTrustStatus, QoS 0) lookWait after the trust tree was subscribed on
// this connection, and unsubscribes lookHold later. A delta published
// while the gate subscribed can miss it both ways: it came before the
// subscription took effect, and the node's retained copy was not there
// yet (a NATS cluster hands retained messages to its other nodes a
// moment after it delivers them). The second subscription brings the
// retained snapshot or manifest and deltas again; what the gate has
// already is stale and ignored. Nothing else brings the missed delta
// before the next one: the broker queues nothing for a QoS 0
// subscription. A second look still under way when the trust tree is
// subscribed again ends at its own time; the new one follows lookWait
// later.
func (s *Sync) secondLook(ctx context.Context, c Client) error {
	now := s.cfg.Clock.Now()
	topic := s.topics.AllTrustStatus()
	switch {
	case !s.lookAt.IsZero() && !now.Before(s.lookAt):
		s.lookAt = time.Time{}
		err := s.subscribeAt(ctx, c, topic, 0)
		switch {
		case err == nil:
			s.lookUntil = now.Add(s.cfg.lookHold)
		case errors.Is(err, errRefused) || errors.Is(err, errTimeout):
			s.log.Warn("second look at the revocation data not confirmed by the broker", "err", err)
		default:
			return fmt.Errorf("subscribe %s: %w", topic, err)
		}
	case !s.lookUntil.IsZero() && !now.Before(s.lookUntil):
		s.lookUntil = time.Time{}
		if err := s.waitLive(ctx, c.Unsubscribe(topic)); err != nil && !errors.Is(err, errTimeout) {
			return fmt.Errorf("unsubscribe %s: %w", topic, err)
		}
	}
	return nil
}

// checkSilence marks the trust subscription for renewing (unsubscribe,
// subscribe) when no trust message came within quietLimit of making it
// or of resuming it (Config.TrustSilence).
func (s *Sync) checkSilence() {
	switch {
	case s.quietSince.IsZero():
		return
	case s.trustSeen.Load():
		s.quietSince = time.Time{}
		s.quietRetry.Reset()
		return
	case s.cfg.Clock.Since(s.quietSince) < s.quietLimit:
		return
	}
	s.log.Warn("no trust message since subscribing or resuming the session; subscribing to the trust tree again", "silent_for", s.quietLimit.Round(time.Millisecond))
	s.quietSince = time.Time{}
	topic := s.topics.AllTrust()
	s.subs[topic], s.renew[topic] = false, true
	s.subNext = time.Time{}
}

// subscribe makes one subscription and checks what the broker granted:
// paho completes the token without an error for the failure code 0x80
// and leaves it in the token's Result. The trust tree is subscribed at
// QoS 1, so what is published while the gate is away waits in its
// session (QoS 0 with Config.TrustQoS0); the gate's acks at QoS 0
// (ackQoS).
func (s *Sync) subscribe(ctx context.Context, c Client, topic string) error {
	qos := byte(1)
	switch {
	case topic == s.topics.Ack(s.cfg.Gate):
		qos = ackQoS
	case s.cfg.TrustQoS0:
		qos = 0
	}
	return s.subscribeAt(ctx, c, topic, qos)
}

// subscribeAt makes one subscription at qos and checks what the broker
// granted, as subscribe.
func (s *Sync) subscribeAt(ctx context.Context, c Client, topic string, qos byte) error {
	tok := c.Subscribe(topic, qos, s.onMessage)
	if err := s.waitLive(ctx, tok); err != nil {
		return err
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		if q, ok := st.Result()[topic]; ok && q > 2 {
			return errRefused
		}
	}
	return nil
}

// needsTrust reports whether the gate lacks trust data the broker keeps
// retained: no key set, no revocation/override status, or a delta held
// for a version that never came. Then it subscribes even to a live
// session, which makes the broker resend the retained documents.
func (s *Sync) needsTrust() bool {
	if s.resync.Load() || s.tr.Stats().Gap || s.st.Info().Version == 0 || (len(s.cfg.Roots) > 0 && s.roster.Load() == nil) {
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
	topicRoster
	topicClockReset
	topicEmergencyAck
	topicManifest
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
	case topic == s.topics.Roster():
		return topicRoster
	case topic == snapfile.Topic(s.cfg.Fleet) && s.cfg.Manifest != nil:
		return topicManifest
	}
	if _, err := s.topics.DeltaVersion(topic); err == nil {
		return topicDelta
	}
	if _, err := s.topics.PartNumber(topic); err == nil {
		return topicPart
	}
	switch s.topics.OrderKind(topic) {
	case wire.OrderClockReset:
		return topicClockReset
	case wire.OrderEmergencyAck:
		return topicEmergencyAck
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
	if topic, size, ok := mqttconn.Oversized(m); ok {
		s.update(func(st *State) { st.Oversized++ })
		s.log.Warn("dropped a message over the size limit unread", "topic", topic, "bytes", size, "limit", mqttconn.DefaultMaxMessage)
		return
	}
	k := s.kind(m.Topic())
	if k != topicAck {
		s.trustSeen.Store(true)
	}
	switch k {
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
	due           time.Time // sent, plus resendWait then
}

// resendWait is how long a batch sent now waits for its ack before the
// window is sent again: AckTimeout, doubled for each resend in a row
// without an ack up to 2^resendDoublings times it, and after the first
// resend up to a quarter more at random. A collector that falls behind
// the ack timeout then sees each gate's resends thin out instead of the
// whole fleet's windows again every AckTimeout, which would outgrow its
// acks and never drain; and gates whose acks stopped together do not
// resend together.
func (s *Sync) resendWait() time.Duration {
	n := s.State().resendsSinceAck
	if n == 0 {
		return s.cfg.AckTimeout
	}
	d := s.cfg.AckTimeout << min(n, resendDoublings)
	return d + rand.N(d/4+1)
}

// session publishes until the connection is lost or ctx ends.
func (s *Sync) session(ctx context.Context, c Client) error {
	var out []inflight
	var after uint64 // highest seq sent in this round
	t := s.cfg.Clock.NewTicker(tick)
	defer t.Stop()
	lastStatus := time.Time{}
	var gapSince, lastGapResync time.Time
	defer s.stopGapTimer()
	// statusAt is when the status a change asked for goes out (zero:
	// none asked for); statusTimer wakes the loop then.
	var statusAt time.Time
	var statusTimer interface{ Stop() bool }
	defer func() {
		if statusTimer != nil {
			statusTimer.Stop()
		}
	}()
	for {
		gapSince, lastGapResync = s.checkGap(gapSince, lastGapResync)
		now := s.cfg.Clock.Now()
		if s.statusDue.Swap(false) && statusAt.IsZero() {
			wait := time.Duration(0)
			if s.cfg.StatusSpread > 0 {
				wait = rand.N(s.cfg.StatusSpread + 1)
			}
			statusAt = now.Add(wait)
			if wait > 0 {
				statusTimer = s.cfg.Clock.AfterFunc(wait, s.Notify)
			}
		}
		if now.Sub(lastStatus) >= s.cfg.StatusEvery || (!statusAt.IsZero() && !now.Before(statusAt)) {
			if err := s.publishStatus(ctx, c); err != nil {
				return err
			}
			lastStatus, statusAt = s.cfg.Clock.Now(), time.Time{}
		}
		if s.resync.Swap(false) {
			s.log.Info("resubscribing to trust data after a dropped message")
			s.subs[s.topics.AllTrust()] = false
			s.subNext = time.Time{}
		}
		out = s.dropAcked(out)
		if len(out) > 0 && s.cfg.Clock.Now().After(out[0].due) {
			s.log.Info("records not acknowledged in time; sending again and subscribing to acks again", "from", out[0].from, "unacked_batches", len(out))
			var silent uint64
			s.update(func(st *State) { st.Resends++; st.resendsSinceAck++; silent = st.resendsSinceAck })
			out, after = nil, 0
			// After renewSilent resends without an ack the broker may
			// have lost the ack subscription (a session restored
			// without it, a consumer that stalled): renew it. Not on
			// every resend: a slow collector causes resends too, and on
			// NATS each renewal deletes and creates a consumer.
			if silent%renewSilent == 0 {
				ack := s.topics.Ack(s.cfg.Gate)
				s.subs[ack], s.renew[ack] = false, true
			}
		}
		s.checkSilence()
		if err := s.subscribePending(ctx, c); err != nil {
			return err
		}
		if err := s.secondLook(ctx, c); err != nil {
			return err
		}
		for s.cfg.Key != nil && len(out) < s.cfg.MaxInflight {
			evs, err := s.st.Outbox(after, s.cfg.BatchSize)
			if err != nil {
				s.log.Error("read outbox", "err", err)
				break
			}
			if len(evs) == 0 {
				break
			}
			payload, err := wire.Sign(wire.KindRecords, s.cfg.Fleet, s.cfg.Gate, s.cfg.Key, wire.Records{Gate: s.cfg.Gate, Records: evs})
			if err != nil {
				return err
			}
			// Noted before the publish: the collector's ack may come
			// before the broker's PUBACK has been handled here, and an
			// ack of a batch not noted is refused.
			first, last := evs[0].Seq, evs[len(evs)-1].Seq
			s.remember(seqRange{first, last})
			if err := s.waitLive(ctx, c.Publish(s.topics.Records(s.cfg.Gate), 1, false, payload)); err != nil {
				return fmt.Errorf("publish records: %w", err)
			}
			out = append(out, inflight{from: first, through: last, due: s.cfg.Clock.Now().Add(s.resendWait())})
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
		case <-t.Chan():
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
	now := s.cfg.Clock.Now()
	if since.IsZero() {
		s.stopGapTimer()
		s.gapTimer = s.cfg.Clock.AfterFunc(gapWait, s.Notify)
		return now, last
	}
	if now.Sub(since) < gapWait || (!last.IsZero() && now.Sub(last) < gapRetry) {
		return since, last
	}
	s.log.Info("a delta waits for a version that has not come; asking for the retained trust data again")
	s.resync.Store(true)
	return since, now
}

// stopGapTimer stops the pending gap re-check, if any.
func (s *Sync) stopGapTimer() {
	if s.gapTimer != nil {
		s.gapTimer.Stop()
		s.gapTimer = nil
	}
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
	b, err := s.statusPayload(st)
	if err != nil {
		return err
	}
	return s.waitLive(ctx, c.Publish(s.topics.Status(s.cfg.Gate), statusQoS, true, b))
}

// statusPayload is the status message: signed with the identity key,
// plain JSON (which wicketctl fleet shows as unverified) without one.
func (s *Sync) statusPayload(st wire.Status) ([]byte, error) {
	if r := s.roster.Load(); r != nil {
		st.RosterVersion = r.Version
	}
	if s.cfg.Key == nil {
		return json.Marshal(st)
	}
	return wire.Sign(wire.KindStatus, s.cfg.Fleet, s.cfg.Gate, s.cfg.Key, st)
}

// goodbye publishes the offline status (the will covers a crash) and
// disconnects.
func (s *Sync) goodbye(c Client) {
	st := s.status()
	st.Online = false
	if b, err := s.statusPayload(st); err == nil {
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
	case topicRoster:
		s.installRoster(payload)
		return
	case topicClockReset:
		_, res, _ = s.tr.ClockReset(payload, "broker")
	case topicEmergencyAck:
		res, _ = s.tr.EmergencyAck(payload, "broker")
	case topicManifest:
		s.cfg.Manifest(payload)
		return
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
// whole.
func (s *Sync) claim(from, through uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.sent, func(r seqRange) bool { return r.from <= from && through <= r.through }) {
		return false
	}
	s.sent = slices.DeleteFunc(s.sent, func(r seqRange) bool { return from <= r.from && r.through <= through })
	return true
}

// applyAck deletes the outbox rows an ack covers if it is signed by a
// collector of the roster, names this gate, and covers records the gate
// sent and has not had acknowledged yet.
func (s *Sync) applyAck(payload []byte) {
	if len(payload) > wire.MaxAckMessage {
		s.refuseAck("ack message too long", fmt.Errorf("%d bytes, over %d", len(payload), wire.MaxAckMessage))
		return
	}
	sm, err := wire.Open(payload)
	if err != nil {
		s.refuseAck("unsigned ack", err)
		return
	}
	if err := sm.Verify(wire.KindAck, s.cfg.Fleet, s.roster.Load().Key(sm.Signer, verifier.RoleCollector)); err != nil {
		s.refuseAck("ack not signed by an enrolled collector", err)
		return
	}
	a, err := wire.DecodeAck(sm.Body)
	if err == nil && a.Gate != s.cfg.Gate {
		err = fmt.Errorf("ack for gate %q", a.Gate)
	}
	if err != nil {
		s.refuseAck("bad ack", err)
		return
	}
	if !s.claim(a.From, a.Through) {
		s.refuseAck("ack of records not sent or already acknowledged", fmt.Errorf("seq %d..%d from %s", a.From, a.Through, sm.Signer))
		return
	}
	n, err := s.st.AckRange(a.From, a.Through)
	if err != nil {
		s.log.Error("apply ack", "err", err)
		return
	}
	s.update(func(st *State) { st.LastAck, st.Acked, st.resendsSinceAck = s.cfg.Clock.Now(), st.Acked+uint64(n), 0 })
	s.Notify()
}

// refuseAck counts a refused ack and logs the first and every 100th: a
// flood of forged acks must not flood the log.
func (s *Sync) refuseAck(why string, err error) {
	var n uint64
	s.update(func(st *State) { st.AcksRefused++; n = st.AcksRefused })
	if n%100 == 1 {
		s.log.Warn("refused an ack: "+why, "err", err, "refused_total", n)
	}
}

// installRoster verifies a roster from the broker and keeps it if it is
// newer than the one installed.
func (s *Sync) installRoster(raw []byte) {
	r, err := s.cfg.Roots.ParseRoster(raw)
	if err != nil {
		s.update(func(st *State) { st.RosterRefused++ })
		s.log.Warn("refused a roster", "err", err)
		return
	}
	if cur := s.roster.Load(); cur != nil && r.Version <= cur.Version {
		return
	}
	if err := s.st.PutTrustDoc(rosterDoc, r.Version, raw); err != nil {
		s.log.Error("store roster", "err", err)
		return
	}
	s.roster.Store(r)
	s.log.Info("roster installed", "version", r.Version, "members", len(r.Members))
	s.StatusChanged()
}

// Roster returns the installed roster, or nil.
func (s *Sync) Roster() *verifier.Roster { return s.roster.Load() }

// errTimeout: the broker did not answer in time.
var errTimeout = errors.New("broker did not answer in time")

// waitLive is wait that also ends when the connection is lost: with a
// persistent session paho never completes a QoS 1 publish whose
// connection dropped, so without this a cut mid-publish would hold the
// session for publishWait before reconnecting.
func (s *Sync) waitLive(ctx context.Context, t mqtt.Token) error {
	return s.waitOr(ctx, t, s.lost, publishWait)
}

// waitOr waits for a token, ctx, a lost-connection signal (a nil
// channel never sends) or limit, whichever is first.
func (s *Sync) waitOr(ctx context.Context, t mqtt.Token, lost <-chan error, limit time.Duration) error {
	timer := s.cfg.Clock.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case err := <-lost:
		return fmt.Errorf("connection lost while waiting for the broker: %w", err)
	case <-timer.Chan():
		return errTimeout
	}
}
