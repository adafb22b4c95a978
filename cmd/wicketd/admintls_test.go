package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/internal/testkit"
)

// testCert is a certificate and its key, signed by parent (self-signed
// without one).
type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newTestCert(t *testing.T, cn string, parent *testCert, server bool) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	switch {
	case parent == nil:
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	case server:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert, key, der}
}

// write writes the certificate and its key as PEM files base.pem and
// base.key in dir.
func (c *testCert) write(t *testing.T, dir, base string) {
	t.Helper()
	kb, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, base+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, base+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (c *testCert) tls() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.der}, PrivateKey: c.key}
}

// TestAdminOverHTTPS: with cert_file, key_file and client_ca_file the
// admin API speaks HTTPS; wicketd ack-emergency trusts exactly the
// configured certificate and sends the token; a client certificate from
// the CA is a credential, one from another CA is not.
func TestAdminOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	ca := newTestCert(t, "station CA", nil, false)
	newTestCert(t, "gate", ca, true).write(t, dir, "server")
	ca.write(t, dir, "ca")
	surfaces, _, _, adminAddr := writeAdminToken(t, dir)
	surfaces = strings.Replace(surfaces, "token_file: admin.token}", "token_file: admin.token, cert_file: server.pem, key_file: server.key, client_ca_file: ca.pem}", 1)
	appendConfig(t, cfgPath, surfaces)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cfgPath: cfgPath, cfg: cfg, log: slog.New(slog.DiscardHandler)}
	s, err := d.newDisplay()
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan string, 8)
	s.OnAcknowledge = func(by string) (bool, error) { acks <- by; return true, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last ack-emergency over HTTPS: %s", last)
		}
	}()
	testkit.Eventually(t, "ack-emergency over HTTPS to succeed", 10*time.Second, func() bool {
		rc, out := ackEmergency(cfgPath)
		last = fmt.Sprintf("%d %q", rc, out)
		return rc == exitOK
	})
	if by := <-acks; by != "admin API token from 127.0.0.1" {
		t.Errorf("acknowledged by %q; want the token", by)
	}

	// A client certificate from the CA, without the token.
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	clientPost := func(cert *testCert) (int, error) {
		tc := &tls.Config{RootCAs: pool}
		if cert != nil {
			// Offer the certificate whatever CAs the server names.
			tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				c := cert.tls()
				return &c, nil
			}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
		resp, err := c.Post("https://"+adminAddr+"/emergency/ack", "application/json", strings.NewReader("{}"))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	attendant := newTestCert(t, "Zhang Wei", ca, false)
	sum := sha256.Sum256(attendant.der)
	if code, err := clientPost(attendant); err != nil || code != http.StatusOK {
		t.Errorf("POST with a client certificate from the CA = %d, %v; want 200", code, err)
	} else if by := <-acks; by != "admin API client certificate sha256:"+hex.EncodeToString(sum[:8])+" from 127.0.0.1" {
		t.Errorf("acknowledged by %q; want the certificate's fingerprint, never its subject", by)
	}
	if code, err := clientPost(nil); err != nil || code != http.StatusUnauthorized {
		t.Errorf("POST over HTTPS without any credential = %d, %v; want 401", code, err)
	}
	other := newTestCert(t, "other CA", nil, false)
	if code, err := clientPost(newTestCert(t, "intruder", other, false)); err == nil {
		t.Errorf("POST with a certificate from another CA = %d; want the handshake refused", code)
	}

	// A tool whose config names another certificate refuses the server.
	newTestCert(t, "gate", ca, true).write(t, dir, "server")
	if rc, out := ackEmergency(cfgPath); rc == exitOK || !strings.Contains(out, "not http.admin.cert_file") {
		t.Errorf("ack-emergency against another certificate = %d %q; want refused", rc, out)
	}
	select {
	case by := <-acks:
		t.Errorf("acknowledged by %q through a refused connection", by)
	default:
	}
}

// TestCheckConfigAdminToken: check-config refuses what run would: a token
// file others can read, a short token, a certificate file that is not one.
func TestCheckConfigAdminToken(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	surfaces, _, _, _ := writeAdminToken(t, dir)
	appendConfig(t, cfgPath, surfaces)
	token := filepath.Join(dir, "admin.token")
	check := func() (int, string) {
		var out, errb bytes.Buffer
		rc := dispatch(context.Background(), []string{"check-config", cfgPath}, strings.NewReader(""), &out, &errb)
		return rc, errb.String()
	}
	if rc, out := check(); rc != exitOK {
		t.Fatalf("check-config with a good token = %d %s", rc, out)
	}
	for _, tc := range []struct {
		name    string
		setup   func()
		wantErr string
	}{
		{"token readable by others", func() { os.Chmod(token, 0o644) }, "chmod 0600"},
		{"short token", func() { os.Chmod(token, 0o600); os.WriteFile(token, []byte("secret\n"), 0o600) }, "fewer than 32"},
		{"junk certificate", func() {
			os.WriteFile(token, []byte(adminToken), 0o600)
			os.WriteFile(filepath.Join(dir, "server.pem"), []byte("junk"), 0o644)
			os.WriteFile(filepath.Join(dir, "server.key"), []byte("junk"), 0o600)
			b, _ := os.ReadFile(cfgPath)
			os.WriteFile(cfgPath, []byte(strings.Replace(string(b), "token_file: admin.token}", "token_file: admin.token, cert_file: server.pem, key_file: server.key}", 1)), 0o644)
		}, "http.admin.cert_file/key_file"},
	} {
		tc.setup()
		if rc, out := check(); rc != exitUsage || !strings.Contains(out, tc.wantErr) {
			t.Errorf("check-config with %s = %d %q; want exit 2 naming %q", tc.name, rc, out, tc.wantErr)
		}
	}
}

// TestReloadNamesHTTPForRestart: the HTTP surfaces and the admin token
// are read at start; a reload that changes them says a restart is needed.
func TestReloadNamesHTTPForRestart(t *testing.T) {
	a, b := config.Default(), config.Default()
	b.HTTP.Admin.TokenFile = "admin.token"
	b.Display.MaxClients = 8
	got := restartOnly(&a, &b)
	if strings.Join(got, ",") != "display,http" {
		t.Errorf("restartOnly = %v; want [display http]", got)
	}
}
