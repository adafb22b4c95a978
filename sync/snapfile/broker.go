package snapfile

import (
	"context"
	"errors"
	"fmt"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/mqttconn"
)

// subscribeBatch bounds the topics of one SUBSCRIBE: 256 topics of about
// 40 bytes stay far below any broker's packet limit.
const subscribeBatch = 256

// Broker is the Fallback over MQTT: a connection of its own to the
// gate's broker, with a clean session under the gate's client id plus
// "-snapfile", made only while parts are missing, so a gate that
// downloads never receives the parts over MQTT.
type Broker struct {
	// Conn is the gate's broker connection.
	Conn  mqttconn.Conn
	Fleet string
	// NewClient makes the MQTT client; nil means paho.
	NewClient func(*mqtt.ClientOptions) mqtt.Client
}

var _ Fallback = (*Broker)(nil)

// Parts subscribes to the fallback topics of parts and hands each
// message to deliver (see Fallback).
func (b *Broker) Parts(ctx context.Context, parts []int, deliver func(part int, raw []byte) bool) error {
	c := b.Conn
	c.ClientID += "-snapfile"
	o, err := c.Options()
	if err != nil {
		return err
	}
	msgs := make(chan mqtt.Message)
	// Handed over unbuffered, as mqttsync does with parts: paho
	// acknowledges a message when the handler returns, so the broker's
	// in-flight window bounds the parts held in memory.
	o.SetCleanSession(true).SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	})
	newClient := b.NewClient
	if newClient == nil {
		newClient = mqtt.NewClient
	}
	cl := newClient(o)
	if err := waitToken(ctx, cl.Connect()); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer cl.Disconnect(250)
	for i := 0; i < len(parts); i += subscribeBatch {
		filters := map[string]byte{}
		for _, n := range parts[i:min(i+subscribeBatch, len(parts))] {
			filters[FallbackTopic(b.Fleet, n)] = 1
		}
		if err := waitToken(ctx, cl.SubscribeMultiple(filters, nil)); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-msgs:
			if _, _, over := mqttconn.Oversized(m); over {
				continue
			}
			n, ok := FallbackPart(b.Fleet, m.Topic())
			if !ok || len(m.Payload()) == 0 {
				continue
			}
			if deliver(n, m.Payload()) {
				return nil
			}
		}
	}
}

// waitToken waits for a token or ctx.
func waitToken(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return errors.Join(ctx.Err(), errors.New("broker did not answer"))
	}
}
