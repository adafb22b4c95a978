package display

import (
	"bytes"
	_ "embed"
	"html/template"
)

// pageHTML is the whole page: styles and script inline, no external
// assets, so it renders on a gate with no network.
//
//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// The two renderings of each page: for a gate that decides, and for one
// that does not.
const (
	pageOpen = iota
	pageClosed
)

// renderPage fills the page's settings in once; the page itself never
// changes afterwards. The admin API's page (admin) has the emergency
// acknowledge button and, in kiosk mode, the attendant's buttons; the
// passenger page has neither. A closed page shows the gate closed from its
// first paint, before its script runs.
func renderPage(cfg Config, admin, closed bool) []byte {
	var b bytes.Buffer
	err := pageTemplate.Execute(&b, struct {
		Gate                    string
		Kiosk, Admin, Closed    bool
		IdleMillis, AttendantMS int64
	}{cfg.Gate, cfg.Kiosk && admin, admin, closed, cfg.IdleAfter.Milliseconds(), cfg.AttendantHold.Milliseconds()})
	if err != nil {
		// The template is fixed and its data are plain values: this
		// cannot fail at run time once a test has rendered it.
		panic("display: render page: " + err.Error())
	}
	return b.Bytes()
}
