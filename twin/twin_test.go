package twin

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The gate's config as a technician writes it with wicketd init: the
// layout of docs/install.md's wiring table, the scanner on the board's
// own UART.
const (
	config        = "/etc/wicket/wicketd.yaml"
	relayLine     = 17
	passageLine   = 27
	emergencyLine = 22
	greenLine     = 23
	redLine       = 24
	// pulse is turnstile.pulse_width of the shipped config; tolerance is
	// what emulation may add or take (TCG timers, a loaded host).
	pulse     = 500 * time.Millisecond
	tolerance = 0.20
	// cmdTimeout bounds one guest command; a host shared with builds
	// slows an emulated board down by ten times and more.
	cmdTimeout = 2 * time.Minute
)

// The pins of docs/install.md's wiring table, the passage sensor
// included: gpiowatch -passage walks through after each unlock (a grant
// without one would hold the decision loop for open_timeout, 8 s).
var initFlags = "-gate-id TWIN-G01 -venue V-450100-0042 -scanner /dev/ttyAMA0 -baud 115200 " +
	"-relay-pin GPIO17 -passage-pin GPIO27 -emergency-pin GPIO22 -green-led-pin GPIO23 " +
	"-red-led-pin GPIO24 -buzzer-pin GPIO25"

// codes are the vouchers the host's authority issued for the test.
type codes struct {
	valid   []string // green printed vouchers, distinct holders
	red     string
	revoked string
}

func TestTwin(t *testing.T) {
	img, deb := os.Getenv("TWIN_IMG"), os.Getenv("TWIN_DEB")
	if img == "" || deb == "" {
		t.Skip("board twin: TWIN_IMG and TWIN_DEB not set (make twin)")
	}
	cuts, restarts := count(t, "TWIN_CUTS", 3), count(t, "TWIN_RESTARTS", 2)
	work := t.TempDir()
	stickDir := filepath.Join(work, "stick")
	if err := os.MkdirAll(stickDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctlPath, ctl := wicketctl(t, work)
	c := authority(t, ctl, work, stickDir)
	f := startFleet(t, work, ctl)
	stick := makeStick(t, work, stickDir, deb)
	disk := filepath.Join(work, "disk.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", filepath.Join(img, "root.img"), disk)

	b := boot(t, img, disk, stick)
	checkClock(t, b)
	chip := strings.TrimSpace(b.must(cmdTimeout, "ls -d /sys/devices/platform/gpio-sim.*/gpiochip*"))
	guestNetwork(t, b, f)
	install(t, b, f.guestBroker())
	enrol(t, b, f, ctlPath)
	startWalker(b, chip)
	scanToRelay(t, b, chip, c)
	emergency(t, b, chip)
	recs := storeRecords(t, b)
	checkRecords(t, recs)
	for i := 1; i <= restarts; i++ {
		watchdog(t, b, chip, c.valid[2+i%(len(c.valid)-2)])
	}
	upgrade(t, b, recs)
	b = powerCuts(t, b, chip, c, cuts, func() *board { return boot(t, img, disk, stick) })
	checkSynced(t, b, f)
	purge(t, b)
}

// count is the count in the environment variable name, def if unset.
func count(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, s)
	}
	return n
}

// run runs a host command and fails the test with its output on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// wicketctl builds the host's wicketctl into work and returns its path
// and a function that runs it in work, failing the test on an error.
func wicketctl(t *testing.T, work string) (string, func(args ...string) string) {
	ctl := filepath.Join(work, "wicketctl")
	run(t, "go", "build", "-o", ctl, "wicket/cmd/wicketctl")
	return ctl, func(args ...string) string {
		t.Helper()
		cmd := exec.Command(ctl, args...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("wicketctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
}

// authority makes what the issuing authority hands a technician, with the
// host's wicketctl: the root key, a key set, a revocation batch, and the
// test's vouchers. The public parts go on the stick.
func authority(t *testing.T, w func(args ...string) string, work, stick string) codes {
	w("keygen", "-out", "root")
	w("keygen", "-alg", "EdDSA", "-out", "gx")
	nb := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)
	w("keyset", "-root", "root.key", "-version", "1", "-out", filepath.Join(stick, "keyset.cose"),
		"-key", "pub=gx.pub,issuer=GX,not-before="+nb)
	w("pseudonym", "-new", "-secret", "pseudo.secret")
	issue := func(n int, args ...string) string {
		return w(append([]string{"issue", "-key", "gx.key", "-issuer", "GX", "-kind", "printed",
			"-id-number", fmt.Sprintf("4501001990010%05d", n), "-pseudonym-secret", "pseudo.secret"}, args...)...)
	}
	var c codes
	for i := 0; i < 24; i++ {
		c.valid = append(c.valid, issue(i))
	}
	c.red = issue(100, "-colour", "red")
	var rv struct {
		Text      string `json:"text"`
		VoucherID string `json:"voucher_id"`
	}
	if err := json.Unmarshal([]byte(issue(101, "-json")), &rv); err != nil || rv.VoucherID == "" {
		t.Fatalf("issue -json: %v", err)
	}
	c.revoked = rv.Text
	w("revoke", "-root", "root.key", "-state", "authority-state.json", "-version", "1", "-snapshot", "-yes", "-voucher-id", rv.VoucherID, "-out", filepath.Join(stick, "status-1.cose"))
	pub, err := os.ReadFile(filepath.Join(work, "root.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stick, "root.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// makeStick is the technician's USB stick as an ext2 image: the trust
// files, the package and a newer build of it (the same files repacked
// with a higher version, for the upgrade), and the twin's guest tools
// (gpiowatch, events) for the guest's architecture.
func makeStick(t *testing.T, work, dir, deb string) string {
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(deb)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	repack(t, work, deb, filepath.Join(dir, "upgrade"))
	for _, tool := range []string{"gpiowatch", "events"} {
		buildGuestTool(t, dir, tool)
	}
	img := filepath.Join(work, "stick.img")
	run(t, "mke2fs", "-q", "-t", "ext2", "-L", "stick", "-d", dir, img, "64M")
	return img
}

// upgradeSuffix makes the repacked package's version higher than the
// built one's in Debian's ordering.
const upgradeSuffix = "+twin1"

// repack writes deb again into dir with its Version raised by
// upgradeSuffix, as the next release of the package would come.
func repack(t *testing.T, work, deb, dir string) {
	x := filepath.Join(work, "repack")
	run(t, "dpkg-deb", "-R", deb, x)
	ctl := filepath.Join(x, "DEBIAN", "control")
	c, err := os.ReadFile(ctl)
	if err != nil {
		t.Fatal(err)
	}
	v := regexp.MustCompile(`(?m)^Version: (\S+)$`)
	if !v.Match(c) {
		t.Fatalf("%s: no Version field", deb)
	}
	if err := os.WriteFile(ctl, v.ReplaceAll(c, []byte("Version: ${1}"+upgradeSuffix)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg-deb", "--root-owner-group", "-Zxz", "-b", x, dir)
}

// checkClock: the guest's clock comes from the emulated RTC (PL031); the
// vouchers were issued against the host's.
func checkClock(t *testing.T, b *board) {
	s := strings.TrimSpace(b.must(cmdTimeout, "date +%s"))
	g, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("guest date: %q", s)
	}
	if d := time.Since(time.Unix(g, 0)); d > time.Minute || d < -time.Minute {
		t.Fatalf("guest clock off by %v: the twin needs the RTC", d)
	}
}

// install follows docs/install.md: the package, wicketd init, the trust
// files from the stick, the gpio udev rule, check-config, start.
func install(t *testing.T, b *board, broker string) {
	long := 3 * time.Minute
	b.must(long, "mount -o ro /dev/vdb /mnt")
	out := b.must(long, "dpkg -i /mnt/wicket_*.deb")
	if !strings.Contains(out, "enabled but not started") {
		t.Errorf("dpkg -i: want the 'enabled but not started' next steps, got:\n%s", out)
	}
	if got := strings.TrimSpace(b.must(long, "systemctl is-enabled wicketd")); got != "enabled" {
		t.Errorf("after dpkg -i: systemctl is-enabled wicketd = %q; want enabled", got)
	}
	sync := " -broker none" // the gate decides offline, as the latency test wants
	if broker != "" {
		sync = " -broker " + broker + " -fleet " + fleetID
	}
	b.must(long, "wicketd init --force -out "+config+" "+initFlags+sync)
	b.must(long, "install -o root -g wicket -m 0640 /mnt/root.pub /mnt/keyset.cose /mnt/status-1.cose /etc/wicket/")
	b.must(long, `sed -i 's|^  batches: \[\]$|  batches: [/etc/wicket/status-1.cose]|' `+config)
	b.must(long, `echo 'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' >/etc/udev/rules.d/60-gpio.rules && udevadm control --reload && udevadm trigger --subsystem-match=gpio --action=add && udevadm settle`)
	// The admin API with a token, for wicketd ack-emergency
	// (docs/operations.md, "Admin token").
	b.must(long, "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' >/etc/wicket/admin.token && chown wicket:wicket /etc/wicket/admin.token && chmod 0600 /etc/wicket/admin.token")
	b.must(long, `sed -i 's|^    addr: 127.0.0.1:9101$|&\n  admin: {addr: "127.0.0.1:8081", token_file: /etc/wicket/admin.token}|' `+config+" && grep -q 'token_file: /etc/wicket/admin.token' "+config)
	b.must(long, "wicketd check-config "+config+" >/dev/null")
	start := time.Now()
	if out, rc := b.sh(long, "systemctl start wicketd"); rc != 0 {
		logs, _ := b.sh(long, "journalctl -b -u wicketd --no-pager | tail -30")
		t.Fatalf("systemctl start wicketd: exit %d\n%s\n%s", rc, out, logs)
	}
	t.Logf("systemctl start wicketd (Type=notify, until ready): %v", time.Since(start).Round(time.Millisecond))
	if got := strings.TrimSpace(b.must(long, "systemctl is-active wicketd")); got != "active" {
		t.Fatalf("systemctl is-active wicketd = %q; want active", got)
	}
	sec := b.must(long, "systemd-analyze security --no-pager wicketd")
	m := regexp.MustCompile(`Overall exposure level for wicketd.service: ([0-9.]+)`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("systemd-analyze security: no exposure level in:\n%s", sec)
	}
	t.Logf("systemd-analyze security wicketd: %s", m[0])
	if e, _ := strconv.ParseFloat(m[1], 64); e > 2.5 {
		t.Errorf("exposure %v; want at most 2.5", e)
	}
	streamJournal(b)
}

// streamJournal sends wicketd's journal lines of this boot to the host as
// they are written: what the gate reported is on the host before a cut.
func streamJournal(b *board) {
	b.must(cmdTimeout, "setsid sh -c 'exec journalctl -b -f -n all -o cat -u wicketd >/dev/virtio-ports/twin.log' </dev/null >/dev/null 2>&1 &")
}

// edge is one change of a line seen by gpiowatch.
type edge struct {
	at    time.Duration
	line  int
	value byte
}

// watch runs gpiowatch in the guest, runs act on the host once the
// watcher has sampled every line, and returns the edges (the first sample
// of each line included) once done says the test has seen enough, or
// after limit. A loaded host slows the guest down by ten times and more:
// the watch waits for events, not for a fixed time.
func watch(t *testing.T, b *board, chip string, act func(), done func([]edge) bool, limit time.Duration, lines ...int) []edge {
	t.Helper()
	ls := make([]string, len(lines))
	for i, l := range lines {
		ls[i] = strconv.Itoa(l)
	}
	pid := strings.TrimSpace(b.must(cmdTimeout, fmt.Sprintf(
		"setsid /mnt/gpiowatch -chip %s -for 30m %s >/tmp/edges 2>&1 </dev/null & echo $!", chip, strings.Join(ls, " "))))
	b.must(cmdTimeout, fmt.Sprintf("until [ $(wc -l </tmp/edges) -ge %d ]; do sleep 0.1; done", len(lines)))
	act()
	var es []edge
	for start := time.Now(); time.Since(start) < limit; time.Sleep(500 * time.Millisecond) {
		es = parseEdges(t, b.must(cmdTimeout, "cat /tmp/edges"))
		if done(es) {
			break
		}
	}
	// A little longer, for what should not happen after it.
	time.Sleep(time.Second)
	b.must(cmdTimeout, "kill "+pid)
	return parseEdges(t, b.must(cmdTimeout, "cat /tmp/edges"))
}

func parseEdges(t *testing.T, out string) []edge {
	var es []edge
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || len(f[2]) != 1 {
			t.Fatalf("gpiowatch: bad line %q", l)
		}
		us, err1 := strconv.ParseInt(f[0], 10, 64)
		n, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("gpiowatch: bad line %q", l)
		}
		es = append(es, edge{time.Duration(us) * time.Microsecond, n, f[2][0]})
	}
	return es
}

// active reports the intervals in which line was at level v.
func active(es []edge, line int, v byte) (spans [][2]time.Duration, open bool) {
	var from time.Duration
	on := false
	for _, e := range es {
		if e.line != line {
			continue
		}
		switch {
		case e.value == v && !on:
			from, on = e.at, true
		case e.value != v && on:
			spans = append(spans, [2]time.Duration{from, e.at})
			on = false
		}
	}
	return spans, on
}

// pulsed reports whether the relay has been on and off again.
func pulsed(es []edge) bool {
	s, _ := active(es, relayLine, relayOn)
	return len(s) > 0
}

// The relay board is active-low (wicketd init's default): '0' is
// energised, the turnstile free.
const relayOn, relayOff = '0', '1'

func scanToRelay(t *testing.T, b *board, chip string, c codes) {
	// Three pulses, judged by their median: a host shared with builds
	// can hold a guest's vCPU off for a few hundred milliseconds once in
	// a while, which lengthens one pulse, not three.
	var widths []time.Duration
	for i, code := range c.valid[:3] {
		es := watch(t, b, chip, func() { b.scanCode(code) }, pulsed, time.Minute, relayLine, passageLine, greenLine, redLine)
		spans, open := active(es, relayLine, relayOn)
		if len(spans) != 1 || open {
			t.Fatalf("valid code %d: relay spans %v (still open %v); want one pulse. edges %v", i, spans, open, es)
		}
		widths = append(widths, spans[0][1]-spans[0][0])
		if g, _ := active(es, greenLine, '1'); len(g) == 0 {
			t.Errorf("valid code %d: the green LED did not light; edges %v", i, es)
		}
		if p, _ := active(es, passageLine, '1'); len(p) != 1 || p[0][0] < spans[0][0] {
			t.Errorf("valid code %d: passage sensor spans %v; want one walk after the relay opened at %v", i, p, spans[0][0])
		}
	}
	sorted := slices.Clone(widths)
	slices.Sort(sorted)
	w := sorted[len(sorted)/2]
	t.Logf("valid codes: relay pulses %v, median %v (configured %v)", widths, w, pulse)
	if lo, hi := time.Duration(float64(pulse)*(1-tolerance)), time.Duration(float64(pulse)*(1+tolerance)); w < lo || w > hi {
		t.Errorf("relay pulse median %v; want %v ±%.0f%%", w, pulse, tolerance*100)
	}
	for _, tc := range []struct{ name, code string }{{"red", c.red}, {"revoked", c.revoked}} {
		redLit := func(es []edge) bool { s, open := active(es, redLine, '1'); return len(s) > 0 || open }
		es := watch(t, b, chip, func() { b.scanCode(tc.code) }, redLit, time.Minute, relayLine, redLine)
		if s, open := active(es, relayLine, relayOn); len(s) > 0 || open {
			t.Errorf("%s code: the relay opened: %v", tc.name, es)
		}
		if r, open := active(es, redLine, '1'); len(r) == 0 && !open {
			t.Errorf("%s code: the red LED did not light; edges %v", tc.name, es)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !b.waitJournal(ctx, `"reason":"revoked"`) {
		t.Errorf("no revoked decision in the journal:\n%s", strings.Join(b.journalLines(), "\n"))
	}
}

// watchdog stops wicketd's process (a hung decision loop): systemd's
// WatchdogSec must restart it, and the relay must stay locked throughout.
func watchdog(t *testing.T, b *board, chip string, code string) {
	pid := strings.TrimSpace(b.must(cmdTimeout, "systemctl show -p MainPID --value wicketd"))
	wpid := strings.TrimSpace(b.must(cmdTimeout, fmt.Sprintf("setsid /mnt/gpiowatch -chip %s -for 5m %d >/tmp/watchdog.edges 2>&1 </dev/null & echo $!", chip, relayLine)))
	b.must(cmdTimeout, "kill -STOP "+pid)
	start := time.Now()
	var npid string
	for {
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("wicketd (pid %s) stopped: not restarted in 2m", pid)
		}
		time.Sleep(time.Second)
		npid = strings.TrimSpace(b.must(cmdTimeout, "systemctl show -p MainPID --value wicketd"))
		if a, _ := b.sh(cmdTimeout, "systemctl is-active wicketd"); npid != pid && npid != "0" && strings.TrimSpace(a) == "active" {
			break
		}
	}
	t.Logf("watchdog: wicketd stopped (SIGSTOP), restarted by systemd as pid %s after %v", npid, time.Since(start).Round(time.Second))
	b.must(cmdTimeout, "kill "+wpid)
	es := parseEdges(t, b.must(cmdTimeout, "cat /tmp/watchdog.edges"))
	if s, open := active(es, relayLine, relayOn); len(s) > 0 || open || len(es) == 0 {
		t.Errorf("relay while wicketd was stopped and restarted: edges %v; want locked throughout", es)
	}
	if out, rc := b.sh(cmdTimeout, "journalctl -b -u wicketd --no-pager | grep -i 'watchdog timeout'"); rc != 0 {
		t.Errorf("no watchdog timeout in the journal (%s)", out)
	}
	// And the gate works again.
	es = watch(t, b, chip, func() { b.scanCode(code) }, pulsed, time.Minute, relayLine)
	if s, _ := active(es, relayLine, relayOn); len(s) != 1 {
		t.Errorf("after the restart, a valid code: relay spans %v; want one pulse", s)
	}
}

// committed is what the gate reported committed: the seq of every
// decision line it logged (it logs one only after the store commit).
func committed(lines []string) []uint64 {
	var seqs []uint64
	for _, l := range lines {
		var e struct {
			Msg string
			Seq uint64
		}
		if json.Unmarshal([]byte(l), &e) == nil && (e.Msg == "decision" || e.Msg == "ALERT") && e.Seq > 0 {
			seqs = append(seqs, e.Seq)
		}
	}
	return seqs
}

// powerCuts kills qemu itself at random moments of a scan stream, boots
// again and checks: the store opens, every decision the gate reported
// before the cut is in it, and the relay is locked from boot on.
func powerCuts(t *testing.T, b *board, chip string, c codes, cycles int, reboot func() *board) *board {
	statusRe := regexp.MustCompile(`access log: +(\d+) events, last seq (\d+)`)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	pass := 0
	for i := 1; i <= cycles; i++ {
		// A scan stream: a different holder every 700 ms (so hold_off
		// never swallows one).
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				case <-time.After(700 * time.Millisecond):
				}
				if _, err := b.scan.Write([]byte(c.valid[j%len(c.valid)] + "\r")); err != nil {
					return
				}
			}
		}()
		// Cut at a random moment once the host has seen two decisions of
		// the stream reported: the guest may be slow to start deciding.
		n0 := len(committed(b.journalLines()))
		for start := time.Now(); len(committed(b.journalLines())) < n0+2; time.Sleep(100 * time.Millisecond) {
			if time.Since(start) < 3*time.Minute {
				continue
			}
			close(stop)
			<-done
			jl, _ := b.sh(cmdTimeout, "journalctl -b -u wicketd -n 30 -o cat --no-pager")
			t.Fatalf("cut %d: not two decisions of the scan stream reported in 3m (%d lines streamed); the guest's journal:\n%s", i, len(b.journalLines()), jl)
		}
		delay := time.Duration(rng.Int64N(int64(3 * time.Second)))
		time.Sleep(delay)
		b.kill()
		close(stop)
		<-done
		seqs := committed(b.journalLines())
		var max uint64
		for _, s := range seqs {
			max = s
		}

		b = reboot()
		b.must(cmdTimeout, "mount -o ro /dev/vdb /mnt")
		// The relay from the first moment the control shell runs: locked.
		if v := strings.TrimSpace(b.must(cmdTimeout, fmt.Sprintf("cat %s/sim_gpio%d/value", chip, relayLine))); v != string(relayOff) {
			t.Errorf("cut %d: relay at boot = %s; want %c (locked)", i, v, relayOff)
		}
		b.must(2*time.Minute, "until systemctl is-active -q wicketd; do sleep 0.5; done")
		es := parseEdges(t, b.must(cmdTimeout, fmt.Sprintf("/mnt/gpiowatch -chip %s -for 1s %d", chip, relayLine)))
		if s, open := active(es, relayLine, relayOn); len(s) > 0 || open {
			t.Errorf("cut %d: relay after the restart: %v; want locked", i, es)
		}
		b.must(cmdTimeout, "systemctl stop wicketd")
		st, rc := b.sh(cmdTimeout, "wicketd status -config "+config)
		m := statusRe.FindStringSubmatch(st)
		if rc != 0 || m == nil {
			t.Fatalf("cut %d: wicketd status: exit %d\n%s", i, rc, st)
		}
		events, _ := strconv.ParseUint(m[1], 10, 64)
		last, _ := strconv.ParseUint(m[2], 10, 64)
		ok := last >= max && events == last
		t.Logf("power cut %d/%d %v after the second reported decision of the stream: %d decisions reported committed this boot, %d of them in the stream (last seq %d); after boot: store opens, %d events, last seq %d, relay locked: %v",
			i, cycles, delay.Round(time.Millisecond), len(seqs), len(seqs)-n0, max, events, last, ok)
		if !ok {
			t.Errorf("cut %d: the store lost records: reported up to seq %d, holds %d events up to seq %d", i, max, events, last)
		} else {
			pass++
		}
		if out, rc := b.sh(cmdTimeout, "dmesg | grep -iE 'EXT4-fs (error|warning)'"); rc == 0 {
			t.Errorf("cut %d: ext4 complained:\n%s", i, out)
		}
		startWalker(b, chip)
		b.must(2*time.Minute, "systemctl start wicketd")
		streamJournal(b)
	}
	t.Logf("power cuts: %d/%d passed (%s board, host with %d cores)", pass, cycles, os.Getenv("TWIN_ARCH"), runtime.NumCPU())
	return b
}

// buildGuestTool builds ./name for the board's architecture into dir.
func buildGuestTool(t *testing.T, dir, name string) {
	goarch, goarm := "arm64", ""
	if os.Getenv("TWIN_ARCH") == "armhf" {
		goarch, goarm = "arm", "7"
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./"+name)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
}
