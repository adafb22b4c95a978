package mqttconn

import (
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/mqtttest"
)

// A client given several brokers connects to the first, starts the next
// connect with the following one, and skips a broker that is down.
func TestBrokersRotate(t *testing.T) {
	bs := []*mqtttest.Broker{mqtttest.StartMosquitto(t), mqtttest.StartMosquitto(t), mqtttest.StartMosquitto(t)}
	n := new(Counters)
	c := Conn{Brokers: []string{bs[0].URL(), bs[1].URL(), bs[2].URL()}, ClientID: "rotating", Counters: n}
	if err := c.Validate(""); err != nil {
		t.Fatal(err)
	}
	o, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	connectTo := func(want *mqtttest.Broker) {
		t.Helper()
		cl := mqtt.NewClient(o) // the options' rotation is shared by the clients built from them
		waitTok(t, "connect", cl.Connect())
		if got := n.Broker(); got != want.URL() {
			t.Fatalf("connected to %s; want %s", got, want.URL())
		}
		cl.Disconnect(0)
	}
	connectTo(bs[0])
	connectTo(bs[1])
	bs[2].Stop()
	connectTo(bs[0]) // 2 is down: refused, then 0
	connectTo(bs[1])
	bs[2].Start()
	connectTo(bs[2])
}
