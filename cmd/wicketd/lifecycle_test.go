package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/internal/testkit"
)

// TestLifecycle runs wicketd as systemd would: it must say READY=1 on
// NOTIFY_SOCKET once it can scan, apply a policy change on SIGHUP without
// a restart, and on SIGTERM say STOPPING=1, lock the relay and exit 0.
func TestLifecycle(t *testing.T) {
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	notes := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:n])
		}
	}()
	waitNote := func(want string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case n, ok := <-notes:
				if !ok {
					t.Fatalf("notify socket closed waiting for %q", want)
				}
				if strings.Contains(n, want) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q from wicketd", want)
			}
		}
	}

	cmd := selfExec("run", "-config", cfgPath)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr testkit.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	display := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			display <- sc.Text()
		}
		close(display)
	}()
	nextDisplay := func() string {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-display:
				if !ok {
					t.Fatal("wicketd closed its output")
				}
				if strings.HasPrefix(l, "display:") {
					return l
				}
			case <-timeout:
				t.Fatal("no decision on the display")
			}
		}
	}

	waitNote("READY=1")
	code := func(i byte) string {
		c := f.Claims(decoder.KindPrinted)
		c.ID = []byte{'l', 'i', 'f', 'e', 'c', 'y', 'c', i}
		return f.Issue(t, f.Ed, c) + "\n"
	}
	io.WriteString(stdin, code(1))
	if l := nextDisplay(); !strings.Contains(l, "[ok;") {
		t.Fatalf("before reload: %s; want allowed", l)
	}

	cfg, _ := os.ReadFile(cfgPath)
	changed := strings.Replace(string(cfg), "policy: {max_status_age: 0s}", "policy: {max_status_age: 0s, kinds: {printed: {accept: false}}}", 1)
	if err := os.WriteFile(cfgPath, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitNote("RELOADING=1")
	waitNote("READY=1")
	io.WriteString(stdin, code(2))
	if l := nextDisplay(); !strings.Contains(l, "[kind_not_accepted;") {
		t.Fatalf("after reload: %s; want kind_not_accepted", l)
	}

	if err := os.WriteFile(cfgPath, []byte(changed+"bogus_key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitNote("READY=1")
	io.WriteString(stdin, code(3))
	if l := nextDisplay(); !strings.Contains(l, "[kind_not_accepted;") {
		t.Fatalf("after a refused reload: %s; want the previous policy in force", l)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	waitNote("STOPPING=1")
	var rest strings.Builder
	for l := range display {
		rest.WriteString(l + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wicketd after SIGTERM: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(rest.String(), "turnstile: closed: relay OFF (lock)") {
		t.Errorf("after SIGTERM the turnstile did not report locking:\n%s", rest.String())
	}
}

// TestStatusWhileRunning: wicketd status against a running gate explains
// that the store is held instead of failing with a bare timeout.
func TestStatusWhileRunning(t *testing.T) {
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	cmd := selfExec("run", "-config", cfgPath)
	stdin, _ := cmd.StdinPipe() // a scanner that stays silent
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); stdin.Close(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "start: relay OFF") {
	}
	var out, errb strings.Builder
	rc := dispatch(context.Background(), []string{"status", "-config", cfgPath}, nil, &out, &errb)
	if rc != exitDenied || !strings.Contains(errb.String(), "a running wicketd holds") {
		t.Fatalf("status while running: exit %d, %q", rc, errb.String())
	}
}
