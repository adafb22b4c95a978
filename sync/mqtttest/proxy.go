package mqtttest

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy limits.
const (
	// proxyDialTimeout bounds the proxy's connect to its target; the
	// target is on loopback, so it answers at once or is down.
	proxyDialTimeout = 2 * time.Second
	// proxyBuffer is the size of one read in either direction.
	proxyBuffer = 32 << 10
)

// mqttPublish is the MQTT control packet type of PUBLISH.
const mqttPublish = 3

// Proxy is a TCP proxy for network-fault tests. It listens on a free
// loopback port and forwards every connection to a target address (a
// broker); the test then cuts live connections (CutAll), refuses or stalls
// new ones for a while (Refuse, Stall), cuts a connection after a number of
// bytes from the client (CutAfter), or drops messages the broker sends to
// clients (DropPublishes). It stops when the test ends. Its methods are
// safe for concurrent use.
//
// A cut closes both sockets of a connection at once: the client and the
// target each see the connection end, and whatever the proxy had not
// forwarded yet is lost, as when a network path dies.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu            sync.Mutex
	conns         map[*proxyConn]struct{}
	refuseUntil   time.Time
	stallUntil    time.Time
	stallChanged  chan struct{} // closed and replaced by each Stall call
	cut           *cutPlan
	dropPublishes int
	throttle      int64 // target → client bytes per second, 0 for no limit
	closed        bool
	stats         ProxyStats
}

// ProxyStats counts what a Proxy did since it started.
type ProxyStats struct {
	Accepted         int   // connections accepted from clients
	Refused          int   // connections closed at once by Refuse
	Stalled          int   // connections held by Stall before being forwarded
	DialFailed       int   // connections closed because the target did not accept
	Cut              int   // connections cut by CutAll or CutAfter
	BytesUp          int64 // bytes forwarded client → target
	BytesDown        int64 // bytes forwarded target → client
	DroppedPublishes int   // PUBLISH packets dropped by DropPublishes
}

// Cut tells where CutAfter cut a connection.
type Cut struct {
	// Forwarded is how many bytes of the cut connection reached the
	// target, in all.
	Forwarded int64
	// Mid is true when the cut fell inside an MQTT packet: its first
	// bytes reached the target, its last bytes never did.
	Mid bool
	// Packet is the MQTT control packet type the cut fell inside (3 is
	// PUBLISH), or 0 when the cut fell between packets.
	Packet byte
}

type cutPlan struct {
	left int64 // client → target bytes still allowed through
	done chan Cut
}

// StartProxy starts a proxy to target (host:port) and closes it when the
// test ends. The target need not be up: while it refuses connections, the
// proxy accepts a client's connection and closes it at once.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mqtttest: proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[*proxyConn]struct{}{}, stallChanged: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's address for MQTT clients: tcp://127.0.0.1:PORT.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// Stats returns the counters so far.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Live returns how many client connections the proxy holds now, stalled
// ones included.
func (p *Proxy) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// CutAll cuts every live connection, both directions at once, stalled
// ones included, and returns how many it cut. New connections are
// accepted as before.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	live := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		live = append(live, c)
	}
	p.stats.Cut += len(live)
	p.mu.Unlock()
	for _, c := range live {
		c.close()
	}
	return len(live)
}

// Refuse makes the proxy close every new connection at once, before it
// reaches the target, for d from now (as a port with nothing behind it
// would, to a client). Connections already forwarded are left alone.
// Refuse(0) ends it.
func (p *Proxy) Refuse(d time.Duration) {
	p.mu.Lock()
	p.refuseUntil = time.Now().Add(d)
	p.mu.Unlock()
}

// Stall makes the proxy hold new connections until d from now: each is
// accepted, but nothing is forwarded either way (the client's bytes wait
// in the socket) until the stall ends; then it is connected to the target
// as usual. A client whose connect timeout is shorter than the stall gives
// up. Connections already forwarded are left alone. A later call sets a
// new end for the connections held as well, so Stall(0) releases them
// all; CutAll cuts them.
func (p *Proxy) Stall(d time.Duration) {
	p.mu.Lock()
	p.stallUntil = time.Now().Add(d)
	close(p.stallChanged)
	p.stallChanged = make(chan struct{})
	p.mu.Unlock()
}

// CutAfter arms a one-shot cut: once n more bytes have gone client →
// target (counted over all connections from now on), the connection
// carrying the n-th byte is cut right after that byte: the bytes up to it
// reach the target, the rest of what the client sent never does, and both
// sides see the connection end. n must be at least 1. The returned
// channel receives where the cut fell. A later CutAfter replaces one not
// yet fired.
func (p *Proxy) CutAfter(n int64) <-chan Cut {
	if n < 1 {
		n = 1
	}
	plan := &cutPlan{left: n, done: make(chan Cut, 1)}
	p.mu.Lock()
	p.cut = plan
	p.mu.Unlock()
	return plan.done
}

// DropPublishes makes the proxy drop the next n MQTT PUBLISH packets the
// target sends to clients (the messages a broker delivers: for a gate, its
// acks), whole and silently, while every other packet (CONNACK, PUBACK,
// SUBACK, PINGRESP) passes. The client never sees them, so it never
// acknowledges them either. DropPublishes(0) cancels what is left.
func (p *Proxy) DropPublishes(n int) {
	p.mu.Lock()
	p.dropPublishes = max(n, 0)
	p.mu.Unlock()
}

// Throttle limits what each connection forwards from the target to the
// client to about bytesPerSecond, as on a slow uplink; 0 lifts the limit.
func (p *Proxy) Throttle(bytesPerSecond int64) {
	p.mu.Lock()
	p.throttle = max(bytesPerSecond, 0)
	p.mu.Unlock()
}

// Close stops accepting, cuts every connection and waits until the
// proxy's goroutines have ended. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if !already {
		p.ln.Close()
		p.CutAll()
	}
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		pc := &proxyConn{client: c, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[pc] = struct{}{}
		p.stats.Accepted++
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(pc)
	}
}

// serve forwards one connection until either side ends or it is cut.
func (p *Proxy) serve(c *proxyConn) {
	defer p.wg.Done()
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	p.mu.Lock()
	refuse := time.Now().Before(p.refuseUntil)
	if refuse {
		p.stats.Refused++
	}
	p.mu.Unlock()
	if refuse {
		return
	}
	for stalled := false; ; {
		p.mu.Lock()
		wait, changed := time.Until(p.stallUntil), p.stallChanged
		if wait > 0 && !stalled {
			stalled = true
			p.stats.Stalled++
		}
		p.mu.Unlock()
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-changed:
			t.Stop()
		case <-c.done:
			t.Stop()
			return
		}
	}
	b, err := net.DialTimeout("tcp", p.target, proxyDialTimeout)
	if err != nil {
		p.mu.Lock()
		p.stats.DialFailed++
		p.mu.Unlock()
		return
	}
	if !c.attach(b) {
		return // cut while dialing
	}
	var halves sync.WaitGroup
	halves.Add(1)
	go func() { defer halves.Done(); p.down(c) }()
	p.up(c)
	halves.Wait()
}

// up forwards client → target, and carries out CutAfter.
func (p *Proxy) up(c *proxyConn) {
	defer c.close()
	var f framer
	var sent int64
	buf := make([]byte, proxyBuffer)
	for {
		n, err := c.client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			p.mu.Lock()
			var plan *cutPlan
			if p.cut != nil {
				if int64(n) >= p.cut.left {
					plan, p.cut = p.cut, nil
					chunk = chunk[:plan.left]
				} else {
					p.cut.left -= int64(n)
				}
			}
			p.stats.BytesUp += int64(len(chunk))
			p.mu.Unlock()
			_, werr := c.broker.Write(chunk)
			sent += int64(len(chunk))
			f.feed(chunk)
			if plan != nil {
				cut := Cut{Forwarded: sent, Mid: f.inside()}
				if cut.Mid {
					cut.Packet = f.typ
				}
				p.mu.Lock()
				p.stats.Cut++
				p.mu.Unlock()
				c.close()
				plan.done <- cut
				return
			}
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// down forwards target → client, dropping the PUBLISH packets
// DropPublishes asks for.
func (p *Proxy) down(c *proxyConn) {
	defer c.close()
	var f framer
	dropping := false
	buf := make([]byte, proxyBuffer)
	out := make([]byte, 0, proxyBuffer)
	for {
		n, err := c.broker.Read(buf)
		if n > 0 {
			out = out[:0]
			p.mu.Lock()
			for b := buf[:n]; len(b) > 0; {
				k, start := f.next(b)
				if start {
					dropping = f.typ == mqttPublish && p.dropPublishes > 0
					if dropping {
						p.dropPublishes--
						p.stats.DroppedPublishes++
					}
				}
				if !dropping {
					out = append(out, b[:k]...)
				}
				b = b[k:]
			}
			p.stats.BytesDown += int64(len(out))
			rate := p.throttle
			p.mu.Unlock()
			if len(out) > 0 {
				if _, werr := c.client.Write(out); werr != nil {
					return
				}
			}
			if rate > 0 && !c.pause(time.Duration(int64(len(out))*int64(time.Second)/rate)) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// proxyConn is one client connection and, once dialled, its target side.
type proxyConn struct {
	client net.Conn
	done   chan struct{} // closed by close

	mu     sync.Mutex
	broker net.Conn
	closed bool
}

// pause waits d, or until the connection is cut; it reports whether d
// passed.
func (c *proxyConn) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return false
	case <-t.C:
		return true
	}
}

// attach sets the target side; false if the connection was cut already.
func (c *proxyConn) attach(b net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		b.Close()
		return false
	}
	c.broker = b
	return true
}

// close cuts both sides; it is idempotent.
func (c *proxyConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	close(c.done)
	c.client.Close()
	if c.broker != nil {
		c.broker.Close()
	}
}

// framer follows MQTT packet boundaries in a byte stream: a fixed header
// byte, the remaining length (1-4 bytes, 7 bits each), then that many
// bytes. A stream that breaks the rules is followed no further: all of it
// counts as one endless packet of type 0.
type framer struct {
	state  int  // 0 between packets, 1 in the remaining length, 2 in the body
	typ    byte // type of the current packet
	left   int  // state 1: the length so far; state 2: body bytes left
	shift  uint
	broken bool
}

// next consumes the first bytes of b that belong to one packet and
// returns how many, and whether they start a new packet (f.typ is then
// its type).
func (f *framer) next(b []byte) (n int, start bool) {
	if f.broken {
		return len(b), false
	}
	switch f.state {
	case 0:
		f.typ, f.state, f.left, f.shift = b[0]>>4, 1, 0, 0
		return 1, true
	case 1:
		f.left |= int(b[0]&0x7f) << f.shift
		f.shift += 7
		switch {
		case b[0]&0x80 == 0 && f.left == 0:
			f.state = 0
		case b[0]&0x80 == 0:
			f.state = 2
		case f.shift >= 28:
			f.broken, f.typ = true, 0
		}
		return 1, false
	default:
		n = min(len(b), f.left)
		f.left -= n
		if f.left == 0 {
			f.state = 0
		}
		return n, false
	}
}

// feed consumes all of b.
func (f *framer) feed(b []byte) {
	for len(b) > 0 {
		n, _ := f.next(b)
		b = b[n:]
	}
}

// inside reports whether the bytes so far end inside a packet.
func (f *framer) inside() bool { return f.broken || f.state != 0 }
