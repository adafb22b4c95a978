// Package snapfiletest runs what snapshot-file tests need around a gate:
// Debian's nginx serving a directory on a loopback port of its own, and
// a TCP proxy that cuts a download after a number of bytes and counts
// what it forwarded. Both stop when the test ends.
package snapfiletest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nginxBin is where Debian installs nginx.
const nginxBin = "/usr/sbin/nginx"

// startTimeout bounds how long nginx may take to accept connections.
const startTimeout = 10 * time.Second

// Nginx is a running nginx serving one directory.
type Nginx struct {
	dir  string // its prefix: config, logs, temp files
	addr string
}

// StartNginx serves root over HTTP on a free loopback port (Range
// requests included, as nginx always does for static files). It skips
// the test when nginx is not installed.
func StartNginx(t testing.TB, root string) *Nginx {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx not installed (%s): apt-get install nginx", nginxBin)
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log;
events { worker_connections 64; }
http {
	access_log %[2]s/access.log;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	default_type application/octet-stream;
	server {
		listen %[3]s;
		root %[4]s;
	}
}
`, user, dir, addr, root)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("nginx exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s within %v: %s", addr, startTimeout, out.String())
		}
		<-tick.C
	}
	return &Nginx{dir: dir, addr: addr}
}

// URL is the base URL of the served directory.
func (n *Nginx) URL() string { return "http://" + n.addr + "/" }

// Addr is nginx's host:port.
func (n *Nginx) Addr() string { return n.addr }

// AccessLog returns nginx's access log so far.
func (n *Nginx) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "access.log"))
	return string(b)
}

// Proxy forwards loopback TCP connections to a target and counts the
// bytes it forwards from the target; CutAfter cuts the next connection
// that carries that many bytes from the target.
type Proxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	down  int64 // target → client bytes forwarded
	conns int
	cut   int64 // > 0: cut the connection carrying this many more bytes
	cuts  int
}

// StartProxy starts a proxy to target (host:port).
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: target, ln: ln}
	go p.accept()
	t.Cleanup(func() { ln.Close() })
	return p
}

// URL is the proxy's base URL for HTTP.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() + "/" }

// CutAfter arms a one-shot cut: the connection that carries the n-th
// byte from the target from now on is closed right after it.
func (p *Proxy) CutAfter(n int64) {
	p.mu.Lock()
	p.cut = n
	p.mu.Unlock()
}

// Stats returns the bytes forwarded from the target, the connections
// accepted and the cuts made.
func (p *Proxy) Stats() (down int64, conns, cuts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down, p.conns, p.cuts
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns++
		p.mu.Unlock()
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	go func() { io.Copy(u, c); u.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			p.mu.Lock()
			cutHere := false
			if p.cut > 0 && int64(n) >= p.cut {
				n, cutHere = int(p.cut), true
				p.cut, p.cuts = 0, p.cuts+1
			} else if p.cut > 0 {
				p.cut -= int64(n)
			}
			p.down += int64(n)
			p.mu.Unlock()
			if _, werr := c.Write(buf[:n]); werr != nil || cutHere {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
