package collector

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"wicket/internal/testkit"
	"wicket/sync/mqtttest"
)

// pgServer is a PostgreSQL server of the test's own: a data directory
// and a port on 127.0.0.1.
type pgServer struct {
	t    *testing.T
	bin  string // the directory of initdb, pg_ctl, ...
	dir  string
	port int
}

// pgBinDir finds the PostgreSQL server programs, or skips the test.
func pgBinDir(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // the newest first
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, dir := range dirs {
		complete := true
		for _, name := range []string{"initdb", "pg_ctl", "pg_basebackup"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				complete = false
			}
		}
		if complete {
			return dir
		}
	}
	t.Skip("PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) not found; install postgresql to run this test")
	return ""
}

// command is a PostgreSQL program, run as the postgres user when the
// test runs as root (PostgreSQL refuses to run as root).
func (s *pgServer) command(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(s.bin, name)}, args...)...)
	}
	return exec.Command(filepath.Join(s.bin, name), args...)
}

// run runs a PostgreSQL program and fails the test if it fails.
func (s *pgServer) run(name string, args ...string) {
	s.t.Helper()
	if out, err := s.command(name, args...).CombinedOutput(); err != nil {
		s.t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
}

// start starts the server; it is stopped when the test ends.
func (s *pgServer) start() {
	s.t.Helper()
	s.run("pg_ctl", "-D", s.dir, "-l", s.dir+".log", "-w", "-t", "60", "start")
	s.t.Cleanup(func() { s.command("pg_ctl", "-D", s.dir, "-m", "immediate", "stop").Run() })
}

// tempDirForPostgres is a new directory the server programs may write:
// owned by the postgres user when the test runs as root.
func tempDirForPostgres(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wicket-failover-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *pgServer) conf(lines string) {
	s.t.Helper()
	f, err := os.OpenFile(filepath.Join(s.dir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(lines); err != nil {
		s.t.Fatal(err)
	}
}

// stopNow stops the server as a crash would (immediate: no checkpoint,
// clients cut off).
func (s *pgServer) stopNow() {
	s.run("pg_ctl", "-D", s.dir, "-m", "immediate", "-w", "stop")
}

func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// startReplicatedPair starts a primary and a streaming standby that the
// primary waits for at every commit (synchronous replication), and
// returns them once the standby is in sync.
func startReplicatedPair(t *testing.T) (primary, standby *pgServer) {
	t.Helper()
	bin := pgBinDir(t)
	base := tempDirForPostgres(t)
	primary = &pgServer{t: t, bin: bin, dir: filepath.Join(base, "primary"), port: freeTCPPort(t)}
	primary.run("initdb", "-D", primary.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	primary.conf(fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"wal_level = replica\nmax_wal_senders = 4\nsynchronous_standby_names = '*'\nsynchronous_commit = on\n"+
		"shared_buffers = 16MB\nmax_connections = 40\n", primary.port, base))
	primary.start()

	standby = &pgServer{t: t, bin: bin, dir: filepath.Join(base, "standby"), port: freeTCPPort(t)}
	primary.run("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres",
		"-D", standby.dir, "-R", "-X", "stream", "--no-sync")
	// Promoted, it must not wait for a standby of its own.
	standby.conf(fmt.Sprintf("port = %d\nsynchronous_standby_names = ''\n", standby.port))
	standby.start()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, primary.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	testkit.Eventually(t, "the standby in sync replication (pg_stat_replication)", waitLimit, func() bool {
		var state string
		err := conn.QueryRow(ctx, "SELECT coalesce(max(sync_state), '') FROM pg_stat_replication").Scan(&state)
		return err == nil && state == "sync"
	})
	if _, err := conn.Exec(ctx, "CREATE DATABASE wicket"); err != nil {
		t.Fatal(err)
	}
	return primary, standby
}

// A primary with a synchronous streaming standby crashes while a
// collector stores records, and the standby is promoted: the collector,
// given both hosts and target_session_attrs=read-write, goes on storing
// into the new primary, and every record it acknowledged before the crash
// is there. Gates resend what was not acknowledged, so all records end up
// stored, none twice.
func TestCollectorFailoverLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL servers")
	}
	primary, standby := startReplicatedPair(t)
	ctx := context.Background()
	owner := openPool(t, primary.url("wicket"))
	if err := Migrate(ctx, owner); err != nil {
		t.Fatal(err)
	}
	owner.Close()

	both := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/wicket?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		primary.port, standby.port)
	pool := openPool(t, both)
	broker := mqtttest.StartMosquitto(t)
	fleet := "failover"
	c, _, _ := startCollector(t, pool, NewWriter(pool, testLog(t)),
		Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-failover"}, testLog(t))
	g := newFakeGate(t, broker.URL(), fleet)
	gate := gateName("failover")

	const batches, size, crashAfter = 30, 10, 15
	now := time.Now().UTC()
	var crashed time.Time
	for k := range batches {
		from := uint64(k*size + 1)
		r := dayRecords(gate, from, timesFrom(now, from, size)...)
		if k == crashAfter {
			// The crash comes while this batch is on its way.
			g.send(gate, r)
			primary.stopNow()
			crashed = time.Now()
			standby.run("pg_ctl", "-D", standby.dir, "-w", "-t", "60", "promote")
			t.Logf("primary stopped (immediate), standby promoted in %v", time.Since(crashed).Round(time.Millisecond))
		}
		g.sendUntilAcked(gate, r, 3*waitLimit)
		if k == crashAfter {
			t.Logf("the batch sent at the crash acked %v after it", time.Since(crashed).Round(time.Millisecond))
		}
	}

	// Only the promoted standby is read.
	newPrimary := openPool(t, standby.url("wicket"))
	var stored, distinct int
	if err := newPrimary.QueryRow(ctx, "SELECT count(*), count(DISTINCT (gate, seq)) FROM wicket_records WHERE gate = $1", gate).Scan(&stored, &distinct); err != nil {
		t.Fatal(err)
	}
	if stored != batches*size || distinct != stored {
		t.Fatalf("on the promoted standby: %d rows, %d distinct; want %d, all distinct", stored, distinct, batches*size)
	}
	// Whether the crash met a write in flight (Errors), a commit whose
	// ack was lost (Duplicates) or neither depends on timing; every
	// record on the standby exactly once is what must hold.
	t.Logf("collector: %+v", c.Stats())
}

// timesFrom are n times one second apart from now, for seqs from on.
func timesFrom(now time.Time, from uint64, n int) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = now.Add(time.Duration(from+uint64(i)) * time.Second)
	}
	return ts
}
