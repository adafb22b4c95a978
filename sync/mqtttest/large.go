package mqtttest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// largeTimeout bounds each step of PublishLarge (connect, the whole
// payload, the PUBACK); 300 MB over loopback takes about a second.
const largeTimeout = time.Minute

// PublishLarge connects on conn (a fresh connection to the broker, plain
// or TLS) as clientID, sends one QoS 1 PUBLISH of size bytes on topic and
// waits for its PUBACK. The payload is streamed from a small buffer, so a
// test can send 250 MB without holding it. It returns an error when the
// broker refuses the connection, drops it (a broker with a packet size
// limit disconnects the sender) or does not acknowledge. It closes conn.
func PublishLarge(conn net.Conn, clientID, topic string, size int64, retain bool) error {
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(largeTimeout)); err != nil {
		return err
	}
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.ClientIdentifier, cp.CleanSession, cp.Keepalive = "MQTT", 4, clientID, true, 60
	if err := cp.Write(conn); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	r := bufio.NewReader(conn)
	ack, err := packets.ReadPacket(r)
	if err != nil {
		return fmt.Errorf("connack: %w", err)
	}
	if ca, ok := ack.(*packets.ConnackPacket); !ok || ca.ReturnCode != 0 {
		return fmt.Errorf("connect refused: %v", ack)
	}
	const id = 1
	rl := 2 + int64(len(topic)) + 2 + size
	first := byte(0x32) // PUBLISH, QoS 1
	if retain {
		first |= 1
	}
	head := []byte{first}
	for {
		d := byte(rl & 0x7f)
		rl >>= 7
		if rl == 0 {
			head = append(head, d)
			break
		}
		head = append(head, d|0x80)
	}
	head = binary.BigEndian.AppendUint16(head, uint16(len(topic)))
	head = append(head, topic...)
	head = binary.BigEndian.AppendUint16(head, id)
	w := bufio.NewWriterSize(conn, 64<<10)
	if _, err := w.Write(head); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	chunk := make([]byte, 32<<10)
	for left := size; left > 0; {
		n := min(left, int64(len(chunk)))
		if _, err := w.Write(chunk[:n]); err != nil {
			return fmt.Errorf("publish, %d of %d bytes left: %w", left, size, err)
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	p, err := packets.ReadPacket(r)
	if err != nil {
		return fmt.Errorf("puback: %w", err)
	}
	if pa, ok := p.(*packets.PubackPacket); !ok || pa.MessageID != id {
		return fmt.Errorf("want the PUBACK of message %d, got %v", id, p)
	}
	_ = packets.NewControlPacket(packets.Disconnect).Write(conn)
	return nil
}
