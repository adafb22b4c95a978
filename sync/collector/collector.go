//lint:file-ignore ST1005 Config errors begin with the name of the field they are about.

package collector

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/internal/clock"
	"wicket/sync/mqttconn"
	"wicket/sync/wire"
	"wicket/verifier"
)

// Config says where the collector gets records from. The zero values of
// Workers, Clock and NewClient mean their defaults.
type Config struct {
	// Broker is the MQTT broker: tcp://host:1883, or ssl://host:8883
	// (also tls://) for TLS.
	Broker string
	// Brokers, instead of Broker, lists the nodes of one clustered broker:
	// each connect tries them in turn, starting after the node the last
	// one used (mqttconn.Guard).
	Brokers []string
	// Fleet is the fleet whose gates this collector serves, the second
	// topic level.
	Fleet string
	// ClientID must be stable and unique per collector: the broker keeps
	// the persistent session (subscription, queued messages) under it,
	// and a second client with the same id disconnects the first.
	ClientID string
	// Group is the shared-subscription group: the collectors of one group
	// split the records messages, each message going to one of them.
	// Empty subscribes plainly, and this collector gets every message.
	Group string
	// Slice splits the records by shard between collectors on a broker
	// without shared subscriptions (NATS): with N collectors, collector i
	// runs Slice{I: i, N: N} and subscribes to the shards s with
	// s mod N = i only (slice 0 also takes the unsharded topic of gates
	// from before sharding). The zero Slice takes every shard. A
	// replacement for a collector that died runs its slice with its
	// ClientID, so it resumes its session and what was queued on it.
	Slice wire.Slice
	// Username and Password log in to the broker, if it wants them.
	Username string
	Password string
	// CAFile verifies the broker's certificate (default: the system
	// roots); CertFile and KeyFile are this collector's certificate for
	// mutual TLS. All need an ssl:// or tls:// Broker.
	CAFile   string
	CertFile string
	KeyFile  string
	// Workers is how many batches are written at once (default
	// DefaultWorkers, at most MaxWorkers).
	Workers int
	// Clock drives backoff, timeouts and the progress log (default the
	// real clock).
	Clock clock.Clock
	// NewClient makes the MQTT client (default NewPahoClient).
	NewClient ClientFactory
	// ID is this collector's id in the fleet's roster (role collector)
	// and Key its Ed25519 identity key: it signs the acks, which gates
	// apply only when the roster holds this key for this id.
	ID  string
	Key ed25519.PrivateKey
	// Roots are the pinned root keys the roster must be signed with.
	// The roster comes retained from the broker; Roster is one to start
	// with (a signed document, optional).
	Roots  verifier.RootKeys
	Roster []byte

	// silenceMin and silenceMax bound the waits before a silent records
	// subscription is renewed (zero: silenceWait, maxSilenceWait); tests
	// shorten them.
	silenceMin, silenceMax time.Duration
}

// check validates c, naming the bad field and the fix, and fills defaults.
func (c *Config) check() error {
	tlsURLs, err := mqttconn.CheckBrokers(c.urls())
	switch {
	case c.Broker == "" && len(c.Brokers) == 0:
		return errors.New("Broker: missing; e.g. tcp://127.0.0.1:1883 or ssl://broker.example:8883")
	case c.Broker != "" && len(c.Brokers) > 0:
		return errors.New("Brokers: set Broker or Brokers, not both")
	case err != nil:
		return fmt.Errorf("Broker: %w", err)
	case wire.ValidName(c.Fleet) != nil:
		return fmt.Errorf("Fleet: %w", wire.ValidName(c.Fleet))
	case c.ClientID == "" || len(c.ClientID) > 256:
		return errors.New("ClientID: set a stable id of at most 256 bytes, unique per collector")
	case c.Group != "" && wire.ValidName(c.Group) != nil:
		return fmt.Errorf("Group: %w (or empty for a plain subscription)", wire.ValidName(c.Group))
	case c.Slice.Valid() != nil:
		return fmt.Errorf("Slice: %w", c.Slice.Valid())
	case c.Password != "" && c.Username == "":
		return errors.New("Password: given without Username")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("CertFile and KeyFile: give both or neither")
	case !tlsURLs && (c.CAFile != "" || c.CertFile != ""):
		return errors.New("CAFile, CertFile: need a TLS broker URL (ssl://...)")
	case wire.ValidName(c.ID) != nil:
		return fmt.Errorf("ID: %w; the collector's id in the roster", wire.ValidName(c.ID))
	case len(c.Key) != ed25519.PrivateKeySize:
		return errors.New("Key: the collector's Ed25519 identity key is required (it signs acks)")
	case len(c.Roots) == 0:
		return errors.New("Roots: the root public keys are required (they verify the roster)")
	case c.Workers < 0 || c.Workers > MaxWorkers:
		return fmt.Errorf("Workers: %d; want 0 (default %d) to %d", c.Workers, DefaultWorkers, MaxWorkers)
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	c.Clock = clock.OrReal(c.Clock)
	if c.silenceMin == 0 {
		c.silenceMin, c.silenceMax = silenceWait, maxSilenceWait
	}
	if c.NewClient == nil {
		c.NewClient = NewPahoClient
	}
	return nil
}

// urls are Brokers, or Broker alone.
func (c *Config) urls() []string {
	if len(c.Brokers) > 0 {
		return c.Brokers
	}
	return []string{c.Broker}
}

// Stats counts what a collector did since New.
type Stats struct {
	Messages   uint64 // records messages received from the broker
	Dropped    uint64 // messages dropped because the queue was full
	Invalid    uint64 // messages dropped as malformed or refused by PostgreSQL
	Records    uint64 // records in well-formed messages
	Inserted   uint64 // records newly stored
	Duplicates uint64 // records that were stored already
	Acks       uint64 // acks written to the broker
	Errors     uint64 // failed write attempts and failed acks
	Resumed    uint64 // connects that found the session (and subscription) on the broker
	// Renewals counts the records subscriptions renewed (unsubscribed
	// and subscribed again) because no records message came for the
	// silence wait.
	Renewals uint64
	// Refused counts records messages refused for their sender:
	// unsigned, a gate not enrolled, a bad signature, another gate's
	// name (wicket_refusals has them by gate and reason).
	Refused uint64
	// RosterVersion is the roster in use (0: none yet; every records
	// message is refused until one arrives).
	RosterVersion uint64
}

// Collector subscribes to the records of a fleet's gates, stores them
// with a Writer and acks what was stored.
type Collector struct {
	cfg    Config
	w      *Writer
	log    *slog.Logger
	topics wire.Topics
	// filters are the records filters of this collector's slice.
	filters []string
	tls     *tls.Config // nil for tcp://

	queue   chan inbound
	lost    chan error
	running atomic.Bool

	messages, dropped, invalid, records, inserted, duplicates, acks, failures, resumed, refusedN, renewals atomic.Uint64
	// born is when New made the collector, and heard when the last
	// records message arrived, as the time since born (monotonic, so a
	// step of the wall clock does not make a silence).
	born  time.Time
	heard atomic.Int64

	roster   atomic.Pointer[verifier.Roster]
	refusals refusals
	// conns says which broker node the connection is on.
	conns mqttconn.Counters
	// haveRoster is closed once a roster is installed: until then the
	// workers wait, judging no records message.
	haveRoster chan struct{}
	rosterOnce sync.Once

	badLog, dropLog, writeLog, ackLog, refuseLog complaints

	// perWrite is the most messages stored in one transaction
	// (MaxMessagesPerWrite; the benchmarks compare others).
	perWrite int
	// traced, where set, is told of every write: when it began, when it
	// committed, when its acks were answered, and how much it stored (the
	// benchmarks' timeline of a phase).
	traced func(writeSpan)

	// acking runs the waits for the acks to be written (at ackQoS, no
	// PUBACK), which hold one of ackSlots (Workers of them) each.
	acking   sync.WaitGroup
	ackSlots chan struct{}
	// taking is held by the worker taking messages from the queue, and
	// writes are the workers' writes under way (work).
	taking sync.Mutex
	writes writesUnderWay
}

// writeSpan is one transaction of a collector's worker.
type writeSpan struct {
	start, committed, acked time.Time
	messages, rows          int
}

// inbound is a records message copied out of paho.
type inbound struct {
	topic   string
	payload []byte
	// ack sends the broker its PUBACK: once stored, or refused for good.
	ack func()
}

// New checks cfg and returns a collector that stores with w. It reads the
// TLS files now, so a missing one fails here rather than at connect time.
// A nil log discards.
func New(cfg Config, w *Writer, log *slog.Logger) (*Collector, error) {
	if w == nil {
		return nil, errors.New("collector: nil Writer")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("collector config: %w", err)
	}
	c := &Collector{
		cfg:    cfg,
		w:      w,
		log:    log.With("component", "collector"),
		topics: wire.Topics{Fleet: cfg.Fleet},
		queue:  make(chan inbound, QueueSize),
		lost:   make(chan error, 1),

		born:       cfg.Clock.Now(),
		haveRoster: make(chan struct{}),
		perWrite:   MaxMessagesPerWrite,
		ackSlots:   make(chan struct{}, cfg.Workers),
	}
	c.filters = c.topics.Filters(cfg.Slice, cfg.Group)
	if scheme, _ := mqttconn.CheckBroker(cfg.urls()[0]); mqttconn.TLSSchemes[scheme] {
		tc, err := mqttconn.TLSConfig(cfg.CAFile, cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("collector config: %w", err)
		}
		c.tls = tc
	}
	if cfg.Roster != nil {
		if err := c.installRoster(cfg.Roster); err != nil {
			return nil, fmt.Errorf("collector config: Roster: %w", err)
		}
	}
	return c, nil
}

// Stats returns the counters so far. It never blocks.
func (c *Collector) Stats() Stats {
	return Stats{
		Messages: c.messages.Load(), Dropped: c.dropped.Load(), Invalid: c.invalid.Load(),
		Records: c.records.Load(), Inserted: c.inserted.Load(), Duplicates: c.duplicates.Load(),
		Acks: c.acks.Load(), Errors: c.failures.Load(), Resumed: c.resumed.Load(), Renewals: c.renewals.Load(),
		Refused: c.refusedN.Load(), RosterVersion: c.rosterVersion(),
	}
}

// Run connects to the broker, subscribes to the fleet's roster and the
// records of every gate of the fleet (QoS 1) and stores and acks what
// arrives, until ctx is done; then it disconnects and returns nil. It
// reconnects with backoff for as long as it runs, and logs progress (and
// writes the refusal counts) every 10 seconds. Until it has a roster, it
// judges no records message.
//
// A batch is acked (QoS 1, not retained, on the gate's ack topic, signed)
// only after its insert committed. A malformed message is logged and
// dropped without an ack; so is a message not signed by its enrolled
// gate, which is also counted in wicket_refusals. While PostgreSQL is unreachable, each worker retries its
// batch with backoff and acks nothing; messages arriving meanwhile queue
// up to QueueSize and are dropped beyond, and gates resend whatever is not
// acked. Messages still queued when ctx is done are dropped the same way;
// a write under way then is let finish (for up to writeDrain) and its
// messages acked.
//
// Run must not be called again before it returned.
func (c *Collector) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("collector: Run called while running")
	}
	defer c.running.Store(false)
	client := c.cfg.NewClient(c.options())
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() { c.work(ctx, client) })
	}
	wg.Go(func() { c.progress(ctx) })
	c.connectLoop(ctx, client)
	cancel()
	wg.Wait()
	c.acking.Wait()
	flushCtx, flushCancel := context.WithTimeout(context.Background(), ackTimeout)
	c.flushRefusals(flushCtx)
	flushCancel()
	client.Disconnect(disconnectQuiesce)
	c.log.Info("stopped", "stats", c.Stats())
	return nil
}

// options are paho's options: MQTT 3.1.1 with a persistent session, so
// the broker queues records for this collector while it is away.
//
// Reconnecting is connectLoop's job, not paho's auto-reconnect: paho's
// backoff has no jitter and its waits ignore ctx, and with our own loop
// the subscription is renewed in one place after every connect (a broker
// restarted without persistence has forgotten it).
func (c *Collector) options() *mqtt.ClientOptions {
	o := mqtt.NewClientOptions()
	for _, broker := range c.cfg.urls() {
		o.AddBroker(broker)
	}
	o.SetClientID(c.cfg.ClientID).
		SetProtocolVersion(4).SetCleanSession(false).SetResumeSubs(false).
		SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).SetWriteTimeout(connectTimeout).
		SetKeepAlive(keepAlive).SetPingTimeout(keepAlive / 2).
		// onMessage never blocks, so paho may call it inline, in order.
		SetOrderMatters(true).
		// PUBACK once stored: see onMessage.
		SetAutoAckDisabled(true).
		// A resumed session may deliver queued messages before Subscribe
		// has registered its handler; they land here.
		SetDefaultPublishHandler(c.onMessage).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case c.lost <- err:
			default:
			}
		})
	if c.cfg.Username != "" {
		o.SetUsername(c.cfg.Username).SetPassword(c.cfg.Password)
	}
	if c.tls != nil {
		o.SetTLSConfig(c.tls)
	}
	// At most mqttconn.DefaultMaxMessage is read of one message; a larger
	// one is streamed past and arrives as a marker (see onMessage).
	return mqttconn.Guard(o, 0, &c.conns)
}

// connectLoop keeps the client connected and subscribed until ctx is
// done, waiting between attempts as reconnects says.
func (c *Collector) connectLoop(ctx context.Context, client Client) {
	r := newReconnects()
	for {
		select {
		case <-c.lost: // from an earlier connection
		default:
		}
		var wait time.Duration
		if err := c.connect(ctx, client); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = r.failed()
			c.log.Warn("cannot connect to the broker", "brokers", c.cfg.urls(), "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			up := c.cfg.Clock.Now()
			c.log.Info("connected", "broker", c.conns.Broker(), "filters", c.filters, "slice", c.cfg.Slice.String(), "client_id", c.cfg.ClientID)
			err := c.hold(ctx, client)
			if ctx.Err() != nil {
				return
			}
			lasted := c.cfg.Clock.Since(up)
			wait = r.lost(lasted)
			args := []any{"err", err, "connected_for", lasted.Round(time.Millisecond), "retry_in", wait.Round(time.Millisecond)}
			if lasted < stableConnection {
				args = append(args, "hint", "if short connections repeat, check that no other client uses client id "+c.cfg.ClientID)
			}
			c.log.Warn("lost the broker connection", args...)
		}
		if !clock.Sleep(ctx, c.cfg.Clock, wait) {
			return
		}
	}
}

// hold waits while the connection lasts, until ctx is done or the
// connection is lost; it returns why it was lost. Meanwhile it renews
// the records subscription whenever that brought no message for the
// silence wait (see silence): a broker may grant a subscription and
// deliver nothing on it (NATS: a consumer kept by a second SUBSCRIBE on a
// resumed session, or one on a node that died), and the gates' resends
// would wait for it forever. A renewal that fails ends the connection,
// and the error is returned like a loss.
func (c *Collector) hold(ctx context.Context, client Client) error {
	s := silence{waits: clock.Backoff{Min: c.cfg.silenceMin, Max: c.cfg.silenceMax}}
	s.start(c.sinceNew())
	t := c.cfg.Clock.NewTimer(s.limit)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-c.lost:
			return err
		case <-t.Chan():
		}
		now := c.sinceNew()
		if left := s.left(now, time.Duration(c.heard.Load())); left > 0 {
			t.Reset(left)
			continue
		}
		n := c.renewals.Add(1)
		c.log.Info("no records message for the silence wait; subscribing to the records filters again",
			"silent_for", (now - s.from).Round(time.Millisecond), "filters", c.filters, "renewals", n)
		if err := c.renew(ctx, client); err != nil {
			client.Disconnect(0)
			return fmt.Errorf("renew the records subscription: %w", err)
		}
		s.start(c.sinceNew())
		t.Reset(s.limit)
	}
}

// sinceNew is the time since New, on the collector's clock.
func (c *Collector) sinceNew() time.Duration { return c.cfg.Clock.Since(c.born) }

// silence says when a records subscription that brings no message is
// renewed. Times are durations since New (sinceNew). A silence begins
// when the subscription is made or renewed, or with the last message; it
// may last a wait from waits, the shortest after a connect or a message,
// doubled (jittered) with each renewal that again finds it silent, up to
// maxSilenceWait: a fleet idle at night costs one SUBSCRIBE every
// maxSilenceWait/2 to maxSilenceWait.
type silence struct {
	waits clock.Backoff
	from  time.Duration // when the silence began
	limit time.Duration // how long it may last
}

// start begins a silence at now, with the next wait.
func (s *silence) start(now time.Duration) { s.from, s.limit = now, s.waits.Next() }

// left is how long the silence may still last at now, given when the
// last records message arrived (heard): a message after the silence
// began starts a new one at the message, with the waits started over.
// Zero or less: renew the subscription.
func (s *silence) left(now, heard time.Duration) time.Duration {
	if heard > s.from {
		s.waits.Reset()
		s.start(heard)
	}
	return s.from + s.limit - now
}

// reconnects says how long to wait before connecting again. Failed
// connects in a row wait longer each time (jittered), up to
// reconnectFirstMax for the first reconnectFastTries and up to
// reconnectMax after. A successful connect and subscribe starts those
// over. After a lost connection the wait starts at reconnectMin again if
// the connection was stable, and grows with short connections in a row
// up to shortConnectionMax only: a broker restarted many times never
// leaves records waiting long after its last restart.
type reconnects struct {
	connects, short clock.Backoff
	failures        int
}

func newReconnects() *reconnects {
	return &reconnects{
		connects: clock.Backoff{Min: reconnectMin, Max: reconnectFirstMax},
		short:    clock.Backoff{Min: reconnectMin, Max: shortConnectionMax},
	}
}

// failed is the wait after a failed connect.
func (r *reconnects) failed() time.Duration {
	r.failures++
	if r.failures > reconnectFastTries {
		r.connects.Max = reconnectMax
	}
	return r.connects.Next()
}

// lost is the wait after a connection that lasted so long was lost.
func (r *reconnects) lost(lasted time.Duration) time.Duration {
	r.failures = 0
	r.connects.Max = reconnectFirstMax
	r.connects.Reset()
	if lasted >= stableConnection {
		r.short.Reset()
	}
	return r.short.Next()
}

// connect connects and subscribes, or leaves the client disconnected.
// The retained roster is subscribed to only when the broker holds no
// session for this collector (or it has no roster yet), so a reconnect
// does not make the broker resend it. The default handler takes what the
// session queued from the first message on.
func (c *Collector) connect(ctx context.Context, client Client) error {
	ct := client.Connect()
	if err := c.wait(ctx, ct, connectTimeout); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var filters []string
	present := false
	if t, ok := ct.(*mqtt.ConnectToken); ok && t.SessionPresent() {
		present = true
		c.resumed.Add(1)
	}
	if !present || c.roster.Load() == nil {
		filters = append(filters, c.topics.Roster())
	}
	// The records filters are subscribed again on every connect: records
	// are never retained, so that costs the broker nothing, and Mosquitto
	// 2.0 does not restore a shared subscription from its persistence
	// file, though it reports the session present.
	filters = append(filters, c.filters...)
	if err := c.subscribe(ctx, client, filters); err != nil {
		client.Disconnect(0)
		return err
	}
	if present {
		c.dropOtherFilters(ctx, client)
	}
	return nil
}

// subscribe subscribes to filters at QoS 1, one after the other, with
// onMessage as their handler. paho completes a token without an error
// for the failure code 0x80 and leaves it in the token's Result.
func (c *Collector) subscribe(ctx context.Context, client Client, filters []string) error {
	for _, filter := range filters {
		tok := client.Subscribe(filter, 1, c.onMessage)
		err := c.wait(ctx, tok, connectTimeout)
		if st, ok := tok.(*mqtt.SubscribeToken); ok && err == nil && st.Result()[filter] == 0x80 {
			err = errors.New("refused by the broker; check its ACL for this user")
		}
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", filter, err)
		}
	}
	return nil
}

// renew unsubscribes the records filters and subscribes to them again,
// so that the broker sets their delivery up anew (on NATS, a new
// JetStream consumer). Records published in between are not delivered
// to this collector; their gates send them again, not having their acks.
func (c *Collector) renew(ctx context.Context, client Client) error {
	if err := c.wait(ctx, client.Unsubscribe(c.filters...), connectTimeout); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	return c.subscribe(ctx, client, c.filters)
}

// dropOtherFilters unsubscribes the records filters of other slices that
// a resumed session may still hold (the collector ran with another
// slice, or none, under the same client id), so that it takes only its
// own slice. It is best effort: a message that still comes on another
// slice's filter is stored all the same (storing is idempotent).
func (c *Collector) dropOtherFilters(ctx context.Context, client Client) {
	var other []string
	for _, f := range c.topics.EveryFilter(c.cfg.Group) {
		if !slices.Contains(c.filters, f) {
			other = append(other, f)
		}
	}
	if err := c.wait(ctx, client.Unsubscribe(other...), connectTimeout); err != nil {
		c.log.Warn("could not drop the filters of other slices", "err", err)
	}
}

// rosterVersion is the version of the roster in use, 0 for none.
func (c *Collector) rosterVersion() uint64 {
	if r := c.roster.Load(); r != nil {
		return r.Version
	}
	return 0
}

// installRoster verifies a roster and uses it if it is newer than the
// one in use.
func (c *Collector) installRoster(raw []byte) error {
	r, err := c.cfg.Roots.ParseRoster(raw)
	if err != nil {
		return err
	}
	for {
		cur := c.roster.Load()
		if cur != nil && r.Version <= cur.Version {
			return nil
		}
		if c.roster.CompareAndSwap(cur, r) {
			c.log.Info("roster installed", "version", r.Version, "members", len(r.Members))
			c.rosterOnce.Do(func() { close(c.haveRoster) })
			return nil
		}
	}
}

// wait waits for tok, at most timeout, or until ctx is done.
func (c *Collector) wait(ctx context.Context, tok mqtt.Token, timeout time.Duration) error {
	t := c.cfg.Clock.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
		return fmt.Errorf("no answer from the broker in %v", timeout)
	}
}

// onMessage is paho's handler. It must not block: it copies the message
// into the queue, or, when the queue is full, acknowledges and drops it.
// The PUBACK of a queued message is sent only once it is stored (paho's
// automatic acks are off), so the broker's in-flight window throttles
// what it sends; records are safe in any case because the gate keeps
// them until it sees our ack on its ack topic.
func (c *Collector) onMessage(_ mqtt.Client, m mqtt.Message) {
	if m.Topic() == c.topics.Roster() {
		if len(m.Payload()) > 0 {
			if err := c.installRoster(m.Payload()); err != nil {
				c.complain(&c.refuseLog, "refused a roster", "err", err)
			}
		}
		m.Ack()
		return
	}
	c.messages.Add(1)
	c.heard.Store(int64(c.sinceNew()))
	if topic, size, ok := mqttconn.Oversized(m); ok {
		m.Ack()
		c.invalid.Add(1)
		c.complain(&c.badLog, "dropped a message over the size limit unread", "topic", topic, "bytes", size)
		return
	}
	if len(m.Payload()) > wire.MaxMessage {
		m.Ack()
		c.invalid.Add(1)
		c.complain(&c.badLog, "dropped a bad records message", "topic", m.Topic(), "err",
			fmt.Sprintf("%d bytes, over %d", len(m.Payload()), wire.MaxMessage))
		return
	}
	select {
	case c.queue <- inbound{topic: m.Topic(), payload: bytes.Clone(m.Payload()), ack: m.Ack}:
	default:
		m.Ack()
		c.dropped.Add(1)
		c.complain(&c.dropLog, "queue full; dropped a records message, the gate will resend it",
			"topic", m.Topic(), "queue", QueueSize)
	}
}

// work handles the messages of the queue: the one it waits for and,
// when more are queued already, up to perWrite in all, so that a backlog
// is stored in fewer, larger transactions. One worker at a time takes
// messages from the queue. A message that finds no write of this
// collector under way is written at once, with what is queued beside
// it. One that finds a write under way gathers the messages that arrive
// until it has perWrite of them or a write ends: while the writes keep
// up it waits no longer than one of them, and when messages come faster
// than single ones are written they are written in fewer, larger
// transactions instead of many small ones that contend for PostgreSQL's
// CPU, WAL and index pages; writes run side by side only as the
// messages fill them.
func (c *Collector) work(ctx context.Context, client Client) {
	ms := make([]inbound, 0, c.perWrite)
	for {
		if !c.take(ctx, &ms) {
			return
		}
		c.handle(ctx, client, ms)
		c.writes.end()
	}
}

// take waits for its turn to take from the queue and takes the messages
// of the next write into ms (see work), counting the write as under way.
// It reports false when ctx ended first.
func (c *Collector) take(ctx context.Context, ms *[]inbound) bool {
	c.taking.Lock()
	defer c.taking.Unlock()
	select {
	case <-ctx.Done():
		return false
	case m := <-c.queue:
		*ms = append((*ms)[:0], m)
	}
more:
	for len(*ms) < c.perWrite {
		select {
		case m := <-c.queue:
			*ms = append(*ms, m)
		default:
			break more
		}
	}
	if ended := c.writes.under(); ended != nil {
	gather:
		for len(*ms) < c.perWrite {
			select {
			case m := <-c.queue:
				*ms = append(*ms, m)
			case <-ended:
				break gather
			case <-ctx.Done():
				return false
			}
		}
	}
	// Under way before the next worker takes its turn, so that it
	// gathers.
	c.writes.begin()
	return true
}

// writesUnderWay counts a collector's writes under way and tells those
// who wait when one ends.
type writesUnderWay struct {
	mu sync.Mutex
	n  int
	// ended is closed when a write ends (and replaced by the next).
	ended chan struct{}
}

// under is nil when no write is under way, else a channel closed when
// one ends.
func (w *writesUnderWay) under() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		return nil
	}
	if w.ended == nil {
		w.ended = make(chan struct{})
	}
	return w.ended
}

func (w *writesUnderWay) begin() {
	w.mu.Lock()
	w.n++
	w.mu.Unlock()
}

func (w *writesUnderWay) end() {
	w.mu.Lock()
	w.n--
	if w.ended != nil {
		close(w.ended)
		w.ended = nil
	}
	w.mu.Unlock()
}

// stored is a message decoded into its records.
type stored struct {
	m inbound
	r *wire.Records
}

// handle decodes, stores and acks messages. Those that decode and check
// are stored together in one transaction, and each is acked once that
// committed. The broker gets a message's PUBACK when it is stored or
// refused for good; not when ctx ended first, so the broker delivers it
// again.
func (c *Collector) handle(ctx context.Context, client Client, ms []inbound) {
	select {
	case <-c.haveRoster:
	default:
		c.complain(&c.refuseLog, "no roster yet: records wait until one arrives (wicketctl roster publish, or -roster)",
			"topic", c.topics.Roster())
		select {
		case <-c.haveRoster:
		case <-ctx.Done():
			return
		}
	}
	var batch []stored
	for _, m := range ms {
		if r, ok := c.accept(m); ok {
			batch = append(batch, stored{m, r})
		}
	}
	if len(batch) > 0 {
		c.storeAndAck(ctx, client, batch)
	}
}

// accept decodes and checks m. A message refused or malformed is
// counted, logged and PUBACKed here, and accept reports false.
func (c *Collector) accept(m inbound) (*wire.Records, bool) {
	r, err := c.decode(m)
	if err == nil {
		if err = check(r); err != nil {
			err = fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	var ref *errRefused
	switch {
	case errors.As(err, &ref):
		m.done()
		c.refusedN.Add(1)
		gate, _ := c.topics.GateOf(m.topic)
		c.refusals.add(gate, ref.reason, 0)
		c.complain(&c.refuseLog, "refused a records message; nothing stored", "topic", m.topic, "reason", ref.reason, "err", ref.err)
		return nil, false
	case err != nil:
		m.done()
		c.invalid.Add(1)
		c.complain(&c.badLog, "dropped a bad records message", "topic", m.topic, "err", err)
		return nil, false
	}
	c.records.Add(uint64(len(r.Records)))
	return r, true
}

// storeAndAck stores the records of batch in one transaction, sends
// each message its PUBACK and, once the transaction committed, publishes
// each message's ack. When PostgreSQL refuses the batches together, each
// is stored on its own, so that only one it refuses is dropped.
func (c *Collector) storeAndAck(ctx context.Context, client Client, batch []stored) {
	rs := make([]*wire.Records, len(batch))
	records := 0
	for i, s := range batch {
		rs[i] = s.r
		records += len(s.r.Records)
	}
	start := time.Now()
	inserted, err := c.store(ctx, rs)
	committed := time.Now()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return
	case len(batch) > 1:
		for i := range batch {
			c.storeAndAck(ctx, client, batch[i:i+1])
		}
		return
	default:
		batch[0].m.done()
		c.invalid.Add(1)
		c.complain(&c.badLog, "dropped records PostgreSQL cannot store", "gate", rs[0].Gate, "err", err)
		return
	}
	for _, s := range batch {
		s.m.done()
	}
	c.inserted.Add(uint64(inserted))
	c.duplicates.Add(uint64(records - inserted))
	toks := make([]mqtt.Token, len(batch))
	for i, s := range batch {
		toks[i] = client.Publish(c.topics.Ack(s.r.Gate), ackQoS, false, c.signAck(s.r))
	}
	// The acks are on their way; their writes are waited for beside the
	// worker, which goes on to the next messages, with at
	// most Workers writes' answers outstanding.
	select {
	case c.ackSlots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	c.acking.Go(func() {
		defer func() { <-c.ackSlots }()
		c.awaitAcks(ctx, batch, toks)
		if c.traced != nil {
			c.traced(writeSpan{start: start, committed: committed, acked: time.Now(), messages: len(batch), rows: records})
		}
	})
}

// awaitAcks waits for the acks of batch to be written to the broker
// (toks, in the same order), counting those written and complaining of
// those that were not: their gates will send the records again.
func (c *Collector) awaitAcks(ctx context.Context, batch []stored, toks []mqtt.Token) {
	for i, s := range batch {
		r := s.r
		from, through := r.Records[0].Seq, r.Records[len(r.Records)-1].Seq
		if err := c.wait(ctx, toks[i], ackTimeout); err != nil {
			if ctx.Err() == nil {
				c.failures.Add(1)
				c.complain(&c.ackLog, "ack not delivered; the gate will resend the records",
					"gate", r.Gate, "from", from, "through", through, "err", err)
			}
			continue
		}
		c.acks.Add(1)
		c.log.Debug("stored and acked", "gate", r.Gate, "from", from, "through", through, "records", len(r.Records))
	}
}

// signAck is the signed ack of the records of r.
func (c *Collector) signAck(r *wire.Records) []byte {
	ack := wire.Ack{Gate: r.Gate, From: r.Records[0].Seq, Through: r.Records[len(r.Records)-1].Seq}
	payload, err := wire.Sign(wire.KindAck, c.cfg.Fleet, c.cfg.ID, c.cfg.Key, ack)
	if err != nil {
		panic(err) // the key is checked in New; an Ack always marshals
	}
	return payload
}

// done sends the message's PUBACK, if it has one to send.
func (m inbound) done() {
	if m.ack != nil {
		m.ack()
	}
}

// decode parses a message and checks that it is signed by the gate
// whose topic it was published on, with the key the roster holds for
// that gate. A message that fails for who sent it is an *errRefused.
func (c *Collector) decode(m inbound) (*wire.Records, error) {
	gate, shard, err := c.topics.RecordsTopic(m.topic)
	if err != nil {
		return nil, err
	}
	if err := wire.CheckShard(gate, shard); err != nil {
		return nil, refused(RefusedShard, err)
	}
	sm, err := wire.Open(m.payload)
	if err != nil {
		return nil, refused(RefusedUnsigned, err)
	}
	if sm.Signer != gate {
		return nil, refused(RefusedSigner, fmt.Errorf("signed by %q on the topic of gate %q", sm.Signer, gate))
	}
	pub := c.roster.Load().Key(gate, verifier.RoleGate)
	if pub == nil {
		return nil, refused(RefusedUnenrolled, fmt.Errorf("gate %q is not in roster version %d", gate, c.rosterVersion()))
	}
	if err := sm.Verify(wire.KindRecords, c.cfg.Fleet, pub); err != nil {
		return nil, refused(RefusedSignature, err)
	}
	r, err := wire.DecodeRecords(sm.Body)
	if err != nil {
		return nil, err
	}
	if r.Gate != gate {
		return nil, refused(RefusedGate, fmt.Errorf("records of gate %q signed by gate %q", r.Gate, gate))
	}
	return r, nil
}

// store writes rs in one transaction, retrying with backoff while the
// failure may be transient. It returns the error that ended it: ctx's,
// or one wrapping ErrInvalid when rs can never be stored together. A
// write under way when ctx ends goes on for up to writeDrain (see
// drainContext); no new one starts.
func (c *Collector) store(ctx context.Context, rs []*wire.Records) (int, error) {
	bo := clock.Backoff{Min: writeRetryMin, Max: writeRetryMax}
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		wctx, cancel := drainContext(ctx)
		n, err := c.w.writeBatches(wctx, rs, true) // accept checked them
		cancel()
		switch {
		case err == nil:
			if attempt > 1 {
				c.log.Info("stored after retrying", "batches", len(rs), "first_gate", rs[0].Gate, "attempts", attempt)
			}
			return n, nil
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case errors.Is(err, ErrInvalid):
			return 0, err
		}
		c.failures.Add(1)
		c.complain(&c.writeLog, "cannot store records; not acking, retrying", "batches", len(rs), "first_gate", rs[0].Gate,
			"from", rs[0].Records[0].Seq, "attempt", attempt, "err", err)
		if !clock.Sleep(ctx, c.cfg.Clock, bo.Next()) {
			return 0, ctx.Err()
		}
	}
}

// drainContext is the context of one write: ctx's values, but ended
// only writeDrain after ctx. A collector that stops lets the write under
// way finish, so that its messages are acked, instead of cutting it off
// not knowing whether it committed (the broker would deliver them again,
// stored or not).
func drainContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(writeDrain, cancel)
		context.AfterFunc(wctx, func() { t.Stop() })
	})
	return wctx, func() {
		stop()
		cancel()
	}
}

// progress logs the counters and the record rate every progressEvery.
func (c *Collector) progress(ctx context.Context) {
	// The baseline is read before the ticker exists, so that whoever waits
	// for the ticker knows the baseline is taken.
	last, lastAt := c.Stats(), c.cfg.Clock.Now()
	t := c.cfg.Clock.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
		s, now := c.Stats(), c.cfg.Clock.Now()
		rate := 0.0
		if secs := now.Sub(lastAt).Seconds(); secs > 0 {
			rate = math.Round(float64(s.Records-last.Records)/secs*10) / 10
		}
		c.flushRefusals(ctx)
		c.log.Info("progress", "records_per_s", rate, "messages", s.Messages, "records", s.Records,
			"inserted", s.Inserted, "duplicates", s.Duplicates, "acks", s.Acks, "dropped", s.Dropped,
			"invalid", s.Invalid, "refused", s.Refused, "errors", s.Errors, "renewals", s.Renewals, "queued", len(c.queue))
		last, lastAt = s, now
	}
}

// complaints rate-limits the log lines of one kind of problem.
type complaints struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// complain logs a warning at most once per complainEvery per kind, with
// the number of those left out since; the others go to the debug level.
func (c *Collector) complain(k *complaints, msg string, args ...any) {
	now := c.cfg.Clock.Now()
	k.mu.Lock()
	if !k.last.IsZero() && now.Sub(k.last) < complainEvery {
		k.suppressed++
		k.mu.Unlock()
		c.log.Debug(msg, args...)
		return
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	k.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	c.log.Warn(msg, args...)
}
