package mqttconn

import (
	"strconv"
	"strings"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Counters count what a client's connection layer dropped, and say which
// broker it connected to last. The zero value is ready; it is safe for
// concurrent use. Point Conn.Counters at one to read them (for status and
// metrics).
type Counters struct {
	oversized atomic.Uint64
	unrouted  atomic.Uint64
	broker    atomic.Pointer[string]
}

// Broker is the URL of the broker the client's last connection was made
// to ("" before the first): with several brokers (Conn.Brokers), the node
// it is on.
func (n *Counters) Broker() string {
	if n == nil {
		return ""
	}
	if b := n.broker.Load(); b != nil {
		return *b
	}
	return ""
}

func (n *Counters) setBroker(url string) {
	if n != nil {
		n.broker.Store(&url)
	}
}

// Oversized is how many PUBLISH packets over the size limit were streamed
// past and replaced by a marker.
func (n *Counters) Oversized() uint64 {
	if n == nil {
		return 0
	}
	return n.oversized.Load()
}

// Unrouted is how many messages no route wanted, acknowledged and dropped
// by the default handler (markers included).
func (n *Counters) Unrouted() uint64 {
	if n == nil {
		return 0
	}
	return n.unrouted.Load()
}

func (n *Counters) addOversized() {
	if n != nil {
		n.oversized.Add(1)
	}
}

// Oversized reports whether m is the marker that stands for a PUBLISH
// over the connection's size limit, and then the original topic and the
// size of the payload that was dropped.
func Oversized(m mqtt.Message) (topic string, size int64, ok bool) {
	topic, ok = strings.CutPrefix(m.Topic(), OversizedPrefix)
	if !ok {
		return "", 0, false
	}
	size, err := strconv.ParseInt(string(m.Payload()), 10, 64)
	if err != nil || size < 0 {
		return "", 0, false
	}
	return topic, size, true
}

// DropHandler returns a message handler that acknowledges m and drops it,
// counting it in n (which may be nil). Options installs it as paho's
// default handler, so a message that matches no route (a queued message
// arriving before its route exists, junk on a subscribed wildcard, an
// oversized marker) is acknowledged and can never hold a slot of the
// broker's in-flight window. A client with its own default handler should
// end it with this one for what it does not handle.
func DropHandler(n *Counters) mqtt.MessageHandler {
	return func(_ mqtt.Client, m mqtt.Message) {
		if n != nil {
			n.unrouted.Add(1)
		}
		// Ack is idempotent; calling it here also covers clients that
		// turned paho's automatic acknowledgement off.
		m.Ack()
	}
}
