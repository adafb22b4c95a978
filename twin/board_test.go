package twin

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bootTimeout bounds a boot to the control shell. Boots take 12 to 30 s
// under TCG on an idle host; minutes on a host shared with builds.
const bootTimeout = 10 * time.Minute

// board is one running qemu: the guest's console goes to a file, the
// control shell, the journal stream and the scanner's UART to unix
// sockets in dir.
type board struct {
	t    *testing.T
	dir  string
	qemu *exec.Cmd
	done chan struct{}

	ctl     net.Conn
	ctlLine chan string
	scan    net.Conn

	mu      sync.Mutex
	journal []string // lines streamed from the guest's journal
}

// qemuArgs is the board: TCG, two cores, the root disk with cache=none
// (O_DIRECT: a write the guest saw complete is in the image file, a guest
// flush becomes fdatasync, so a guest fsync survives qemu's death), the
// "USB stick" read-only, the virtio ports, and a NIC on qemu's user
// network, through which the guest reaches the host's loopback as
// 10.0.2.2 (the test's broker). Each of extra is one more raw disk, with
// cache=none too.
func qemuArgs(img, disk, stick, dir string, extra []string) []string {
	arch := os.Getenv("TWIN_ARCH")
	cpu := []string{"-M", "virt", "-cpu", "cortex-a72"} // a Raspberry Pi 4's core
	if arch == "armhf" {
		cpu = []string{"-M", "virt,highmem=off", "-cpu", "cortex-a15"}
	}
	sock := func(id, name string) string {
		return fmt.Sprintf("socket,id=%s,path=%s,server=on,wait=off", id, filepath.Join(dir, name))
	}
	args := append(cpu,
		"-smp", "2", "-m", "1024", "-nographic", "-nodefaults", "-no-reboot", "-nic", "user,model=virtio-net-pci",
		"-kernel", filepath.Join(img, "vmlinuz"), "-initrd", filepath.Join(img, "initrd.img"),
		"-append", "root=/dev/vda console=hvc0 panic=-1 systemd.log_color=0",
		"-drive", "file="+disk+",if=none,id=root,format=qcow2,cache=none"+driveOpts(),
		"-device", "virtio-blk-pci,drive=root",
		"-drive", "file="+stick+",if=none,id=stick,format=raw,readonly=on",
		"-device", "virtio-blk-pci,drive=stick",
		"-device", "virtio-serial-pci",
		"-chardev", "file,id=con,path="+filepath.Join(dir, "console.log"),
		"-device", "virtconsole,chardev=con",
		"-chardev", sock("ctl", "ctl.sock"), "-device", "virtserialport,chardev=ctl,name=twin.ctl",
		"-chardev", sock("jl", "log.sock"), "-device", "virtserialport,chardev=jl,name=twin.log",
		"-chardev", sock("scan", "scan.sock"), "-serial", "chardev:scan",
	)
	for i, x := range extra {
		args = append(args, "-drive", fmt.Sprintf("file=%s,if=none,id=extra%d,format=raw,cache=none", x, i),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=extra%d", i))
	}
	return args
}

// driveOpts is ",TWIN_DRIVE_OPTS" when that is set: more options of the
// root disk's -drive, e.g. throttling.iops-write=250 for SD-card-class
// storage (latency_test.go).
func driveOpts() string {
	if o := os.Getenv("TWIN_DRIVE_OPTS"); o != "" {
		return "," + o
	}
	return ""
}

// boot starts qemu on disk, with the raw disks extra attached after the
// stick, and waits for the guest's control shell.
func boot(t *testing.T, img, disk, stick string, extra ...string) *board {
	t.Helper()
	dir, err := os.MkdirTemp("", "twin-board-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := "qemu-system-aarch64"
	if os.Getenv("TWIN_ARCH") == "armhf" {
		bin = "qemu-system-arm"
	}
	b := &board{t: t, dir: dir, done: make(chan struct{}), ctlLine: make(chan string, 1024)}
	b.qemu = exec.Command(bin, qemuArgs(img, disk, stick, dir, extra)...)
	out, err := os.Create(filepath.Join(dir, "qemu.log"))
	if err != nil {
		t.Fatal(err)
	}
	b.qemu.Stdout, b.qemu.Stderr = out, out
	start := time.Now()
	if err := b.qemu.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.qemu.Wait(); out.Close(); close(b.done) }()
	t.Cleanup(b.kill)
	b.ctl = b.dial("ctl.sock")
	b.scan = b.dial("scan.sock")
	jl := b.dial("log.sock")
	go b.read(b.ctl, func(l string) { b.ctlLine <- l })
	go b.read(jl, func(l string) {
		b.mu.Lock()
		b.journal = append(b.journal, l)
		b.mu.Unlock()
	})
	deadline := time.After(bootTimeout)
	for {
		select {
		case l := <-b.ctlLine:
			if l == "@@twin-ready" {
				t.Logf("boot to the control shell: %v", time.Since(start).Round(100*time.Millisecond))
				return b
			}
		case <-deadline:
			t.Fatalf("no control shell after %v; console:\n%s", bootTimeout, b.console())
		case <-b.done:
			t.Fatalf("qemu exited during boot:\n%s\nconsole:\n%s", b.file("qemu.log"), b.console())
		}
	}
}

func (b *board) dial(name string) net.Conn {
	p := filepath.Join(b.dir, name)
	for i := 0; i < 300; i++ {
		c, err := net.Dial("unix", p)
		if err == nil {
			return c
		}
		select {
		case <-b.done:
			b.t.Fatalf("qemu exited: %s", b.file("qemu.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
	b.t.Fatalf("qemu made no socket %s", p)
	return nil
}

func (b *board) read(c net.Conn, each func(string)) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		each(strings.TrimRight(sc.Text(), "\r"))
	}
}

func (b *board) file(name string) string {
	data, _ := os.ReadFile(filepath.Join(b.dir, name))
	return string(data)
}

// console is the tail of the guest's console, for failure messages.
func (b *board) console() string {
	c := b.file("console.log")
	if len(c) > 4000 {
		c = c[len(c)-4000:]
	}
	// Without the status line's cursor movements.
	return strings.Map(func(r rune) rune {
		if r < ' ' && r != '\n' {
			return -1
		}
		return r
	}, c)
}

// kill is the power cut: SIGKILL to qemu, nothing in the guest runs after.
func (b *board) kill() {
	if b.qemu.Process != nil {
		b.qemu.Process.Signal(syscall.SIGKILL)
	}
	<-b.done
	b.ctl.Close()
	b.scan.Close()
}

// sh runs one shell line as root in the guest and returns its output and
// exit code.
func (b *board) sh(timeout time.Duration, cmd string) (string, int) {
	b.t.Helper()
	if strings.Contains(cmd, "\n") {
		b.t.Fatalf("sh: one line only: %q", cmd)
	}
	if _, err := fmt.Fprintf(b.ctl, "%s\n", cmd); err != nil {
		b.t.Fatalf("sh %q: %v", cmd, err)
	}
	var out []string
	deadline := time.After(timeout)
	for {
		select {
		case l := <-b.ctlLine:
			if l == "@@twin-ready" && len(out) == 0 {
				// The agent opened its port again before it read the
				// command: send it again.
				fmt.Fprintf(b.ctl, "%s\n", cmd)
				continue
			}
			if rc, ok := strings.CutPrefix(l, "@@twin-rc "); ok {
				n, _ := strconv.Atoi(rc)
				return strings.Join(out, "\n"), n
			}
			out = append(out, l)
		case <-deadline:
			b.t.Fatalf("sh %q: no answer in %v; output so far:\n%s\nconsole:\n%s", cmd, timeout, strings.Join(out, "\n"), b.console())
		case <-b.done:
			b.t.Fatalf("sh %q: qemu exited", cmd)
		}
	}
}

// must runs cmd and fails the test unless it exits 0.
func (b *board) must(timeout time.Duration, cmd string) string {
	b.t.Helper()
	out, rc := b.sh(timeout, cmd)
	if rc != 0 {
		b.t.Fatalf("guest: %s: exit %d:\n%s", cmd, rc, out)
	}
	return out
}

// scanCode types a code into the scanner's UART as a scanner sends it:
// the text and a CR.
func (b *board) scanCode(code string) {
	b.t.Helper()
	if _, err := b.scan.Write([]byte(code + "\r")); err != nil {
		b.t.Fatalf("scanner: %v", err)
	}
}

// journalLines is a copy of the lines streamed so far.
func (b *board) journalLines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.journal...)
}

// waitJournal waits until a streamed journal line contains s.
func (b *board) waitJournal(ctx context.Context, s string) bool {
	for {
		for _, l := range b.journalLines() {
			if strings.Contains(l, s) {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}
