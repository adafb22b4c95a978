package mqttsync

import (
	"testing"
	"time"

	"wicket/internal/testkit"
	"wicket/sync/mqttconn"
	"wicket/sync/mqtttest"
	"wicket/sync/trust"
	"wicket/sync/wire"
	"wicket/verifier/verifiertest"
)

// TestTLSClientCertificate: a broker that requires client certificates
// takes a gate with one and refuses a gate without one.
func TestTLSClientCertificate(t *testing.T) {
	pki := mqtttest.NewPKI(t)
	b := mqtttest.StartMosquitto(t, mqtttest.TLS(pki.Broker))
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	cert, key := pki.Issue("gate-T1", false)

	run := func(id string, conn mqttconn.Conn) (*Sync, *trust.Applier) {
		g := startGateConn(t, f, conn, id, 30*time.Second)
		return g.sync, g.tr
	}

	// The key set is published over TLS too, with a certificate.
	pubCert, pubKey := pki.Issue("publisher", false)
	pubOpts, err := mqttconn.Conn{Broker: b.URL(), ClientID: "publisher", CAFile: pki.CAFile(), CertFile: pubCert, KeyFile: pubKey}.Options()
	if err != nil {
		t.Fatal(err)
	}
	pubOpts.SetCleanSession(true)
	publishRetainedWith(t, pubOpts, map[string][]byte{topics.KeySet(): f.KeySetDoc})

	withCert, tr := run("T1", mqttconn.Conn{Broker: b.URL(), ClientID: "wicket-test-T1", CAFile: pki.CAFile(), CertFile: cert, KeyFile: key})
	testkit.Eventually(t, "the gate with a certificate connected and got the key set", 15*time.Second, func() bool {
		return withCert.State().Connected && tr.Stats().Applied == 1
	})
	without, _ := run("T2", mqttconn.Conn{Broker: b.URL(), ClientID: "wicket-test-T2", CAFile: pki.CAFile()})
	wrongCA, _ := run("T3", mqttconn.Conn{Broker: b.URL(), ClientID: "wicket-test-T3", CertFile: cert, KeyFile: key})
	testkit.Eventually(t, "three refused attempts each", 15*time.Second, func() bool {
		return without.State().Attempts >= 3 && wrongCA.State().Attempts >= 3
	})
	if !without.State().LastConnect.IsZero() || !wrongCA.State().LastConnect.IsZero() {
		t.Fatalf("a gate without a client certificate, or not trusting the broker's CA, connected: %+v %+v", without.State(), wrongCA.State())
	}
}
