package collector

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Client is the part of a paho MQTT client the collector uses.
type Client interface {
	Connect() mqtt.Token
	Subscribe(topic string, qos byte, callback mqtt.MessageHandler) mqtt.Token
	Unsubscribe(topics ...string) mqtt.Token
	Publish(topic string, qos byte, retained bool, payload any) mqtt.Token
	Disconnect(quiesce uint)
}

var _ Client = mqtt.Client(nil)

// ClientFactory makes the client from the options the collector built.
// Tests pass one that wraps or replaces paho.
type ClientFactory func(*mqtt.ClientOptions) Client

// NewPahoClient is the ClientFactory of a real paho client.
func NewPahoClient(o *mqtt.ClientOptions) Client { return mqtt.NewClient(o) }
