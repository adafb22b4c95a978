package mqttconn

import (
	"time"

	"wicket/decoder"
)

// Limits of what a client reads from the broker, with the reason for each
// number.
const (
	// DefaultMaxMessage is the largest MQTT packet (its remaining length:
	// topic, packet id and payload) a client reads into memory when
	// Conn.MaxMessage is 0. The largest legitimate message is a signed
	// trust document, at most decoder.MaxTrustDocLen (8 MiB); the extra
	// MiB covers the topic and the packet header with room to spare. A
	// larger PUBLISH is streamed past and replaced by a marker (see
	// Oversized), so a 250 MB retained message costs a gate one read
	// buffer, not 250 MB.
	DefaultMaxMessage = decoder.MaxTrustDocLen + 1<<20
	// MinMaxMessage is the smallest Conn.MaxMessage Validate accepts: a
	// lower limit would turn the largest trust documents into markers, and
	// a gate would never install them.
	MinMaxMessage = decoder.MaxTrustDocLen + 64<<10

	// DefaultKeepAlive is the MQTT keep-alive when Conn.KeepAlive is 0: a
	// dead link is noticed within about 45 s, at one PINGREQ of two bytes
	// each 30 s of silence.
	DefaultKeepAlive = 30 * time.Second

	// DefaultConnectTimeout bounds one connection attempt to one node
	// when Conn.ConnectTimeout is 0: a TCP and TLS handshake and a CONNACK
	// take well under a second on a live broker, and a clustered broker
	// loading a session from its store under load may take seconds.
	DefaultConnectTimeout = 10 * time.Second

	// MaxBrokers bounds Conn.Brokers: a client tries each of them once per
	// connect, each up to the connect timeout, so a long list of dead
	// nodes would hold a connect for minutes. A cluster has three to
	// seven nodes; 16 leaves room for a station broker and a city
	// cluster side by side.
	MaxBrokers = 16

	// OversizedPrefix starts the topic of the marker that replaces an
	// oversized PUBLISH: "$wicket/oversized/" and the original topic. The
	// leading $ keeps it apart from every topic a client can publish to or
	// subscribe with wicket/#.
	OversizedPrefix = "$wicket/oversized/"

	// readBuffer is how much of the stream the guard holds at once while
	// it parses headers and discards oversized payloads; larger reads go
	// straight into paho's buffer.
	readBuffer = 32 << 10
	// pulseEvery: while the guard drops an oversized payload, it hands
	// paho a PINGRESP after each pulseEvery bytes. paho's keepalive waits
	// for the broker's PINGRESP, which is queued behind the payload, and
	// would drop a connection that is busy delivering: 250 MB take 200 s
	// at 10 Mbit/s, the ping timeout is 15 s. Bytes arriving show the link
	// is alive. 64 KiB take 8 s even at 64 kbit/s, and 250 MB cost paho
	// 4000 two-byte packets.
	pulseEvery = 64 << 10
	// maxVarintLen is the longest MQTT 3.1.1 remaining-length field
	// (§2.2.3): four bytes encode at most 268,435,455.
	maxVarintLen = 4
	// maxTopicLen is the longest topic an MQTT string can carry.
	maxTopicLen = 1<<16 - 1
)
