package mqtttest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/internal/testkit"
)

// sink is a TCP server that echoes what it reads and keeps a copy of
// everything each connection sent, until that connection ends.
type sink struct {
	ln net.Listener

	mu    sync.Mutex // guards got; each buffer is safe on its own
	got   []*testkit.Buffer
	ended chan int // index of each connection that ended
}

func startSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, ended: make(chan int, 16)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			i := len(s.got)
			buf := &testkit.Buffer{}
			s.got = append(s.got, buf)
			s.mu.Unlock()
			go func() {
				defer c.Close()
				b := make([]byte, 4096)
				for {
					n, err := c.Read(b)
					if n > 0 {
						buf.Write(b[:n])
						c.Write(b[:n])
					}
					if err != nil {
						s.ended <- i
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *sink) received(i int) string {
	s.mu.Lock()
	if i >= len(s.got) {
		s.mu.Unlock()
		return ""
	}
	buf := s.got[i]
	s.mu.Unlock()
	return buf.String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads the echo, failing on error or timeout.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(waitLimit))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo of %q: %v", msg, err)
	}
	if string(got) != msg {
		t.Fatalf("echo %q; want %q", got, msg)
	}
}

// expectEnd checks that c ends (EOF or reset) within limit without
// delivering anything.
// expectEnd waits for c to be closed by the proxy within limit. Bytes
// already on their way back before the close (an echo of what passed
// before a cut) may still arrive first.
func expectEnd(t *testing.T, c net.Conn, limit time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 64)
	read := 0
	for {
		n, err := c.Read(buf)
		read += n
		var ne net.Error
		switch {
		case err == nil:
			continue
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("connection still open after %v: read %d bytes", limit, read)
		}
		return
	}
}

func TestProxyForwards(t *testing.T) {
	s := startSink(t)
	p := StartProxy(t, s.ln.Addr().String())
	c := dial(t, p.Addr())
	roundTrip(t, c, "hello")
	roundTrip(t, c, "again")
	if got := s.received(0); got != "helloagain" {
		t.Fatalf("target received %q", got)
	}
	st := p.Stats()
	if st.Accepted != 1 || st.BytesUp != 10 || st.BytesDown != 10 {
		t.Fatalf("stats %+v; want 1 accepted, 10 bytes each way", st)
	}
	if p.URL() != "tcp://"+p.Addr() {
		t.Fatalf("URL %q", p.URL())
	}
}

func TestProxyCutAll(t *testing.T) {
	s := startSink(t)
	p := StartProxy(t, s.ln.Addr().String())
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	roundTrip(t, a, "a")
	roundTrip(t, b, "b")
	if n := p.CutAll(); n != 2 {
		t.Fatalf("CutAll cut %d; want 2", n)
	}
	expectEnd(t, a, time.Second)
	expectEnd(t, b, time.Second)
	for range 2 { // the target sees both end too
		select {
		case <-s.ended:
		case <-time.After(waitLimit):
			t.Fatal("target side not closed by CutAll")
		}
	}
	roundTrip(t, dial(t, p.Addr()), "after") // new connections work
	if st := p.Stats(); st.Cut != 2 || st.Accepted != 3 {
		t.Fatalf("stats %+v; want 2 cut of 3 accepted", st)
	}
}

func TestProxyRefuse(t *testing.T) {
	s := startSink(t)
	p := StartProxy(t, s.ln.Addr().String())
	live := dial(t, p.Addr())
	roundTrip(t, live, "before")
	p.Refuse(300 * time.Millisecond)
	c := dial(t, p.Addr())
	c.Write([]byte("x"))
	expectEnd(t, c, time.Second)
	roundTrip(t, live, "still") // a forwarded connection is left alone
	time.Sleep(350 * time.Millisecond)
	roundTrip(t, dial(t, p.Addr()), "later")
	if st := p.Stats(); st.Refused != 1 {
		t.Fatalf("stats %+v; want 1 refused", st)
	}
	p.Refuse(time.Hour)
	p.Refuse(0)
	roundTrip(t, dial(t, p.Addr()), "ended")
}

func TestProxyStall(t *testing.T) {
	s := startSink(t)
	p := StartProxy(t, s.ln.Addr().String())
	const stall = 400 * time.Millisecond
	p.Stall(stall)
	start := time.Now()
	c := dial(t, p.Addr())
	roundTrip(t, c, "held")
	if d := time.Since(start); d < stall-50*time.Millisecond {
		t.Fatalf("echo after %v during a %v stall", d, stall)
	}
	if st := p.Stats(); st.Stalled != 1 {
		t.Fatalf("stats %+v; want 1 stalled", st)
	}

	// A stalled connection can be cut.
	p.Stall(time.Hour)
	c2 := dial(t, p.Addr())
	testkit.Eventually(t, "two live connections", waitLimit, func() bool { return p.Live() >= 2 })
	p.CutAll()
	expectEnd(t, c2, time.Second)

	// Stall(0) releases the connections held.
	c3 := dial(t, p.Addr())
	testkit.Eventually(t, "a live connection", waitLimit, func() bool { return p.Live() >= 1 })
	time.AfterFunc(100*time.Millisecond, func() { p.Stall(0) })
	start = time.Now()
	roundTrip(t, c3, "released")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a connection held for an hour was released after %v by Stall(0)", d)
	}
	roundTrip(t, dial(t, p.Addr()), "free")
}

func TestProxyCutAfter(t *testing.T) {
	s := startSink(t)
	p := StartProxy(t, s.ln.Addr().String())
	c := dial(t, p.Addr())
	roundTrip(t, c, "0123456789")
	cut := p.CutAfter(15)
	roundTrip(t, c, "abcde") // 5 of the 15
	c.Write([]byte("fghijklmnopqrstuvwxyz"))
	var where Cut
	select {
	case where = <-cut:
	case <-time.After(waitLimit):
		t.Fatal("CutAfter did not fire")
	}
	expectEnd(t, c, time.Second)
	select {
	case <-s.ended:
	case <-time.After(waitLimit):
		t.Fatal("target side not closed")
	}
	if got := s.received(0); got != "0123456789abcdefghijklmno" {
		t.Fatalf("target received %q; want the 10 bytes before and 15 after arming", got)
	}
	if where.Forwarded != 25 {
		t.Fatalf("cut %+v; want 25 bytes forwarded", where)
	}
	roundTrip(t, dial(t, p.Addr()), "next") // one-shot
}

func TestProxyClose(t *testing.T) {
	s := startSink(t)
	p := StartProxy(t, s.ln.Addr().String())
	c := dial(t, p.Addr())
	roundTrip(t, c, "x")
	p.Close()
	p.Close()
	expectEnd(t, c, time.Second)
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("closed proxy still accepts")
	}
}

// With the target down, the client's connection is accepted and closed.
func TestProxyTargetDown(t *testing.T) {
	s := startSink(t)
	addr := s.ln.Addr().String()
	s.ln.Close()
	p := StartProxy(t, addr)
	expectEnd(t, dial(t, p.Addr()), time.Second)
	testkit.Eventually(t, "1 failed dial", waitLimit, func() bool { return p.Stats().DialFailed >= 1 })
	if st := p.Stats(); st.DialFailed != 1 {
		t.Fatalf("stats %+v; want 1 failed dial", st)
	}
}

func TestFramer(t *testing.T) {
	// PINGREQ (no body), PUBLISH with a 2-byte length (200), SUBACK.
	stream := []byte{0xc0, 0x00, 0x30, 0xc8, 0x01}
	stream = append(stream, bytes.Repeat([]byte{'p'}, 200)...)
	stream = append(stream, 0x90, 0x03, 0, 1, 0)
	for _, step := range []int{1, 2, 7, len(stream)} {
		var f framer
		var types []byte
		for b := stream; len(b) > 0; {
			chunk := b[:min(step, len(b))]
			b = b[len(chunk):]
			for len(chunk) > 0 {
				n, start := f.next(chunk)
				if start {
					types = append(types, f.typ)
				}
				chunk = chunk[n:]
			}
		}
		if !bytes.Equal(types, []byte{12, 3, 9}) || f.inside() {
			t.Fatalf("step %d: packet types %v, inside %v; want [12 3 9] and between packets", step, types, f.inside())
		}
	}
	var f framer
	f.feed(stream[:10])
	if !f.inside() || f.typ != mqttPublish {
		t.Fatalf("10 bytes in: inside %v type %d; want inside a PUBLISH", f.inside(), f.typ)
	}
	var bad framer
	bad.feed([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01})
	if !bad.broken || !bad.inside() {
		t.Fatal("a five-byte remaining length not seen as broken")
	}
}

// MQTT through the proxy: a byte-count cut lands inside a PUBLISH, which
// the broker then never delivers; DropPublishes hides messages from a
// subscriber behind the proxy while its acks and pings pass.
func TestProxyMQTT(t *testing.T) {
	b := StartMosquitto(t)
	p := StartProxy(t, b.Addr())

	got := make(chan string, 10)
	handler := func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }
	watcher := connect(t, b, "watcher", true, handler)
	wait(t, watcher.Subscribe("t/#", 1, handler))

	viaProxy := func(id string, h mqtt.MessageHandler) mqtt.Client {
		o := mqtt.NewClientOptions().AddBroker(p.URL()).SetClientID(id).SetCleanSession(true).
			SetAutoReconnect(false).SetProtocolVersion(4).SetDefaultPublishHandler(h)
		c := mqtt.NewClient(o)
		wait(t, c.Connect())
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	pub := viaProxy("pub", nil)
	wait(t, pub.Publish("t/a", 1, false, "whole"))
	if m := <-got; m != "whole" {
		t.Fatalf("got %q", m)
	}
	cut := p.CutAfter(20)
	pub.Publish("t/a", 1, false, bytes.Repeat([]byte("x"), 1000))
	select {
	case c := <-cut:
		if !c.Mid || c.Packet != mqttPublish {
			t.Fatalf("cut %+v; want inside a PUBLISH", c)
		}
	case <-time.After(waitLimit):
		t.Fatal("no cut")
	}
	select {
	case m := <-got:
		t.Fatalf("a publish cut after 20 of its bytes was delivered (%d bytes)", len(m))
	case <-time.After(300 * time.Millisecond):
	}

	sub := make(chan string, 10)
	s := viaProxy("sub", func(_ mqtt.Client, m mqtt.Message) { sub <- string(m.Payload()) })
	wait(t, s.Subscribe("t/b", 1, func(_ mqtt.Client, m mqtt.Message) { sub <- string(m.Payload()) }))
	p.DropPublishes(1)
	wait(t, watcher.Publish("t/b", 1, false, "dropped"))
	wait(t, watcher.Publish("t/b", 1, false, "passed"))
	select {
	case m := <-sub:
		if m != "passed" {
			t.Fatalf("subscriber behind the proxy got %q first; want the second message", m)
		}
	case <-time.After(waitLimit):
		t.Fatal("second message not delivered")
	}
	if st := p.Stats(); st.DroppedPublishes != 1 {
		t.Fatalf("stats %+v; want 1 dropped publish", st)
	}
	wait(t, s.Publish("t/c", 0, false, "acks still pass")) // the connection works
}
