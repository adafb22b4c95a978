package mqttconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// ErrProtocol is returned by a guarded connection's Read when the broker's
// stream is not MQTT 3.1.1: a remaining length of more than four bytes, a
// PUBLISH whose topic overruns the packet, QoS 3, or a packet other than
// PUBLISH over the size limit. paho then drops the connection.
var ErrProtocol = errors.New("mqtt protocol error from broker")

// MQTT 3.1.1 control packet type of PUBLISH (§2.2.1).
const typePublish = 3

// guard states.
const (
	stHeader  = iota // reading a fixed header: type byte and remaining length
	stPass           // handing a packet's remaining bytes through
	stPubHead        // reading an oversized PUBLISH's topic and packet id
	stDiscard        // dropping an oversized PUBLISH's payload
)

// guard reads an MQTT 3.1.1 stream from the broker and hands it on
// unchanged, except that a PUBLISH whose remaining length exceeds limit
// is never held in memory: its payload is read and dropped in
// readBuffer-sized pieces, and a small PUBLISH takes its place with the
// same flags and packet id, on OversizedPrefix + topic, carrying the
// dropped payload's size in decimal. paho then delivers and acknowledges
// it like any other message, so the session's in-flight window moves on.
//
// While it drops a payload it hands out a PINGRESP after every pulse
// bytes (pulseEvery), so paho's keepalive sees a live link.
//
// It is a pure stream transformation: packets split across reads at any
// byte come out the same. It is not safe for concurrent Reads (paho reads
// from one goroutine).
type guard struct {
	r     io.Reader
	limit int64
	pulse int64
	// oversized, if set, is told of each replaced PUBLISH.
	oversized func(topic string, size int64)

	buf [readBuffer]byte
	in  []byte // unparsed input, a slice of buf
	out []byte // bytes to hand out before anything else
	err error  // sticky: from r, or ErrProtocol

	state int
	hdr   [1 + maxVarintLen]byte
	nhdr  int
	left  int64  // remaining bytes of the packet to pass or drop
	rl    int64  // remaining length of the oversized PUBLISH
	head  []byte // its topic length, topic and packet id so far
	need  int    // length of head once complete
	beat  int64  // payload bytes dropped since the last PINGRESP
}

// pingresp is the MQTT 3.1.1 PINGRESP packet.
var pingresp = []byte{0xd0, 0x00}

func newGuard(r io.Reader, limit int64, oversized func(topic string, size int64)) *guard {
	return &guard{r: r, limit: limit, pulse: pulseEvery, oversized: oversized}
}

// Read implements io.Reader. It may block on the underlying reader for
// as long as an oversized payload takes to arrive.
func (g *guard) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(g.out) > 0 {
			n := copy(p, g.out)
			g.out = g.out[n:]
			return n, nil
		}
		if g.state == stPass {
			if len(g.in) > 0 {
				n := copy(p[:min(int64(len(p)), g.left)], g.in)
				g.in = g.in[n:]
				g.passed(n)
				return n, nil
			}
			if g.err != nil {
				return 0, g.err
			}
			// Nothing buffered: read the packet body straight into p.
			n, err := g.r.Read(p[:min(int64(len(p)), g.left)])
			g.passed(n)
			if err != nil {
				g.err = err
			}
			if n > 0 {
				return n, nil
			}
			if err != nil {
				return 0, err
			}
			continue
		}
		if len(g.in) == 0 {
			if g.err != nil {
				return 0, g.err
			}
			n, err := g.r.Read(g.buf[:])
			g.in = g.buf[:n]
			if err != nil {
				g.err = err
			}
			continue
		}
		if err := g.step(); err != nil {
			g.err, g.in, g.out = err, nil, nil
			return 0, err
		}
	}
}

// passed notes n bytes of a passed-through packet.
func (g *guard) passed(n int) {
	g.left -= int64(n)
	if g.left == 0 {
		g.state = stHeader
	}
}

// step consumes buffered input in the header, PUBLISH-head and discard
// states.
func (g *guard) step() error {
	switch g.state {
	case stHeader:
		b := g.in[0]
		g.in = g.in[1:]
		g.hdr[g.nhdr] = b
		g.nhdr++
		if g.nhdr == 1 || b&0x80 != 0 {
			if g.nhdr == len(g.hdr) {
				return fmt.Errorf("%w: remaining length longer than %d bytes", ErrProtocol, maxVarintLen)
			}
			return nil
		}
		return g.header()
	case stPubHead:
		n := min(g.need-len(g.head), len(g.in))
		g.head = append(g.head, g.in[:n]...)
		g.in = g.in[n:]
		if len(g.head) == 2 && g.need == 2 {
			g.need = 2 + int(binary.BigEndian.Uint16(g.head))
			if g.hdr[0]&0x06 != 0 {
				g.need += 2 // packet id at QoS 1 and 2
			}
			if int64(g.need) > g.rl {
				return fmt.Errorf("%w: PUBLISH topic overruns its %d-byte packet", ErrProtocol, g.rl)
			}
		}
		if len(g.head) == g.need {
			g.state, g.left = stDiscard, g.rl-int64(g.need)
			g.discard()
		}
	case stDiscard:
		g.discard()
	}
	return nil
}

// header acts on a complete fixed header.
func (g *guard) header() error {
	var rl int64
	for i := g.nhdr - 1; i >= 1; i-- {
		rl = rl<<7 | int64(g.hdr[i]&0x7f)
	}
	typ, flags := g.hdr[0]>>4, g.hdr[0]&0x0f
	n := g.nhdr
	g.nhdr = 0
	switch {
	case rl <= g.limit:
		g.out = g.hdr[:n]
		g.state, g.left = stPass, rl
		if rl == 0 {
			g.state = stHeader
		}
		return nil
	case typ != typePublish:
		return fmt.Errorf("%w: packet type %d of %d bytes, over the %d-byte limit", ErrProtocol, typ, rl, g.limit)
	case flags&0x06 == 0x06:
		return fmt.Errorf("%w: PUBLISH with QoS 3", ErrProtocol)
	}
	g.state, g.rl, g.head, g.need, g.beat = stPubHead, rl, g.head[:0], 2, 0
	return nil
}

// discard drops buffered payload of an oversized PUBLISH, with a
// PINGRESP after every g.pulse bytes; once all of it is gone it queues the
// marker.
func (g *guard) discard() {
	n := min(int64(len(g.in)), g.left, g.pulse-g.beat)
	g.in = g.in[n:]
	g.left -= n
	g.beat += n
	if g.left > 0 {
		if g.beat == g.pulse {
			g.out, g.beat = pingresp, 0
		}
		return
	}
	end := 2 + int(binary.BigEndian.Uint16(g.head))
	topic, size := string(g.head[2:end]), g.rl-int64(g.need)
	g.out = marker(g.hdr[0], topic, g.head[end:], size)
	g.state = stHeader
	if g.oversized != nil {
		g.oversized(topic, size)
	}
}

// marker encodes the PUBLISH that stands for an oversized one: the same
// flags (DUP, QoS, RETAIN) as its first byte and the same packet id, the
// topic behind OversizedPrefix (cut to fit an MQTT string), the size as
// payload.
func marker(first byte, topic string, id []byte, size int64) []byte {
	t := OversizedPrefix + topic
	if len(t) > maxTopicLen {
		t = t[:maxTopicLen]
	}
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Dup, p.Qos, p.Retain = first&0x08 != 0, first>>1&0x03, first&0x01 != 0
	p.TopicName, p.Payload = t, strconv.AppendInt(nil, size, 10)
	if len(id) == 2 {
		p.MessageID = binary.BigEndian.Uint16(id)
	}
	var b bytes.Buffer
	_ = p.Write(&b) // a bytes.Buffer does not fail
	return b.Bytes()
}

// guardedConn is a connection whose reads pass through a guard; writes
// and everything else go to the connection underneath.
type guardedConn struct {
	net.Conn
	g *guard
}

func (c *guardedConn) Read(p []byte) (int, error) { return c.g.Read(p) }
