package mqtttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

const debianNATSPath = "/usr/sbin/nats-server"

// Limits of waiting for a NATS cluster.
const (
	// clusterReady bounds how long a starting cluster may take to elect
	// its JetStream meta leader and accept MQTT sessions: seconds on a
	// quiet machine, more on a loaded CI runner.
	clusterReady = 60 * time.Second
	// clusterNodes is the size of the cluster StartNATSCluster runs: the
	// smallest that keeps a JetStream quorum with one node down.
	clusterNodes = 3
)

// NATSBin finds the nats-server binary or fails the test: the one
// WICKET_NATS_SERVER names (another release, to compare brokers), else
// the one on PATH, else Debian's.
func NATSBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("WICKET_NATS_SERVER"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("WICKET_NATS_SERVER: %v", err)
		}
		return bin
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat(debianNATSPath); serr != nil {
			t.Fatalf("nats-server not found (%v): install the Debian package nats-server", err)
		}
		bin = debianNATSPath
	}
	return bin
}

// natsNode is a Broker running nats-server from the config file it
// writes.
func natsNode(t testing.TB, bin string) *Broker {
	dir := t.TempDir()
	b := &Broker{t: t, bin: bin, dir: dir, logPath: filepath.Join(dir, "nats.log")}
	t.Cleanup(b.Stop)
	return b
}

// natsConfig is one server's config: its name, client port, JetStream
// store, MQTT listener and, in a cluster, its route port and the routes
// to every node (a node ignores the route to itself).
func natsConfig(name string, client, mqttPort int, store string, route int, routes []int, o NATSMQTT) string {
	var c strings.Builder
	fmt.Fprintf(&c, "server_name: %s\nlisten: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n}\nmqtt {\n  listen: 127.0.0.1:%d\n", name, client, store, mqttPort)
	if o.ConsumerReplicas > 0 {
		fmt.Fprintf(&c, "  consumer_replicas: %d\n", o.ConsumerReplicas)
	}
	if o.ConsumerMemory {
		c.WriteString("  consumer_memory_storage: true\n")
	}
	c.WriteString("}\n")
	if len(routes) > 0 {
		fmt.Fprintf(&c, "cluster {\n  name: wicket_test\n  listen: 127.0.0.1:%d\n  routes: [\n", route)
		for _, r := range routes {
			fmt.Fprintf(&c, "    nats-route://127.0.0.1:%d\n", r)
		}
		c.WriteString("  ]\n}\n")
	}
	return c.String()
}

// freePorts picks n distinct free loopback ports. Each listener stays
// open until all are picked: a port closed at once may be handed out
// again by the next pick, and two nodes would then share it.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("mqtttest: pick a port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// StartNATS starts a NATS server with JetStream and its MQTT listener on
// 127.0.0.1 (a second, real MQTT engine: sessions and retained messages
// live in JetStream streams), and stops it when the test ends. URL and
// Addr are the MQTT listener's. It fails the test when the nats-server
// binary is missing.
func StartNATS(t testing.TB) *Broker {
	t.Helper()
	b := natsNode(t, NATSBin(t))
	store := t.TempDir()
	var lastErr error
	for range portAttempts {
		ports := freePorts(t, 2)
		b.port = ports[1]
		if err := os.WriteFile(b.configPath(), []byte(natsConfig("wicket_test", ports[0], ports[1], store, 0, nil, NATSMQTT{})), 0o600); err != nil {
			t.Fatalf("mqtttest: %v", err)
		}
		if lastErr = b.start(); lastErr == nil {
			// The MQTT listener answers before JetStream can hold a
			// session: a client's first connect is refused until it can.
			if err := b.waitSessions("mqtttest-ready"); err != nil {
				t.Fatalf("mqtttest: nats-server not accepting MQTT sessions after %v: %v\n%s", clusterReady, err, b.Log())
			}
			return b
		}
	}
	t.Fatalf("mqtttest: start nats-server: %v", lastErr)
	return nil
}

// Cluster is a three-node NATS cluster, each node with JetStream (its
// own store directory) and an MQTT listener, routed to each other on
// loopback. MQTT sessions and retained messages live in JetStream
// streams replicated on the three nodes, so a client can move to another
// node and find its session there; with one node down the other two keep
// the quorum.
type Cluster struct {
	// Nodes are the servers, each a Broker whose URL is its MQTT
	// listener: Stop and Start one to take it down and bring it back
	// (with its store, as a restarted server would).
	Nodes []*Broker
}

// NATSMQTT are the nodes' MQTT options for the JetStream consumers
// behind QoS 1 subscriptions; the zero value is nats-server's defaults
// (consumers replicated like the streams, R3 in a three-node cluster,
// on file).
type NATSMQTT struct {
	// ConsumerReplicas is consumer_replicas: 1 puts each subscription's
	// consumer on one node only, which loses it with that node.
	ConsumerReplicas int
	// ConsumerMemory is consumer_memory_storage: consumers kept in
	// memory, lost when their node stops.
	ConsumerMemory bool
}

// StartNATSCluster starts a three-node cluster on free loopback ports and
// waits until every node accepts MQTT sessions (JetStream has a meta
// leader). The nodes are stopped when the test ends. It fails the test
// when nats-server is missing or the cluster does not form within a
// minute. An NATSMQTT, if given, sets the consumers' options.
func StartNATSCluster(t testing.TB, opts ...NATSMQTT) *Cluster {
	t.Helper()
	var o NATSMQTT
	for _, x := range opts {
		o = x
	}
	bin := NATSBin(t)
	c := &Cluster{}
	stores := make([]string, clusterNodes)
	for i := range clusterNodes {
		c.Nodes = append(c.Nodes, natsNode(t, bin))
		stores[i] = t.TempDir()
	}
	var lastErr error
	for range portAttempts {
		ports := freePorts(t, 3*clusterNodes) // client, route, MQTT per node
		routes := ports[clusterNodes : 2*clusterNodes]
		for i, b := range c.Nodes {
			b.port = ports[2*clusterNodes+i]
			conf := natsConfig(fmt.Sprintf("wicket_n%d", i+1), ports[i], b.port, stores[i], routes[i], routes, o)
			if err := os.WriteFile(b.configPath(), []byte(conf), 0o600); err != nil {
				t.Fatalf("mqtttest: %v", err)
			}
		}
		lastErr = nil
		for _, b := range c.Nodes {
			if lastErr = b.start(); lastErr != nil {
				break
			}
		}
		if lastErr == nil {
			c.WaitReady()
			return c
		}
		for _, b := range c.Nodes {
			b.Stop()
		}
	}
	t.Fatalf("mqtttest: start the NATS cluster: %v", lastErr)
	return nil
}

// URLs are the nodes' MQTT URLs, in node order.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.Nodes))
	for i, b := range c.Nodes {
		urls[i] = b.URL()
	}
	return urls
}

// Node returns the node whose MQTT URL is url, or nil.
func (c *Cluster) Node(url string) *Broker {
	for _, b := range c.Nodes {
		if b.URL() == url {
			return b
		}
	}
	return nil
}

// WaitReady waits until every running node accepts an MQTT session with
// a persistent session (which needs JetStream to be up on that node), or
// fails the test after a minute with the nodes' logs.
func (c *Cluster) WaitReady() {
	for i, b := range c.Nodes {
		b.mu.Lock()
		running := b.cmd != nil
		b.mu.Unlock()
		if running {
			c.waitNode(i, b)
		}
	}
}

func (c *Cluster) waitNode(i int, b *Broker) {
	b.t.Helper()
	if err := b.waitSessions(fmt.Sprintf("mqtttest-ready-%d", i)); err != nil {
		var logs strings.Builder
		for j, n := range c.Nodes {
			fmt.Fprintf(&logs, "--- node %d log:\n%s\n", j+1, n.Log())
		}
		b.t.Fatalf("mqtttest: NATS node %d not accepting MQTT sessions after %v: %v\n%s", i+1, clusterReady, err, logs.String())
	}
}

// waitSessions waits until b accepts an MQTT connect with a persistent
// session (which needs JetStream up on the node), for up to
// clusterReady, and returns the last error if it never does.
func (b *Broker) waitSessions(id string) error {
	deadline := time.Now().Add(clusterReady)
	var err error
	for time.Now().Before(deadline) {
		o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).
			SetCleanSession(false).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		cl := mqtt.NewClient(o)
		tok := cl.Connect()
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			cl.Disconnect(0)
			return nil
		}
		err = tok.Error()
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// PublishRetry publishes msgs (topic to payload) at QoS 1 on url through
// a fresh clean-session client, and tries the whole set again until
// every message is acknowledged, for up to a minute: right after a node
// of a NATS cluster is killed, the other nodes refuse or drop MQTT
// clients until JetStream has new leaders for the streams that node led.
// It fails the test if the broker never takes them. Republishing is
// harmless for retained messages and for receivers that drop duplicates.
func PublishRetry(t testing.TB, url string, msgs map[string][]byte, retained bool) {
	t.Helper()
	deadline := time.Now().Add(clusterReady)
	var err error
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		if err = publishOnce(url, fmt.Sprintf("mqtttest-publisher-%d", attempt), msgs, retained); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("mqtttest: publish to %s: not acknowledged within %v: %v", url, clusterReady, err)
}

func publishOnce(url, id string, msgs map[string][]byte, retained bool) error {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	cl := mqtt.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("connect: no answer")
	}
	if tok.Error() != nil {
		return fmt.Errorf("connect: %w", tok.Error())
	}
	defer cl.Disconnect(100)
	for topic, payload := range msgs {
		tok := cl.Publish(topic, 1, retained, payload)
		if !tok.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("publish %s: no PUBACK", topic)
		}
		if tok.Error() != nil {
			return fmt.Errorf("publish %s: %w", topic, tok.Error())
		}
	}
	return nil
}
