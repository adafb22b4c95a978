package mqttconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// chunks hands out r's bytes in pieces of 1 to max bytes, chosen by rng:
// a stream split at arbitrary points.
type chunks struct {
	r   io.Reader
	rng *rand.Rand
	max int
}

func (c *chunks) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), 1+c.rng.IntN(c.max))])
}

// readAll reads g to the end in reads of random size, returning what it
// read and the error that ended it.
func readAll(g io.Reader, rng *rand.Rand) ([]byte, error) {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := g.Read(buf[:1+rng.IntN(len(buf))])
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
	}
}

// pulsedGuard is a guard that sends its PINGRESPs every pulse bytes.
func pulsedGuard(r io.Reader, limit, pulse int64, oversized func(string, int64)) *guard {
	g := newGuard(r, limit, oversized)
	g.pulse = pulse
	return g
}

// pulses is how many PINGRESPs the guard sends while it drops dropped
// bytes of a payload of size bytes.
func pulses(dropped, size, pulse int64) int {
	if dropped == size {
		dropped-- // none once the payload is complete
	}
	return int(max(dropped, 0) / pulse)
}

// reference is the guard's contract written as a whole-buffer
// transformation: every packet unchanged, except an oversized PUBLISH
// replaced by its marker, with a PINGRESP for each pulse bytes dropped
// while more remain; io.EOF where the input ends (a cut packet's passed
// bytes included), ErrProtocol where it is not MQTT.
func reference(in []byte, limit, pulse int64) ([]byte, error) {
	var out []byte
	for len(in) > 0 {
		i, rl := 1, int64(0)
		for {
			if i >= len(in) {
				return out, io.EOF
			}
			b := in[i]
			rl |= int64(b&0x7f) << (7 * (i - 1))
			i++
			if b&0x80 == 0 {
				break
			}
			if i == 1+maxVarintLen {
				return out, ErrProtocol
			}
		}
		first := in[0]
		if rl <= limit {
			out = append(out, in[:i]...)
			body := in[i:min(int64(len(in)), int64(i)+rl)]
			out = append(out, body...)
			if int64(len(body)) < rl {
				return out, io.EOF
			}
			in = in[int64(i)+rl:]
			continue
		}
		if first>>4 != typePublish || first&0x06 == 0x06 {
			return out, ErrProtocol
		}
		in = in[i:]
		if len(in) < 2 {
			return out, io.EOF
		}
		need := 2 + int64(binary.BigEndian.Uint16(in))
		if first&0x06 != 0 {
			need += 2
		}
		if need > rl {
			return out, ErrProtocol
		}
		if int64(len(in)) < need {
			return out, io.EOF
		}
		dropped := min(int64(len(in)), rl) - need
		out = append(out, bytes.Repeat(pingresp, pulses(dropped, rl-need, pulse))...)
		if int64(len(in)) < rl {
			return out, io.EOF
		}
		end := 2 + int(binary.BigEndian.Uint16(in))
		out = append(out, marker(first, string(in[2:end]), in[end:need], rl-need)...)
		in = in[rl:]
	}
	return out, io.EOF
}

// randomPackets writes n packets of the kinds a broker sends, publishes
// of every QoS with payloads around limit and around the boundaries of
// the remaining-length encoding, and returns them with the stream.
func randomPackets(rng *rand.Rand, n int, limit int) ([]packets.ControlPacket, []byte) {
	sizes := []int{0, 1, 100, 124, 125, 126, 127, 128, 16380, 16383, 16384, limit - 20, limit - 1, limit, limit + 1, 3 * limit}
	var list []packets.ControlPacket
	var w bytes.Buffer
	for range n {
		var p packets.ControlPacket
		switch rng.IntN(6) {
		case 0:
			a := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
			a.MessageID = uint16(rng.Uint32())
			p = a
		case 1:
			p = packets.NewControlPacket(packets.Pingresp)
		case 2:
			s := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			s.MessageID, s.ReturnCodes = uint16(rng.Uint32()), []byte{0, 1, 0x80}
			p = s
		default:
			pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
			pub.Qos, pub.Retain, pub.Dup = byte(rng.IntN(3)), rng.IntN(2) == 0, rng.IntN(4) == 0
			if pub.Qos > 0 {
				pub.MessageID = uint16(1 + rng.IntN(65535))
			}
			pub.TopicName = strings.Repeat("t/", rng.IntN(40)) + strconv.Itoa(rng.IntN(1000))
			pub.Payload = make([]byte, max(0, sizes[rng.IntN(len(sizes))]-rng.IntN(3)))
			for i := range pub.Payload {
				pub.Payload[i] = byte(i)
			}
			p = pub
		}
		if err := p.Write(&w); err != nil {
			panic(err)
		}
		list = append(list, p)
	}
	return list, w.Bytes()
}

// TestGuardPackets: a random stream of broker packets, split at random
// points and read in random sizes, gives the same packets out as in,
// except that each PUBLISH over the limit becomes its marker.
func TestGuardPackets(t *testing.T) {
	const limit = 20000
	var total int
	defer func() {
		if total == 0 {
			t.Error("no PUBLISH was over the limit: the generator is broken")
		}
	}()
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		in, stream := randomPackets(rng, 60, limit)
		var replaced int
		const pulse = 5000
		g := pulsedGuard(&chunks{r: bytes.NewReader(stream), rng: rng, max: 1 + rng.IntN(70000)}, limit, pulse,
			func(string, int64) { replaced++ })
		var want int
		for i, p := range in {
			pub, ok := p.(*packets.PublishPacket)
			big := ok && pub.FixedHeader.RemainingLength > limit
			for k := 0; big && k < pulses(int64(len(pub.Payload)), int64(len(pub.Payload)), pulse); k++ {
				got, err := packets.ReadPacket(g)
				if _, ok := got.(*packets.PingrespPacket); !ok || err != nil {
					t.Fatalf("seed %d, packet %d: pulse %d = %v, %v; want a PINGRESP", seed, i, k, got, err)
				}
			}
			got, err := packets.ReadPacket(g)
			if err != nil {
				t.Fatalf("seed %d, packet %d (%v): %v", seed, i, p, err)
			}
			if !big {
				if !reflect.DeepEqual(got, p) {
					t.Fatalf("seed %d, packet %d = %v; want %v", seed, i, got, p)
				}
				continue
			}
			want++
			total++
			m, ok := got.(*packets.PublishPacket)
			if !ok {
				t.Fatalf("seed %d, packet %d = %v; want the marker of %v", seed, i, got, p)
			}
			if m.TopicName != OversizedPrefix+pub.TopicName || m.Qos != pub.Qos || m.Retain != pub.Retain ||
				m.Dup != pub.Dup || m.MessageID != pub.MessageID || string(m.Payload) != strconv.Itoa(len(pub.Payload)) {
				t.Fatalf("seed %d, packet %d = %v %q; want the marker of %v", seed, i, m, m.Payload, pub)
			}
		}
		if _, err := packets.ReadPacket(g); err != io.EOF {
			t.Fatalf("seed %d: after the last packet: %v; want EOF", seed, err)
		}
		if replaced != want {
			t.Errorf("seed %d: %d oversized reported; want %d", seed, replaced, want)
		}
	}
}

// TestGuardRemainingLength covers the edges of the remaining-length
// field: the largest value of each width passes (or is replaced), and a
// fifth byte is a protocol error, however the bytes are split.
func TestGuardRemainingLength(t *testing.T) {
	pub := func(lenBytes ...byte) []byte {
		return append([]byte{0x30}, lenBytes...)
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		limit   int64
		wantOut []byte
		wantErr error
	}{
		{"zero-length pingresp", []byte{0xd0, 0x00}, 10, []byte{0xd0, 0x00}, io.EOF},
		{"non-minimal zero", []byte{0xd0, 0x80, 0x00}, 10, []byte{0xd0, 0x80, 0x00}, io.EOF},
		{"127 bytes, cut", pub(0x7f, 0, 1, 'a'), 127, pub(0x7f, 0, 1, 'a'), io.EOF},
		{"128 over a limit of 127, cut", pub(0x80, 0x01, 0, 1, 'a'), 127, nil, io.EOF},
		{"largest 4-byte length, cut", pub(0xff, 0xff, 0xff, 0x7f, 0, 1, 'a'), DefaultMaxMessage, nil, io.EOF},
		{"five-byte length", pub(0xff, 0xff, 0xff, 0xff, 0x01), DefaultMaxMessage, nil, ErrProtocol},
		{"five-byte length under a huge limit", pub(0x80, 0x80, 0x80, 0x80, 0x00), 1 << 40, nil, ErrProtocol},
		{"oversized suback", []byte{0x90, 0x80, 0x01}, 127, nil, ErrProtocol},
		{"oversized QoS 3 publish", []byte{0x36, 0x80, 0x01}, 127, nil, ErrProtocol},
		{"topic overruns the packet", []byte{0x30, 0x80, 0x01, 0xff, 0xff}, 127, nil, ErrProtocol},
		{"packet id overruns the packet", append([]byte{0x32, 0x80, 0x01, 0x00, 0x7e}, bytes.Repeat([]byte{'x'}, 126)...), 127, nil, ErrProtocol},
		{"oversized, topic and id fill it", append([]byte{0x32, 0x80, 0x01, 0x00, 0x7c}, append(bytes.Repeat([]byte{'x'}, 124), 0x12, 0x34)...), 127,
			marker(0x32, strings.Repeat("x", 124), []byte{0x12, 0x34}, 0), io.EOF},
	} {
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, 2))
			g := pulsedGuard(&chunks{r: bytes.NewReader(tc.in), rng: rng, max: 3}, tc.limit, 1<<30, nil)
			out, err := readAll(g, rng)
			if !bytes.Equal(out, tc.wantOut) || !errors.Is(err, tc.wantErr) {
				t.Fatalf("%s (seed %d): guard(% x) = % x, %v; want % x, %v", tc.name, seed, tc.in, out, err, tc.wantOut, tc.wantErr)
			}
			if _, err2 := g.Read(make([]byte, 10)); !errors.Is(err2, tc.wantErr) {
				t.Errorf("%s: read after the end = %v; want %v again", tc.name, err2, tc.wantErr)
			}
		}
	}
}

// TestMarkerTopicCut: a marker for a topic of the longest MQTT length is
// still a valid packet, its topic cut to fit.
func TestMarkerTopicCut(t *testing.T) {
	topic := strings.Repeat("x", maxTopicLen)
	p, err := packets.ReadPacket(bytes.NewReader(marker(0x33, topic, []byte{0, 7}, 1<<30)))
	if err != nil {
		t.Fatal(err)
	}
	m := p.(*packets.PublishPacket)
	if len(m.TopicName) != maxTopicLen || !strings.HasPrefix(m.TopicName, OversizedPrefix) || m.MessageID != 7 || !m.Retain || string(m.Payload) != fmt.Sprint(1<<30) {
		t.Errorf("marker = %v, topic of %d bytes", m, len(m.TopicName))
	}
}

// FuzzGuard: on any input, split anywhere, the guard never panics and
// gives exactly what the whole-buffer reference gives.
func FuzzGuard(f *testing.F) {
	_, stream := randomPackets(rand.New(rand.NewPCG(1, 1)), 8, 64)
	f.Add(stream, uint64(1))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, uint64(2))
	f.Add([]byte{0x32, 0x80, 0x01, 0x00, 0x7c, 'x'}, uint64(3))
	f.Add([]byte{0xd0, 0x00, 0x30, 0x05, 0x00, 0x01, 'a', 'b', 'c'}, uint64(4))
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		const limit, pulse = 64, 16
		rng := rand.New(rand.NewPCG(seed, 3))
		wantOut, wantErr := reference(in, limit, pulse)
		out, err := readAll(pulsedGuard(&chunks{r: bytes.NewReader(in), rng: rng, max: 1 + rng.IntN(100)}, limit, pulse, nil), rng)
		if !bytes.Equal(out, wantOut) || !errors.Is(err, wantErr) {
			t.Fatalf("guard(% x) = % x, %v; want % x, %v", in, out, err, wantOut, wantErr)
		}
	})
}
