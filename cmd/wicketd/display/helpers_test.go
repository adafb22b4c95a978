package display

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// waitFor bounds how long a test waits on a channel before failing.
const waitFor = 10 * time.Second

// testToken is the admin token of test servers.
const testToken = "0123456789abcdef0123456789abcdef"

// newTestServer returns a Server with testToken as its admin token unless
// cfg has one, and a test server of its passenger page.
func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server, *clockwork.FakeClock) {
	t.Helper()
	fc := clockwork.NewFakeClockAt(time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC))
	cfg.Clock = fc
	if cfg.AdminToken == nil {
		cfg.AdminToken = []byte(testToken)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(cfg, log)
	ts := serve(t, s.PageHandler())
	t.Cleanup(s.Close)
	return s, ts, fc
}

// serve runs h on a loopback test server until the test ends.
func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// withToken is base with the test token as basic-auth credentials, which
// Go's client sends.
func withToken(base string) string {
	u, _ := url.Parse(base)
	u.User = url.UserPassword("attendant", testToken)
	return u.String()
}

// serveFrom runs h on a loopback test server whose connections appear to
// come from src, as a remote page's would.
func serveFrom(t testing.TB, h http.Handler, src string) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.Listener = fromListener{ts.Listener, &net.TCPAddr{IP: net.ParseIP(src), Port: 40000}}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// fromListener reports src as the remote address of what it accepts.
type fromListener struct {
	net.Listener
	src net.Addr
}

func (l fromListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return fromConn{c, l.src}, nil
}

type fromConn struct {
	net.Conn
	src net.Addr
}

func (c fromConn) RemoteAddr() net.Addr { return c.src }

// stream is one connected /events client.
type stream struct {
	events   chan Event
	comments chan string
	bad      chan string
	cancel   context.CancelFunc
}

// openStream connects to /events and returns once the first event (the
// current screen) has arrived, so the client is registered.
func openStream(t testing.TB, base string) (*stream, Event) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /events: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("GET /events = %d; want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q; want text/event-stream", ct)
	}
	st := &stream{events: make(chan Event, 1<<16), comments: make(chan string, 64), bad: make(chan string, 1), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		readSSE(resp.Body, st)
	}()
	t.Cleanup(cancel)
	return st, st.next(t)
}

// readSSE parses the stream; an event counts only once its blank line
// arrives, so a stream cut mid-event yields nothing for that event.
func readSSE(r io.Reader, st *stream) {
	defer close(st.events)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" && data != "":
			var ev Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				st.bad <- data
				return
			}
			data = ""
			st.events <- ev
		case strings.HasPrefix(line, "data: "):
			data += line[len("data: "):]
		case strings.HasPrefix(line, ":"):
			select {
			case st.comments <- line:
			default:
			}
		}
	}
}

func (st *stream) next(t testing.TB) Event {
	t.Helper()
	select {
	case ev, ok := <-st.events:
		if !ok {
			select {
			case data := <-st.bad:
				t.Fatalf("event is not JSON: %s", data)
			default:
			}
			t.Fatal("event stream closed")
		}
		return ev
	case <-time.After(waitFor):
		t.Fatal("no event within the wait limit")
	}
	return Event{}
}

func decisionEvent(seq uint64) Event {
	return Event{Type: TypeDecision, Verdict: VerdictAllow, Reason: "ok", Colour: "green", Seq: seq}
}

// request sends a request with the headers ("Host" sets the request's
// host) and returns the response, its body read and closed.
func request(t testing.TB, method, url, body string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
