package mqtttest

import (
	"net"
	"slices"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// connectURL connects a persistent-session client to url and reports
// whether the broker said it kept a session.
func connectURL(t *testing.T, url, id string, onMessage mqtt.MessageHandler) (mqtt.Client, bool) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(false).
		SetAutoReconnect(false).SetProtocolVersion(4).SetDefaultPublishHandler(onMessage)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", id, url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, tok.(*mqtt.ConnectToken).SessionPresent()
}

// A message published on one node reaches a subscriber on another; the
// subscriber's session, with a message queued while it was away, moves
// to a third node when its own node is down; the node comes back.
func TestNATSCluster(t *testing.T) {
	c := StartNATSCluster(t)
	if len(c.Nodes) != 3 || c.Node(c.URLs()[1]) != c.Nodes[1] {
		t.Fatalf("cluster has %d nodes, URLs %v", len(c.Nodes), c.URLs())
	}
	got := make(chan string, 4)
	handler := func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }
	// receive waits for want; QoS 1 is at least once, so a message
	// delivered before (again, after the session moved) is skipped.
	receive := func(want string, before ...string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case p := <-got:
				if p == want {
					return
				}
				if !slices.Contains(before, p) {
					t.Fatalf("received %q; want %q", p, want)
				}
				t.Logf("%q delivered again (at least once)", p)
			case <-deadline:
				t.Fatalf("%q not delivered within 30 s", want)
			}
		}
	}
	sub, present := connectURL(t, c.Nodes[0].URL(), "sub", handler)
	if present {
		t.Fatal("a new client id found a session")
	}
	wait(t, sub.Subscribe("t/x", 1, handler))
	pub, _ := connectURL(t, c.Nodes[1].URL(), "pub", nil)
	wait(t, pub.Publish("t/x", 1, false, "one"))
	receive("one")

	sub.Disconnect(100)
	c.Nodes[0].Kill()
	if conn, err := net.Dial("tcp", c.Nodes[0].Addr()); err == nil {
		conn.Close()
		t.Fatal("stopped node still accepts connections")
	}
	// With a node gone, JetStream may first elect new leaders for the
	// streams that node led: seconds, more on a loaded machine.
	PublishRetry(t, c.Nodes[1].URL(), map[string][]byte{"t/x": []byte("two")}, false)
	_, present = connectURL(t, c.Nodes[2].URL(), "sub", handler)
	if !present {
		t.Fatal("the session did not move to another node: CONNACK says no session present")
	}
	receive("two", "one")

	c.Nodes[0].Start()
	c.WaitReady()
	connectURL(t, c.Nodes[0].URL(), "after-restart", nil)
}
