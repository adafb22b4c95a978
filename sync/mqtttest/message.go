package mqtttest

import mqtt "github.com/eclipse/paho.mqtt.golang"

// NewMessage is a received MQTT message, for tests that call a client's
// message handler directly: QoS 1, not retained, not a duplicate, packet
// id 1; its Ack does nothing.
func NewMessage(topic string, payload []byte) mqtt.Message {
	return message{topic, payload}
}

type message struct {
	topic   string
	payload []byte
}

func (m message) Duplicate() bool   { return false }
func (m message) Qos() byte         { return 1 }
func (m message) Retained() bool    { return false }
func (m message) Topic() string     { return m.topic }
func (m message) MessageID() uint16 { return 1 }
func (m message) Payload() []byte   { return m.payload }
func (m message) Ack()              {}

var _ mqtt.Message = message{}
