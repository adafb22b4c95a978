package display

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestClockResetEndpoint: POST /clock-reset hands the order to the hook
// only with the admin credential and a well-formed body, and answers 200
// when the gate acted on it, 409 when it refused it.
func TestClockResetEndpoint(t *testing.T) {
	s, _, _ := newTestServer(t, Config{})
	base := serve(t, s.AdminHandler()).URL
	post := func(url, body string) (int, ClockResetAnswer) {
		t.Helper()
		resp, err := http.Post(url+"/clock-reset", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans ClockResetAnswer
		json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, ans
	}
	order := []byte{0xd2, 0x84, 1, 2, 3}
	body, _ := json.Marshal(ClockResetRequest{Order: order})
	if code, _ := post(withToken(base), string(body)); code != http.StatusServiceUnavailable {
		t.Errorf("reset with no hook = %d; want 503", code)
	}
	var got [][]byte
	var by []string
	refuse := false
	s.OnClockReset = func(o []byte, who string) ClockResetAnswer {
		got, by = append(got, o), append(by, who)
		if refuse {
			return ClockResetAnswer{Result: "refused", Error: "order expired"}
		}
		return ClockResetAnswer{OK: true, Result: "applied", Serial: 7}
	}
	if code, _ := post(base, string(body)); code != http.StatusUnauthorized || len(got) != 0 {
		t.Errorf("reset without a credential = %d, hook called %d times; want 401, never", code, len(got))
	}
	for _, bad := range []string{`{}`, `{"order": "not base64!"}`, `{"order": "AQ==", "force": true}`} {
		if code, _ := post(withToken(base), bad); code != http.StatusBadRequest {
			t.Errorf("reset with body %s = %d; want 400", bad, code)
		}
	}
	if code, ans := post(withToken(base), string(body)); code != http.StatusOK || !ans.OK || ans.Serial != 7 {
		t.Errorf("reset = %d %+v; want 200, applied serial 7", code, ans)
	}
	refuse = true
	if code, ans := post(withToken(base), string(body)); code != http.StatusConflict || ans.OK || ans.Error != "order expired" {
		t.Errorf("refused reset = %d %+v; want 409 saying why", code, ans)
	}
	if len(got) != 2 || !bytes.Equal(got[0], order) || by[0] != "admin API token from 127.0.0.1" {
		t.Errorf("hook got %x from %q; want the order twice, from the token", got, by)
	}
}
