package display

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// waitFor bounds how long a test waits on a channel before failing.
const waitFor = 10 * time.Second

func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server, *clockwork.FakeClock) {
	t.Helper()
	fc := clockwork.NewFakeClockAt(time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC))
	cfg.Clock = fc
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := New(cfg, log)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts, fc
}

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
