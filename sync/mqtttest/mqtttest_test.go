package mqtttest

import (
	"net"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

const waitLimit = 10 * time.Second

func connect(t *testing.T, b *Broker, id string, clean bool, onMessage mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetProtocolVersion(4).SetDefaultPublishHandler(onMessage)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("connect %s: %v\nbroker log:\n%s", id, tok.Error(), b.Log())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func wait(t *testing.T, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("broker did not complete: %v", tok.Error())
	}
}

func TestStopStart(t *testing.T) {
	b := StartMosquitto(t)
	connect(t, b, "first", true, nil)
	b.Stop()
	if c, err := net.Dial("tcp", b.Addr()); err == nil {
		c.Close()
		t.Fatal("stopped broker still accepts connections")
	}
	b.Stop() // idempotent
	b.Start()
	b.Start() // no-op while running
	connect(t, b, "second", true, nil)
}

// With persistence, a session and its queued QoS 1 message survive a
// restart; without it the broker forgets the session.
func TestPersistence(t *testing.T) {
	for _, persist := range []bool{true, false} {
		var opts []Option
		if persist {
			opts = append(opts, Persistence(""))
		}
		b := StartMosquitto(t, opts...)
		got := make(chan string, 1)
		handler := func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }
		sub := connect(t, b, "sub", false, handler)
		wait(t, sub.Subscribe("t/x", 1, handler))
		sub.Disconnect(100)

		pub := connect(t, b, "pub", true, nil)
		wait(t, pub.Publish("t/x", 1, false, "queued"))
		pub.Disconnect(100)
		b.Stop()
		b.Start()

		sub = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("sub").
			SetCleanSession(false).SetAutoReconnect(false).SetProtocolVersion(4).SetDefaultPublishHandler(handler))
		tok := sub.Connect()
		wait(t, tok)
		t.Cleanup(func() { sub.Disconnect(0) })
		if present := tok.(*mqtt.ConnectToken).SessionPresent(); present != persist {
			t.Errorf("persistence %v: session present after restart = %v", persist, present)
		}
		if !persist {
			continue
		}
		select {
		case m := <-got:
			if m != "queued" {
				t.Errorf("got %q; want \"queued\"", m)
			}
		case <-time.After(waitLimit):
			t.Errorf("queued message lost across a restart with persistence\nbroker log:\n%s", b.Log())
		}
	}
}
