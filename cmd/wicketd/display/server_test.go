package display

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestEventsInOrderToTwoClients(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	a, firstA := openStream(t, ts.URL)
	b, firstB := openStream(t, ts.URL)
	for _, f := range []Event{firstA, firstB} {
		if f.Type != TypeIdle || f.Verdict != VerdictIdle {
			t.Fatalf("first event = %+v; want the idle screen", f)
		}
	}
	// A full mailbox's worth can never be dropped, however slow the reader.
	for seq := uint64(1); seq <= mailboxSize; seq++ {
		s.Publish(decisionEvent(seq))
	}
	for name, st := range map[string]*stream{"a": a, "b": b} {
		for want := uint64(1); want <= mailboxSize; want++ {
			if ev := st.next(t); ev.Seq != want || ev.Type != TypeDecision {
				t.Fatalf("client %s: event seq %d type %q; want seq %d decision", name, ev.Seq, ev.Type, want)
			}
		}
	}
}

func TestEventsManyStayOrderedAndEndWithLatest(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	a, _ := openStream(t, ts.URL)
	b, _ := openStream(t, ts.URL)
	const n = 2000
	for seq := uint64(1); seq <= n; seq++ {
		s.Publish(decisionEvent(seq))
	}
	for name, st := range map[string]*stream{"a": a, "b": b} {
		var last uint64
		for last != n {
			ev := st.next(t)
			if ev.Seq <= last {
				t.Fatalf("client %s: seq %d after %d; want increasing", name, ev.Seq, last)
			}
			last = ev.Seq
		}
	}
}

func TestSlowClientDoesNotBlockPublish(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	// The slow client sends its request and then reads nothing.
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: %s\r\n\r\n", ts.Listener.Addr())
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "data: ") {
	}
	// The first event arrived: the slow client is registered, and from
	// now on reads nothing until every event is published.
	fast, _ := openStream(t, ts.URL)

	const n = 20000
	big := strings.Repeat("x", 2048) // fills the slow client's socket buffers
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(1); seq <= n; seq++ {
			ev := decisionEvent(seq)
			ev.Name = big
			s.Publish(ev)
		}
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Publish blocked behind a slow client")
	}
	var last uint64
	for last != n {
		ev := fast.next(t)
		if ev.Seq <= last {
			t.Fatalf("fast client: seq %d after %d", ev.Seq, last)
		}
		last = ev.Seq
	}

	// Now the slow client reads: it has lost events but gets the latest.
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	var got, count uint64
	for got != n && sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == TypeDecision && ev.Seq <= got {
			t.Fatalf("slow client: seq %d after %d", ev.Seq, got)
		}
		got = max(got, ev.Seq)
		count++
	}
	if got != n {
		t.Fatalf("slow client's last seq = %d (err %v); want %d", got, sc.Err(), n)
	}
	if count >= n {
		t.Errorf("slow client got %d events; want some dropped", count)
	}
}

// TestClientLimit: remote sources together hold at most MaxClients
// streams; the next remote source is refused, the gate's own screen (on
// loopback) is still served.
func TestClientLimit(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{MaxClients: 2})
	openStream(t, serveFrom(t, s.PageHandler(), "192.0.2.1").URL)
	openStream(t, serveFrom(t, s.PageHandler(), "192.0.2.2").URL)
	resp, err := http.Get(serveFrom(t, s.PageHandler(), "192.0.2.3").URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third remote GET /events = %d; want 503", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	openStream(t, ts.URL)
}

// waitClosed waits for the server to end st.
func waitClosed(t *testing.T, st *stream) {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case _, ok := <-st.events:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("stream not ended")
		}
	}
}

// TestIdleStreamsDoNotLockOutTheScreen: twenty idle /events connections
// from one source (remote, then loopback) neither hold more than
// MaxPerSource streams nor keep the gate's own screen from connecting and
// getting the next decision.
func TestIdleStreamsDoNotLockOutTheScreen(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	remote := serveFrom(t, s.PageHandler(), "198.51.100.7")
	var idle []*stream
	for range 20 {
		st, _ := openStream(t, remote.URL)
		idle = append(idle, st)
	}
	// Other remote sources fill what is left of MaxClients.
	for i := range DefaultMaxClients {
		resp, err := http.Get(serveFrom(t, s.PageHandler(), fmt.Sprintf("203.0.113.%d", i+1)).URL + "/events")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			break
		}
		defer resp.Body.Close()
	}
	for range 20 {
		st, _ := openStream(t, ts.URL)
		idle = append(idle, st)
	}
	screen, _ := openStream(t, ts.URL)
	s.Publish(decisionEvent(77))
	if ev := screen.next(t); ev.Seq != 77 {
		t.Fatalf("screen got %+v; want the decision 77", ev)
	}
	// Each source kept its newest DefaultMaxPerSource streams (the screen
	// is one of the loopback ones); the older ones were ended.
	for i, st := range idle {
		if i >= 20-DefaultMaxPerSource && i < 20 || i >= 40-(DefaultMaxPerSource-1) {
			if ev := st.next(t); ev.Seq != 77 {
				t.Errorf("kept stream %d got %+v; want the decision 77", i, ev)
			}
			continue
		}
		waitClosed(t, st)
	}
	s.mu.Lock()
	from := map[string]int{}
	for c := range s.clients {
		from[c.src.String()]++
	}
	s.mu.Unlock()
	if from["198.51.100.7"] != DefaultMaxPerSource || from["127.0.0.1"] != DefaultMaxPerSource {
		t.Errorf("streams by source %v; want %d from each of the two busy sources", from, DefaultMaxPerSource)
	}
}

// marker sets a distinct gate state and returns the state event, proving
// nothing else was sent before it. (The passenger page's events carry no
// reason, so the event is known by its type.)
func marker(t *testing.T, s *Server, st *stream, reason string) {
	t.Helper()
	s.SetState(State{Reason: reason})
	if ev := st.next(t); ev.Type != TypeState {
		t.Fatalf("got %+v; want the state event %q", ev, reason)
	}
}

func TestIdleAfterDecision(t *testing.T) {
	s, ts, fc := newTestServer(t, Config{IdleAfter: 5 * time.Second})
	st, _ := openStream(t, ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	s.Publish(decisionEvent(1))
	st.next(t)
	fc.Advance(3 * time.Second)
	s.Publish(decisionEvent(2)) // restarts the idle timer
	st.next(t)
	s.Publish(Event{Type: TypeState}) // leaves the timer alone
	if ev := st.next(t); ev.Type != TypeState {
		t.Fatalf("got %+v; want a state event", ev)
	}
	fc.Advance(4 * time.Second)
	marker(t, s, st, "m1")
	fc.Advance(time.Second)
	if ev := st.next(t); ev.Type != TypeIdle || ev.Verdict != VerdictIdle {
		t.Fatalf("got %+v; want idle", ev)
	}
	if ev := s.screen; ev.Type != TypeIdle {
		t.Fatalf("screen = %+v; want idle for new clients", ev)
	}

	// Heartbeat: one ticker per client is the clock's only waiter now.
	if err := fc.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fc.Advance(heartbeatEvery)
	select {
	case c := <-st.comments:
		if c != ": heartbeat" {
			t.Fatalf("comment %q; want heartbeat", c)
		}
	case <-time.After(waitFor):
		t.Fatal("no heartbeat")
	}
}

func TestAttendantHoldInKiosk(t *testing.T) {
	s, ts, fc := newTestServer(t, Config{IdleAfter: 5 * time.Second, AttendantHold: 30 * time.Second, Kiosk: true})
	st, _ := openStream(t, ts.URL)
	ev := decisionEvent(9)
	ev.Verdict, ev.Attendant = VerdictAttendant, true
	s.Publish(ev)
	st.next(t)
	fc.Advance(10 * time.Second)
	marker(t, s, st, "still prompting")
	fc.Advance(20 * time.Second)
	if ev := st.next(t); ev.Type != TypeIdle {
		t.Fatalf("got %+v; want idle after the attendant hold", ev)
	}
}

func TestStateEvents(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	st, first := openStream(t, ts.URL)
	if first.State.Ready || first.State.Reason != "" {
		t.Fatalf("first state = %+v; want not ready, without the reason", first.State)
	}
	want := State{Ready: true, Offline: true, Stale: true, Emergency: true, ClockUntrusted: true}
	s.SetState(want)
	ev := st.next(t)
	if ev.Type != TypeState || ev.State != want {
		t.Fatalf("got %+v; want state event %+v", ev, want)
	}
	s.SetState(want) // unchanged: no event
	s.Publish(decisionEvent(3))
	ev = st.next(t)
	if ev.Type != TypeDecision || ev.State != want {
		t.Fatalf("got %+v; want the decision carrying %+v", ev, want)
	}
	// A page connecting now sees the decision with the banners.
	_, first = openStream(t, ts.URL)
	if first.Seq != 3 || first.State != want {
		t.Fatalf("new client's first event = %+v; want seq 3 with %+v", first, want)
	}
}

func TestHealthz(t *testing.T) {
	s, page, _ := newTestServer(t, Config{})
	ts := serve(t, s.MetricsHandler())
	// The passenger page's address serves neither health nor metrics.
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(page.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the page address = %d; want 404", path, resp.StatusCode)
		}
	}
	tests := []struct {
		state    *State
		code     int
		wantBody string
	}{
		{nil, 503, `{"ready":false,"reason":"starting"}`},
		{&State{Ready: true, Offline: true}, 200, `{"ready":true}`},
		{&State{Reason: "no key set installed"}, 503, `{"ready":false,"reason":"no key set installed"}`},
		{&State{}, 503, `{"ready":false,"reason":"not ready"}`},
	}
	for _, tt := range tests {
		if tt.state != nil {
			s.SetState(*tt.state)
		}
		resp, err := http.Get(ts.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || strings.TrimSpace(string(body)) != tt.wantBody {
			t.Errorf("healthz with %+v = %d %s; want %d %s", tt.state, resp.StatusCode, body, tt.code, tt.wantBody)
		}
	}
}

func TestAttendantEndpoint(t *testing.T) {
	type call struct {
		seq     uint64
		confirm bool
	}
	s, _, _ := newTestServer(t, Config{Kiosk: true})
	ts := serve(t, s.AdminHandler())
	var calls []call
	s.OnAttendant = func(seq uint64, confirm bool) error {
		calls = append(calls, call{seq, confirm})
		if seq == 13 {
			return fmt.Errorf("scan %d is no longer waiting", seq)
		}
		return nil
	}
	tests := []struct {
		name, ctype, body string
		headers           map[string]string
		code              int
		call              *call
	}{
		{"confirm", "application/json", `{"seq":7,"action":"confirm"}`, nil, 200, &call{7, true}},
		{"reject same origin", "application/json; charset=utf-8", `{"seq":8,"action":"reject"}`,
			map[string]string{"Origin": ts.URL, "Sec-Fetch-Site": "same-origin"}, 200, &call{8, false}},
		{"hook refuses", "application/json", `{"seq":13,"action":"confirm"}`, nil, 409, &call{13, true}},
		{"bad json", "application/json", `{"seq":`, nil, 400, nil},
		{"unknown field", "application/json", `{"seq":1,"action":"confirm","id":"x"}`, nil, 400, nil},
		{"bad action", "application/json", `{"seq":1,"action":"maybe"}`, nil, 400, nil},
		{"zero seq", "application/json", `{"seq":0,"action":"confirm"}`, nil, 400, nil},
		{"negative seq", "application/json", `{"seq":-1,"action":"confirm"}`, nil, 400, nil},
		{"two objects", "application/json", `{"seq":1,"action":"confirm"}{}`, nil, 400, nil},
		{"too large", "application/json", `{"seq":1,"action":"` + strings.Repeat("a", 2000) + `"}`, nil, 400, nil},
		{"form post", "application/x-www-form-urlencoded", `seq=1&action=confirm`, nil, 415, nil},
		{"text plain", "text/plain", `{"seq":1,"action":"confirm"}`, nil, 415, nil},
		{"no content type", "", `{"seq":1,"action":"confirm"}`, nil, 415, nil},
		{"cross-site origin", "application/json", `{"seq":1,"action":"confirm"}`,
			map[string]string{"Origin": "http://evil.example"}, 403, nil},
		{"null origin", "application/json", `{"seq":1,"action":"confirm"}`,
			map[string]string{"Origin": "null"}, 403, nil},
		{"cross-site fetch", "application/json", `{"seq":1,"action":"confirm"}`,
			map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, nil},
		{"same-site fetch", "application/json", `{"seq":1,"action":"confirm"}`,
			map[string]string{"Sec-Fetch-Site": "same-site"}, 403, nil},
	}
	for _, tt := range tests {
		calls = nil
		header := map[string]string{"Content-Type": tt.ctype}
		for k, v := range tt.headers {
			header[k] = v
		}
		if tt.ctype == "" {
			delete(header, "Content-Type")
		}
		resp := request(t, http.MethodPost, withToken(ts.URL)+"/attendant", tt.body, header)
		if resp.StatusCode != tt.code {
			t.Errorf("%s: POST /attendant = %d; want %d", tt.name, resp.StatusCode, tt.code)
		}
		switch {
		case tt.call == nil && len(calls) != 0:
			t.Errorf("%s: hook called with %v; want no call", tt.name, calls)
		case tt.call != nil && (len(calls) != 1 || calls[0] != *tt.call):
			t.Errorf("%s: hook calls %v; want [%v]", tt.name, calls, *tt.call)
		}
	}

	resp, err := http.Get(withToken(ts.URL) + "/attendant")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /attendant = %d; want 405", resp.StatusCode)
	}
}

func TestAttendantOffWithoutKiosk(t *testing.T) {
	s, _, _ := newTestServer(t, Config{})
	s.OnAttendant = func(uint64, bool) error {
		t.Error("hook called outside kiosk mode")
		return nil
	}
	resp, err := http.Post(withToken(serve(t, s.AdminHandler()).URL)+"/attendant", "application/json", strings.NewReader(`{"seq":1,"action":"confirm"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /attendant without kiosk = %d; want 404", resp.StatusCode)
	}
}

func TestAttendantUnwired(t *testing.T) {
	s, _, _ := newTestServer(t, Config{Kiosk: true})
	resp, err := http.Post(withToken(serve(t, s.AdminHandler()).URL)+"/attendant", "application/json", strings.NewReader(`{"seq":1,"action":"confirm"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST /attendant with no hook = %d; want 503", resp.StatusCode)
	}
}

func TestServeShutsDownWithOpenStream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := newTestServer(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, Listeners{Page: ln}) }()
	st, _ := openStream(t, "http://"+ln.Addr().String())
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve = %v; want nil", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Serve did not return with a stream open")
	}
	for range st.events {
	}
}

// TestPassengerNeverSeesReason: at a gate that is not ready, the passenger
// page says the gate is closed from its first paint, and neither its HTML
// (the initial state in it) nor its event stream carries the technician's
// reason; the admin page and its stream do.
func TestPassengerNeverSeesReason(t *testing.T) {
	const reason, later = "store cannot commit: disk full", "relay fault"
	s, ts, _ := newTestServer(t, Config{})
	adm := serve(t, s.AdminHandler())
	s.SetState(State{Reason: reason})

	page := getPage(t, ts.URL)
	if strings.Contains(page, reason) || strings.Contains(page, `"reason":"`) {
		t.Errorf("passenger page carries the technician's reason:\n%s", initialJSON(page))
	}
	if !strings.Contains(page, `<div id="idle-en">This gate is closed. Please use another gate</div>`) || strings.Contains(page, "Please scan your code</div>") {
		t.Errorf("passenger page of a closed gate does not say it is closed before its script runs")
	}
	if !strings.Contains(page, `<div id="banner-notready" class="banner">`) {
		t.Errorf("passenger page of a closed gate hides the out-of-service banner")
	}
	if !strings.Contains(initialJSON(page), `"ready":false`) {
		t.Errorf("passenger page initial state = %s; want ready false", initialJSON(page))
	}
	st, first := openStream(t, ts.URL)
	if first.State.Ready || first.State.Reason != "" {
		t.Errorf("passenger stream first state = %+v; want not ready, no reason", first.State)
	}
	if admin := getPage(t, withToken(adm.URL)); !strings.Contains(initialJSON(admin), reason) {
		t.Errorf("admin page initial state = %s; want the reason %q", initialJSON(admin), reason)
	}
	ast, afirst := openStream(t, withToken(adm.URL))
	if afirst.State.Reason != reason {
		t.Errorf("admin stream first state = %+v; want the reason %q", afirst.State, reason)
	}

	s.SetState(State{Reason: later})
	if ev := st.next(t); ev.Type != TypeState || ev.State.Ready || ev.State.Reason != "" {
		t.Errorf("passenger stream state event = %+v; want not ready, no reason", ev)
	}
	if ev := ast.next(t); ev.State.Reason != later {
		t.Errorf("admin stream state event = %+v; want the reason %q", ev, later)
	}

	s.SetState(State{Ready: true})
	page = getPage(t, ts.URL)
	if !strings.Contains(page, `<div id="idle-en">Please scan your code</div>`) || !strings.Contains(page, `<div id="banner-notready" class="banner" hidden>`) {
		t.Errorf("passenger page of a ready gate does not ask for a code")
	}
}

// initialJSON is the initial screen the server put in a page.
func initialJSON(page string) string {
	_, rest, _ := strings.Cut(page, `<script id="initial" type="application/json">`)
	js, _, _ := strings.Cut(rest, "</script>")
	return js
}
