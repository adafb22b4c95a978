package twin

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"wicket/pgmigrate/pgtest"
	"wicket/sync/mqtttest"
)

// fleetID is the twin's fleet on the broker.
const fleetID = "twin"

// fleet is the host's side of the gate's sync: a mosquitto on a loopback
// port (the guest reaches the host's loopback as 10.0.2.2 through qemu's
// user network), a collector (wicketctl collect) and a PostgreSQL
// database of the test's own.
type fleet struct {
	broker *mqtttest.Broker
	db     string
	ctl    func(args ...string) string // wicketctl in the authority's directory
	dir    string
}

func startFleet(t *testing.T, work string, ctl func(args ...string) string) *fleet {
	f := &fleet{broker: mqtttest.StartMosquitto(t), db: pgtest.Database(t, "wicket_twin"), ctl: ctl, dir: work}
	ctl("keygen", "-alg", "EdDSA", "-out", "collector")
	ctl("collect", "-migrate", "-db", f.db)
	return f
}

// guestBroker is the broker's URL as the guest reaches it.
func (f *fleet) guestBroker() string {
	_, port, _ := net.SplitHostPort(f.broker.Addr())
	return "tcp://10.0.2.2:" + port
}

// guestNetwork gives the guest's virtio NIC qemu's user-network address
// through systemd-networkd (in bookworm's systemd) and checks that the
// broker answers from the guest.
func guestNetwork(t *testing.T, b *board, f *fleet) {
	b.must(cmdTimeout, `mkdir -p /etc/systemd/network && printf '[Match]\nName=en* eth*\n[Network]\nAddress=10.0.2.15/24\n' >/etc/systemd/network/20-twin.network && systemctl enable -q --now systemd-networkd`)
	_, port, _ := net.SplitHostPort(f.broker.Addr())
	if out, rc := b.sh(2*time.Minute, "timeout 100 bash -c 'until echo >/dev/tcp/10.0.2.2/"+port+"; do sleep 1; done' 2>&1 | tail -3"); rc != 0 {
		t.Fatalf("the guest does not reach the broker at 10.0.2.2:%s: %s", port, out)
	}
}

// enrol does the authority's part of docs/mqtt.md: the gate's enrolment
// line (wicketd identity) and the collector's key in a roster signed by
// the root, published retained; then it starts the collector.
func enrol(t *testing.T, b *board, f *fleet, ctlPath string) {
	out := b.must(cmdTimeout, "wicketd identity -config "+config)
	line := regexp.MustCompile(`wicket-enrol:1:\S+`).FindString(out)
	if line == "" {
		t.Fatalf("wicketd identity: no enrolment line in:\n%s", out)
	}
	members := "id,venue,station,role,key\nTWIN-G01,V-450100-0042,S1,gate," + line + "\ncollector-1,,,collector," + filepath.Join(f.dir, "collector.pub") + "\n"
	if err := os.WriteFile(filepath.Join(f.dir, "members.csv"), []byte(members), 0o644); err != nil {
		t.Fatal(err)
	}
	f.ctl("roster", "sign", "-root", "root.key", "-version", "1", "-members", "members.csv", "-out", "roster.cose")
	f.ctl("roster", "publish", "-broker", f.broker.URL(), "-fleet", fleetID, "-roots", "root.pub", "roster.cose")
	logf, err := os.Create(filepath.Join(f.dir, "collector.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ctlPath, "collect", "-broker", f.broker.URL(), "-fleet", fleetID, "-id", "collector-1",
		"-identity", "collector.key", "-roots", "root.pub", "-db", f.db, "-group", "")
	cmd.Dir, cmd.Stdout, cmd.Stderr = f.dir, logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
	})
}

// checkSynced waits until the gate's outbox is empty (every record acked
// by the collector), then checks that PostgreSQL holds every record of
// the gate's store, the decisions of every boot and power cut included.
func checkSynced(t *testing.T, b *board, f *fleet) {
	outboxRe := regexp.MustCompile(`outbox: +(\d+) records waiting`)
	start := time.Now()
	for {
		out, _ := b.sh(cmdTimeout, "wicketd status -config "+config)
		m := outboxRe.FindStringSubmatch(out)
		if m != nil && m[1] == "0" {
			break
		}
		if time.Since(start) > 5*time.Minute {
			log, _ := os.ReadFile(filepath.Join(f.dir, "collector.log"))
			t.Fatalf("the gate's outbox not empty after 5m:\n%s\ncollector:\n%s", out, log)
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("sync: the gate's outbox empty %v after the last power cut's boot", time.Since(start).Round(time.Second))
	recs := storeRecords(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, f.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT seq, type, allow, reason, detail FROM wicket_records WHERE gate = $1", "TWIN-G01")
	if err != nil {
		t.Fatal(err)
	}
	inDB := map[uint64]string{}
	var maxDB uint64
	for rows.Next() {
		var seq int64
		var typ, reason, detail string
		var allow bool
		if err := rows.Scan(&seq, &typ, &allow, &reason, &detail); err != nil {
			t.Fatal(err)
		}
		inDB[uint64(seq)] = fmt.Sprint(typ, allow, reason, detail)
		maxDB = max(maxDB, uint64(seq))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing, decisions := 0, 0
	for _, r := range recs {
		if r.Type == "decision" {
			decisions++
		}
		if r.Seq > maxDB && r.Type == "system" && r.Reason == "stop" {
			// Written as storeRecords stopped wicketd, after the
			// outbox was seen empty: not sent yet.
			continue
		}
		if got, want := inDB[r.Seq], fmt.Sprint(r.Type, r.Allow, r.Reason, r.Detail); got != want {
			missing++
			if missing <= 5 {
				t.Errorf("record seq %d: PostgreSQL has %q; want %q", r.Seq, got, want)
			}
		}
	}
	t.Logf("sync: the store holds %d records (%d decisions); PostgreSQL %d rows for the gate; %d missing or different", len(recs), decisions, len(inDB), missing)
	if missing > 0 || decisions == 0 {
		t.Errorf("%d of the store's %d records not in PostgreSQL as stored (%d decisions)", missing, len(recs), decisions)
	}
}
