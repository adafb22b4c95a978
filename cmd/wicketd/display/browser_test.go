package display_test

import (
	"bytes"
	"fmt"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"wicket/cmd/wicketd/display"
	"wicket/decoder"
	"wicket/verifier"
)

// chromiumArgs run headless Chromium quietly on a machine without network.
var chromiumArgs = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"}

// browseWaits are how long Chromium lets the page run its script before it
// dumps the DOM and takes the screenshot, one try after another: a loaded
// machine can take longer than the first to render a published decision.
var browseWaits = []int{2500, 8000, 20000}

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (Debian package chromium): the browser test needs it")
	return ""
}

// browse runs Chromium on url at a window size and returns the
// screenshot file and the DOM after the page's scripts ran.
func browse(t *testing.T, bin, url string, w, h int, ready func(dom string) bool) (string, string) {
	t.Helper()
	shot := filepath.Join(t.TempDir(), "shot.png")
	var dom []byte
	for _, wait := range browseWaits {
		args := append(append([]string{}, chromiumArgs...), "--user-data-dir="+t.TempDir(),
			fmt.Sprintf("--window-size=%d,%d", w, h), fmt.Sprintf("--timeout=%d", wait))
		var err error
		if dom, err = exec.Command(bin, append(args, "--dump-dom", url)...).Output(); err != nil {
			t.Fatalf("chromium dump-dom: %v", err)
		}
		if ready != nil && !ready(string(dom)) {
			continue
		}
		if out, err := exec.Command(bin, append(args, "--screenshot="+shot, url)...).CombinedOutput(); err != nil {
			t.Fatalf("chromium screenshot: %v\n%s", err, out)
		}
		break
	}
	return shot, string(dom)
}

func decision(allow bool, r verifier.Reason, c decoder.Colour, class decoder.Class) verifier.Decision {
	return verifier.Decision{
		Allow: allow, Reason: r, Colour: c, Message: r.Message(), At: time.Now(),
		Alert: c == decoder.ColourRed, Attendant: r == verifier.ReasonAttendantRequired,
		Voucher: &verifier.VoucherInfo{Name: "张*明", Class: class, Kind: decoder.KindPrinted, Colour: c},
	}
}

// TestPageInBrowser opens the page in headless Chromium while decisions
// are published, at a gate display's 800×480 and a kiosk's 1920×1080, and
// checks the colour of the main field and the message on it. With
// WICKET_SCREENSHOTS set to a directory it keeps the screenshots there
// (docs/img holds the ones the README shows).
func TestPageInBrowser(t *testing.T) {
	bin := chromium(t)
	fever := decision(false, verifier.ReasonFever, decoder.ColourGreen, decoder.ClassAdult)
	fever.Alert, fever.Attendant = true, true
	cases := []struct {
		name  string
		d     verifier.Decision
		rgb   [3]uint8
		sizes [][2]int
		temp  string
		shows []string
	}{
		{"allow", decision(true, verifier.ReasonOK, decoder.ColourGreen, decoder.ClassAdult), [3]uint8{0x1a, 0x9e, 0x4b}, [][2]int{{800, 480}, {1920, 1080}}, "", nil},
		{"deny-yellow", decision(false, verifier.ReasonColourYellow, decoder.ColourYellow, decoder.ClassChild), [3]uint8{0xf2, 0xc2, 0x00}, [][2]int{{800, 480}}, "", nil},
		{"deny-red-alert", decision(false, verifier.ReasonColourRed, decoder.ColourRed, decoder.ClassAdult), [3]uint8{0xd7, 0x26, 0x3d}, [][2]int{{800, 480}}, "", nil},
		{"attendant", decision(false, verifier.ReasonAttendantRequired, decoder.ColourGreen, decoder.ClassElderly), [3]uint8{0x1d, 0x4e, 0xd8}, [][2]int{{800, 480}, {1920, 1080}}, "", []string{"核对照片"}},
		{"deny-revoked", decision(false, verifier.ReasonRevoked, decoder.ColourGreen, decoder.ClassAdult), [3]uint8{0x7c, 0x2d, 0x12}, [][2]int{{800, 480}}, "", []string{"请联系发证单位", "contact its issuer"}},
		{"fever", fever, [3]uint8{0xd7, 0x26, 0x3d}, [][2]int{{800, 480}, {1920, 1080}}, "fever", []string{"体温异常 / High temperature", "复测体温", "放行 Confirm"}},
	}
	keep := os.Getenv("WICKET_SCREENSHOTS")
	for _, tc := range cases {
		for _, size := range tc.sizes {
			name := fmt.Sprintf("%s-%dx%d", tc.name, size[0], size[1])
			t.Run(name, func(t *testing.T) {
				const token = "0123456789abcdef0123456789abcdef"
				s := display.New(display.Config{IdleAfter: time.Minute, Kiosk: true, Gate: "L2-S14-G03", AdminToken: []byte(token)}, slog.New(slog.DiscardHandler))
				s.SetState(display.State{Ready: true})
				// The kiosk page of the admin API, as an attendant who
				// gave the token sees it.
				admin := s.AdminHandler()
				ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Header.Set("Authorization", "Bearer "+token)
					admin.ServeHTTP(w, r)
				}))
				defer ts.Close()
				defer s.Close()
				s.Publish(display.FromDecision(tc.d, 42, false, false, tc.temp))
				// The screenshot is a page load of its own after the DOM's:
				// on a loaded machine it can catch the field's .15 s colour
				// transition under way, so a colour off the mark is looked at
				// again in a new load, three times at most.
				var shot, dom string
				var b []byte
				var seen []string
				for try := 0; try < 3; try++ {
					shot, dom = browse(t, bin, ts.URL+"/", size[0], size[1], func(dom string) bool { return strings.Contains(dom, tc.d.Message.Zh) })
					var got [3]uint8
					b, got = screenshot(t, shot, size)
					if near(got, tc.rgb) {
						seen = nil
						break
					}
					seen = append(seen, fmt.Sprintf("#%02x%02x%02x", got[0], got[1], got[2]))
				}
				if seen != nil {
					t.Fatalf("main field is %s in %d page loads; want #%02x%02x%02x", strings.Join(seen, ", "), len(seen), tc.rgb[0], tc.rgb[1], tc.rgb[2])
				}
				for _, want := range tc.shows {
					if !strings.Contains(dom, want) {
						t.Errorf("page does not show %q", want)
					}
				}
				if !strings.Contains(dom, tc.d.Message.Zh) || !strings.Contains(dom, tc.d.Message.En) {
					t.Errorf("page does not show %q / %q", tc.d.Message.Zh, tc.d.Message.En)
				}
				if !strings.Contains(dom, "张*明") {
					t.Error("page does not show the masked name")
				}
				if keep != "" {
					if err := os.WriteFile(filepath.Join(keep, name+".png"), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
}

// screenshot reads the screenshot at path, checks its size and returns
// its bytes and the colour of the main field: a point near the left
// edge, low on the screen (field, not text, and inside the white pulse an
// alert draws at the edge).
func screenshot(t *testing.T, path string, size [2]int) ([]byte, [3]uint8) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bounds := img.Bounds()
	if bounds.Dx() != size[0] || bounds.Dy() != size[1] {
		t.Errorf("screenshot is %v; want %dx%d", bounds.Size(), size[0], size[1])
	}
	r, g, bl, _ := img.At(bounds.Min.X+bounds.Dx()*4/100, bounds.Min.Y+bounds.Dy()*85/100).RGBA()
	return b, [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}
}

// near reports whether each channel of got is within 8 of want.
func near(got, want [3]uint8) bool {
	for i := range got {
		if d := int(got[i]) - int(want[i]); d < -8 || d > 8 {
			return false
		}
	}
	return true
}

// TestNotReadyInBrowser: a passenger at a gate that is not ready is told
// in plain words to use another gate, never "Please scan your code", and
// never sees the technician's reason, nor has it in the page; the admin
// page shows the reason.
func TestNotReadyInBrowser(t *testing.T) {
	bin := chromium(t)
	const token = "0123456789abcdef0123456789abcdef"
	const reason = "store cannot commit: disk full"
	s := display.New(display.Config{IdleAfter: time.Minute, Gate: "L2-S14-G03", AdminToken: []byte(token)}, slog.New(slog.DiscardHandler))
	defer s.Close()
	s.SetState(display.State{Ready: false, Reason: reason})
	page := httptest.NewServer(s.PageHandler())
	defer page.Close()
	admin := s.AdminHandler()
	adm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
		admin.ServeHTTP(w, r)
	}))
	defer adm.Close()

	_, dom := browse(t, bin, page.URL+"/", 800, 480, func(dom string) bool { return element(dom, "idle-zh") != "" })
	if zh, en := element(dom, "idle-zh"), element(dom, "idle-en"); zh != "本通道暂停使用" || en != "This gate is closed. Please use another gate" {
		t.Errorf("passenger idle screen at a gate not ready = %q / %q; want the gate closed, in passenger words", zh, en)
	}
	if r := element(dom, "notready-reason"); r != "" {
		t.Errorf("passenger page shows the technician's reason %q", r)
	}
	if strings.Contains(dom, reason) {
		t.Errorf("passenger page holds the technician's reason %q (in its initial state or anywhere else)", reason)
	}
	_, dom = browse(t, bin, adm.URL+"/", 800, 480, func(dom string) bool { return element(dom, "notready-reason") != "" })
	if r := element(dom, "notready-reason"); !strings.Contains(r, reason) {
		t.Errorf("admin page reason = %q; want %q", r, reason)
	}
}

// element returns the text of the element with id in a dumped DOM (no
// nested tags).
func element(dom, id string) string {
	m := regexp.MustCompile(`id="` + id + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil {
		return "(missing)"
	}
	return m[1]
}

// TestEmergencyButtonInBrowser: after an emergency input cleared, the
// admin API's page shows the "lock the gate again" button in the
// emergency banner; the passenger page shows the banner without it.
func TestEmergencyButtonInBrowser(t *testing.T) {
	bin := chromium(t)
	const token = "0123456789abcdef0123456789abcdef"
	s := display.New(display.Config{Gate: "L2-S14-G03", AdminToken: []byte(token)}, slog.New(slog.DiscardHandler))
	defer s.Close()
	s.SetState(display.State{Ready: true, Emergency: true, EmergencyLatched: true})
	admin := s.AdminHandler()
	kiosk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
		admin.ServeHTTP(w, r)
	}))
	defer kiosk.Close()
	page := httptest.NewServer(s.PageHandler())
	defer page.Close()
	for _, tc := range []struct {
		name, url string
		button    bool
	}{{"admin page", kiosk.URL + "/", true}, {"passenger page", page.URL + "/", false}} {
		shot, dom := browse(t, bin, tc.url, 800, 480, func(dom string) bool {
			return strings.Contains(dom, `<div id="banner-emergency" class="banner">`)
		})
		if !strings.Contains(dom, `<div id="banner-emergency" class="banner">`) {
			t.Errorf("%s: emergency banner not shown", tc.name)
		}
		if shown := strings.Contains(dom, `<div id="emergency-ack">`); shown != tc.button {
			t.Errorf("%s: acknowledge button shown %v; want %v", tc.name, shown, tc.button)
		}
		if keep := os.Getenv("WICKET_SCREENSHOTS"); keep != "" && tc.button {
			b, err := os.ReadFile(shot)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(keep, "emergency-latched-800x480.png"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
