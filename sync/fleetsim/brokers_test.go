package fleetsim

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"wicket/sync/mqtttest"
)

// Broker kinds a fleet simulation runs on (WICKET_FLEET_BROKER).
const (
	brokerMosquitto = "mosquitto"
	brokerNATS      = "nats"
)

// fleetBroker is what a simulated fleet runs on: one persistent
// Mosquitto, or the three-node NATS cluster (JetStream, MQTT listener on
// each node). The gates and the publisher connect to the nodes directly;
// the collector connects through a Proxy per node, so a collector can be
// killed (its connection cut, no DISCONNECT).
type fleetBroker struct {
	kind    string
	nodes   []*mqtttest.Broker
	cluster *mqtttest.Cluster // nil on Mosquitto
	// colProxies[i] forwards the collector's connections to nodes[i].
	colProxies []*mqtttest.Proxy
	// consumers are the cluster's MQTT consumer options.
	consumers mqtttest.NATSMQTT
	// version is what the nats-server binary says of itself.
	version string
}

// natsConsumers reads WICKET_FLEET_NATS_CONSUMERS: "r1-memory" (the
// default: each subscription's consumer on one node, in memory), "r1"
// (one node, on file) or "r3" (nats-server's default: replicated on the
// three nodes, on file).
func natsConsumers(s string) (mqtttest.NATSMQTT, error) {
	switch s {
	case "", "r1-memory":
		return mqtttest.NATSMQTT{ConsumerReplicas: 1, ConsumerMemory: true}, nil
	case "r1":
		return mqtttest.NATSMQTT{ConsumerReplicas: 1}, nil
	case "r3":
		return mqtttest.NATSMQTT{}, nil
	}
	return mqtttest.NATSMQTT{}, fmt.Errorf("WICKET_FLEET_NATS_CONSUMERS=%q: want r1-memory, r1 or r3", s)
}

func startFleetBroker(t *testing.T, kind string) *fleetBroker {
	t.Helper()
	b := &fleetBroker{kind: kind}
	switch kind {
	case brokerMosquitto:
		b.nodes = []*mqtttest.Broker{mqtttest.StartMosquitto(t, mqtttest.Persistence(""))}
	case brokerNATS:
		o, err := natsConsumers(os.Getenv("WICKET_FLEET_NATS_CONSUMERS"))
		if err != nil {
			t.Fatal(err)
		}
		b.consumers = o
		out, err := exec.Command(mqtttest.NATSBin(t), "--version").Output()
		if err != nil {
			t.Fatalf("nats-server --version: %v", err)
		}
		b.version = strings.TrimSpace(string(out))
		b.cluster = mqtttest.StartNATSCluster(t, o)
		b.nodes = b.cluster.Nodes
	default:
		t.Fatalf("WICKET_FLEET_BROKER=%q: want %q or %q", kind, brokerMosquitto, brokerNATS)
	}
	for _, n := range b.nodes {
		b.colProxies = append(b.colProxies, mqtttest.StartProxy(t, n.Addr()))
	}
	return b
}

// describe names the broker for the report.
func (b *fleetBroker) describe() string {
	if b.cluster != nil {
		where := "on file"
		if b.consumers.ConsumerMemory {
			where = "in memory"
		}
		replicas := "replicated on the three nodes"
		if b.consumers.ConsumerReplicas == 1 {
			replicas = "on one node"
		}
		return fmt.Sprintf("a three-node NATS cluster (%s, JetStream, its MQTT listener on each node, sessions and retained messages replicated on the three nodes, each subscription's consumer %s %s; every gate listing all three and starting on node i mod 3)", b.version, replicas, where)
	}
	return "one Mosquitto (persistent)"
}

// group is the collector's shared-subscription group: NATS's MQTT
// listener has no shared subscriptions, so there the one collector
// subscribes plainly.
func (b *fleetBroker) group() string {
	if b.cluster != nil {
		return ""
	}
	return "collectors"
}

// cpu is the processor time the broker nodes have used so far.
func (b *fleetBroker) cpu() (d time.Duration) {
	for _, n := range b.nodes {
		d += n.CPU()
	}
	return d
}

// gateURLs are the nodes' own URLs, in node order: gates connect
// straight to the broker, as in a city, and count their bytes
// themselves (countingConn).
func (b *fleetBroker) gateURLs() []string {
	urls := make([]string, len(b.nodes))
	for i, n := range b.nodes {
		urls[i] = n.URL()
	}
	return urls
}

// direct are the nodes' own URLs, the last node first: the publisher
// stays off node 0, the one a node kill takes down.
func (b *fleetBroker) direct() []string { return lastFirst(b.nodes, (*mqtttest.Broker).URL) }

// collectorURLs are the collector's proxies in the order of direct.
func (b *fleetBroker) collectorURLs() []string {
	return lastFirst(b.colProxies, (*mqtttest.Proxy).URL)
}

// lastFirst is the URLs of xs, starting with the last.
func lastFirst[T any](xs []T, url func(T) string) []string {
	urls := make([]string, len(xs))
	for j := range urls {
		urls[j] = url(xs[(len(xs)-1+j)%len(xs)])
	}
	return urls
}

// cutCollector cuts the collector's connections, as its process dying
// would (no DISCONNECT).
func (b *fleetBroker) cutCollector() {
	for _, p := range b.colProxies {
		p.CutAll()
	}
}

// publish publishes msgs retained at QoS 1 until the broker acknowledges
// them all (a cluster refuses clients for a while after a node dies).
func (b *fleetBroker) publish(t *testing.T, msgs map[string][]byte) {
	t.Helper()
	mqtttest.PublishRetry(t, b.direct()[0], msgs, true)
}

// stopAll stops every node (SIGTERM: each saves its state).
func (b *fleetBroker) stopAll() {
	for _, n := range b.nodes {
		n.Stop()
	}
}

// startAll starts every node and, on the cluster, waits until each
// accepts persistent sessions again.
func (b *fleetBroker) startAll() {
	for _, n := range b.nodes {
		n.Start()
	}
	if b.cluster != nil {
		b.cluster.WaitReady()
	}
}

// poll calls cond every `every` until it holds, and fails the test
// naming what it waited for once limit has passed. For conditions that
// cost a query, where testkit.Eventually's 10 ms would load PostgreSQL.
func poll(t *testing.T, what string, limit, every time.Duration, cond func() bool) {
	t.Helper()
	if !within(limit, every, cond) {
		t.Fatalf("timed out after %v waiting for %s", limit, what)
	}
}

// within calls cond every `every` until it holds or limit has passed,
// and reports whether it held.
func within(limit, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// logSigns are the broker log lines worth counting when a scenario
// fails: what each says of the broker's state.
var logSigns = []string{
	"Unable to add JetStream consumer", // a subscription's consumer not created
	"error subscribing",                // a SUBACK failure code sent
	"NO quorum",                        // a stream or consumer stalled
	"temporarily unavailable",          // JetStream refused a request
	"Readloop processing time",         // a client's packets took long
	"already connected, closing old",   // Mosquitto: a session taken over by the same client id
	"timeout for request type",         // NATS: a JetStream store or lookup of the MQTT layer took over its timeout
	"unable to persist session",        // NATS: a session record not written
	"unable to store retained message", // NATS: a retained message (a status) not stored
	"in the process of connecting",     // NATS: a connect refused while another of its client id was under way
}

// diagnose counts logSigns in each node's log and adds its tail.
func (b *fleetBroker) diagnose() string {
	var out strings.Builder
	for i, n := range b.nodes {
		log := n.Log()
		fmt.Fprintf(&out, "node %d log:", i+1)
		for _, sign := range logSigns {
			fmt.Fprintf(&out, " %q %d;", sign, strings.Count(log, sign))
		}
		fmt.Fprintf(&out, " last lines:\n%s\n", tail(log, 1500))
	}
	return out.String()
}

// tail is the last n bytes of a broker log, for failure messages.
func tail(log string, n int) string {
	return log[max(len(log)-n, 0):]
}

// simCommand is the command line that runs this simulation again: the
// make variables and every other WICKET_FLEET_ variable set, and
// WICKET_NATS_SERVER if another nats-server ran.
func simCommand(kind string, gates int) string {
	skip := map[string]bool{"WICKET_FLEET_SIM": true, "WICKET_FLEET_REPORT": true, "WICKET_FLEET_BROKER": true,
		"WICKET_FLEET_GATES": true, "WICKET_FLEET_NATS_CONSUMERS": true, "WICKET_FLEET_TRUST_QOS": true}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(name, "WICKET_FLEET_") && !skip[name] && !strings.HasPrefix(name, "WICKET_FLEET_WORKER")) || name == "WICKET_NATS_SERVER" {
			env = append(env, kv)
		}
	}
	slices.Sort(env)
	cmd := fmt.Sprintf("make fleet-sim FLEET_BROKER=%s FLEET_GATES=%d", kind, gates)
	if kind == brokerNATS {
		cmd += " FLEET_NATS_CONSUMERS=" + cmp.Or(os.Getenv("WICKET_FLEET_NATS_CONSUMERS"), "r1-memory")
	}
	cmd += fmt.Sprintf(" FLEET_TRUST_QOS=%d", trustQoS())
	return strings.TrimSpace(strings.Join(env, " ") + " " + cmd)
}

// TestSimCommand: the report's command line carries the make variables
// and the other WICKET_FLEET_ variables set, not the internal ones.
func TestSimCommand(t *testing.T) {
	t.Setenv("WICKET_FLEET_RECORDS", "20")
	t.Setenv("WICKET_FLEET_TRUST_QOS", "0")
	t.Setenv("WICKET_FLEET_REPORT", "/tmp/r.md")
	t.Setenv("WICKET_FLEET_WORKER", "0:10")
	t.Setenv("WICKET_FLEET_NATS_CONSUMERS", "")
	got := simCommand(brokerNATS, 5000)
	want := "WICKET_FLEET_RECORDS=20 make fleet-sim FLEET_BROKER=nats FLEET_GATES=5000 FLEET_NATS_CONSUMERS=r1-memory FLEET_TRUST_QOS=0"
	if !strings.HasSuffix(got, want) || strings.Contains(got, "REPORT") || strings.Contains(got, "WORKER") {
		t.Errorf("simCommand = %q; want it to end in %q, without the internal variables", got, want)
	}
}
