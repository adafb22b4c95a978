package display

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The shipped monitoring files, relative to this package.
var (
	alertRules     = filepath.Join("..", "..", "..", "configs", "prometheus", "wicket-alerts.yml")
	alertRuleTests = filepath.Join("..", "..", "..", "configs", "prometheus", "wicket-alerts_test.yml")
	fleetDashboard = filepath.Join("..", "..", "..", "configs", "grafana", "wicket-fleet.json")
)

// TestAlertRulesPromtool checks the shipped alert rules with promtool
// (Debian package prometheus) and runs their unit tests.
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (apt-get install prometheus): the alert rules are not checked")
	}
	for _, args := range [][]string{{"check", "rules", alertRules}, {"test", "rules", alertRuleTests}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// metricName finds the gate's metric names in a PromQL expression.
var metricName = regexp.MustCompile(`\b(?:wicket|process|go)_[a-z0-9_]+\b`)

// TestMonitoringNamesExist: every metric the dashboard and the alert
// rules query is one the gate's /metrics writes, so a renamed series
// cannot leave a panel or an alert silently empty. The dashboard is valid
// JSON with an expression for every target.
func TestMonitoringNamesExist(t *testing.T) {
	m := fullMetrics()
	var b strings.Builder
	if _, err := m.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "TYPE" {
			exposed[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exposed[f[2]+s] = true
				}
			}
		}
	}

	raw, err := os.ReadFile(fleetDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", fleetDashboard, err)
	}
	if len(dash.Panels) == 0 {
		t.Fatalf("%s has no panels", fleetDashboard)
	}
	var exprs []string
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has a target without expr", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:"); ok {
			exprs = append(exprs, e)
		}
	}
	seen := 0
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			seen++
			if !exposed[name] {
				t.Errorf("%q queries %s, which the gate does not export", e, name)
			}
		}
	}
	if seen < 20 {
		t.Errorf("only %d metric references found; the parse is wrong", seen)
	}
}

// fullMetrics returns metrics with every series set once.
func fullMetrics() *Metrics {
	m := NewMetrics()
	m.SetVersion("test")
	m.ObserveDecision("ok", true)
	m.ObserveScanToRelay(time.Millisecond)
	m.ObserveDecode(time.Millisecond)
	m.SetOutbox(1)
	m.SetOutboxDropped(1)
	m.SetTrustAge("status", time.Minute)
	m.SetTrustVersion("status", 1)
	m.SetClockTrusted(true)
	m.SetClock(time.Now(), time.Second)
	m.DeviceError("scanner")
	m.Refused("no_credential")
	m.Alert("colour_red")
	m.AlertUncommitted("colour_red")
	m.ForcedPassage()
	m.SetStoreCommit(true, false, 0)
	m.SetBrokerConnected(true)
	m.SetEmergency(0)
	m.SetTamper(false)
	return m
}
