package thermo

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"wicket/device"
	"wicket/internal/testkit"
)

// The worked example of the MLX90614 datasheet: reading Tobj1 (0x07) at
// address 0x5A returns 0x3AD2 with PEC 0x30.
func TestCRC8Datasheet(t *testing.T) {
	if got := CRC8([]byte{0xB4, 0x07, 0xB5, 0xD2, 0x3A}); got != 0x30 {
		t.Fatalf("PEC = %#02x; want 0x30", got)
	}
	if got := MLXWord(MLXAddr, RegObject, float64(0x3AD2)*0.02); got[0] != 0xD2 || got[1] != 0x3A || got[2] != 0x30 {
		t.Fatalf("MLXWord = % x; want d2 3a 30", got)
	}
}

func read(t *testing.T, ops []i2ctest.IO, corr Correction) (float64, bool, error) {
	t.Helper()
	bus := &i2ctest.Playback{Ops: ops, DontPanic: true}
	s, err := NewMLX90614(bus, 0, corr)
	if err != nil {
		t.Fatal(err)
	}
	c, ok, err := s.Read(context.Background())
	if cerr := bus.Close(); cerr != nil && err == nil {
		t.Errorf("not every recorded transaction happened: %v", cerr)
	}
	return c, ok, err
}

func obj(kelvin float64) i2ctest.IO {
	return i2ctest.IO{Addr: MLXAddr, W: []byte{RegObject}, R: MLXWord(MLXAddr, RegObject, kelvin)}
}

func TestMLX90614(t *testing.T) {
	c, ok, err := read(t, []i2ctest.IO{obj(310.15)}, Correction{})
	if err != nil || !ok || math.Abs(c-37.0) > 0.011 {
		t.Errorf("37 °C: %v %v %v", c, ok, err)
	}
	c, ok, err = read(t, []i2ctest.IO{obj(308.15)}, Correction{Offset: 0.5})
	if err != nil || !ok || math.Abs(c-35.5) > 0.011 {
		t.Errorf("35 °C + 0.5 offset: %v %v %v", c, ok, err)
	}
	// Emissivity 0.98 with the room at 295 K: the surface is warmer than
	// the sensor sees. ((306⁴ − 0.02·295⁴)/0.98)^¼ − 273.15 = 33.062 °C
	// against 32.85 °C measured; the offset brings skin to body
	// temperature.
	amb := i2ctest.IO{Addr: MLXAddr, W: []byte{RegAmbient}, R: MLXWord(MLXAddr, RegAmbient, 295)}
	c, ok, err = read(t, []i2ctest.IO{obj(306), amb}, Correction{Emissivity: 0.98, Offset: 4})
	if err != nil || !ok || math.Abs(c-(33.062+4)) > 0.01 {
		t.Errorf("emissivity-corrected: %v %v %v; want 37.06", c, ok, err)
	}
	// Nobody in front: the far wall at 22 °C is not a reading.
	if _, ok, err := read(t, []i2ctest.IO{obj(295.15)}, Correction{}); ok || err != nil {
		t.Errorf("22 °C: ok %v err %v; want no reading, no error", ok, err)
	}
	for name, io := range map[string]i2ctest.IO{
		"PEC mismatch":      {Addr: MLXAddr, W: []byte{RegObject}, R: []byte{0xD2, 0x3A, 0x31}},
		"error flag":        {Addr: MLXAddr, W: []byte{RegObject}, R: MLXWord(MLXAddr, RegObject, float64(0x8123)*0.02)},
		"below range":       obj(200),
		"not a person":      obj(273.15 + 52),
		"wrong address ack": {Addr: 0x5B, W: []byte{RegObject}, R: []byte{0, 0, 0}},
	} {
		if _, ok, err := read(t, []i2ctest.IO{io}, Correction{}); !errors.Is(err, ErrFault) || ok {
			t.Errorf("%s: ok %v err %v; want a fault", name, ok, err)
		}
	}
	if _, err := NewMLX90614(&i2ctest.Playback{}, 0, Correction{Emissivity: 1.2}); err == nil {
		t.Error("emissivity 1.2 accepted")
	}
}

func TestParseLine(t *testing.T) {
	for line, want := range map[string]float64{
		"36.6": 36.6, "T=36.6C": 36.6, "TEMP: 37,2 °C": 37.2, "body 98.6F": 37.0, "38deg C": 38,
	} {
		got, err := ParseLine([]byte(line))
		if err != nil || math.Abs(got-want) > 0.001 {
			t.Errorf("ParseLine(%q) = %v, %v; want %v", line, got, err, want)
		}
	}
	for _, line := range []string{"", "ERR", "---"} {
		if _, err := ParseLine([]byte(line)); !errors.Is(err, ErrFault) {
			t.Errorf("ParseLine(%q): %v; want a fault", line, err)
		}
	}
}

// A serial thermometer through a real pseudo-terminal and SerialSource.
func TestLineSensorSerial(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer master.Close()
	defer tty.Close()
	open := make(chan struct{})
	src, err := device.NewSerialSource(device.SerialConfig{Device: tty.Name(), Baud: 9600}, device.SourceOptions{
		OnState: func(connected bool, _ error) {
			if connected {
				close(open)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := NewLineSensor(src, Correction{Offset: 0.2})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Write once the port is open in raw mode, so the CR reaches it as is.
	select {
	case <-open:
	case <-ctx.Done():
		t.Fatal("the serial source never opened the pseudo-terminal")
	}
	for _, tc := range []struct {
		line  string
		want  float64
		ok    bool
		fault bool
	}{
		{"T=36.5C\r", 36.7, true, false},
		{"99.5F\r", 37.7, true, false},
		{"25.0\r", 0, false, false},
		{"SENSOR ERROR\r", 0, false, true},
		{"60.0\r", 0, false, true},
	} {
		if _, err := master.Write([]byte(tc.line)); err != nil {
			t.Fatal(err)
		}
		c, ok, err := s.Read(ctx)
		if ok != tc.ok || errors.Is(err, ErrFault) != tc.fault || ok && math.Abs(c-tc.want) > 0.001 {
			t.Errorf("%q: %v %v %v", tc.line, c, ok, err)
		}
	}
}

// TestMonitor drives a monitor on a fake clock: a triggered reading is
// returned, one older than the scan's window is not, and a value that is
// no person yields no reading.
func TestMonitor(t *testing.T) {
	sim := NewSim([]float64{36.6, 38.4, 20})
	m := NewMonitor(sim, 20*time.Millisecond, 0)
	clk := clockwork.NewFakeClock()
	m.clock = clk
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)

	start := clk.Now()
	m.Trigger()
	r, err := m.Wait(ctx, start, 5*time.Second)
	if err != nil || r.Celsius != 36.6 {
		t.Fatalf("first reading: %+v %v", r, err)
	}
	// A reading older than the window does not count: wait for the next.
	if err := clk.BlockUntilContext(ctx, 1); err != nil { // Run waits to poll again
		t.Fatal(err)
	}
	clk.Advance(100 * time.Millisecond)
	next := clk.Now()
	m.Trigger()
	if r, err := m.Wait(ctx, next, 5*time.Second); err != nil || r.Celsius != 38.4 || r.At.Before(next) {
		t.Fatalf("second reading: %+v %v", r, err)
	}
	// 20 °C: nobody; no reading comes.
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(100 * time.Millisecond)
	since := clk.Now()
	m.Trigger()
	res := make(chan error, 1)
	go func() {
		_, err := m.Wait(ctx, since, 200*time.Millisecond)
		res <- err
	}()
	if err := clk.BlockUntilContext(ctx, 2); err != nil { // Run's poll and Wait's deadline
		t.Fatal(err)
	}
	clk.Advance(200 * time.Millisecond)
	if err := <-res; !errors.Is(err, ErrNoReading) {
		t.Fatalf("nobody in front: %v; want ErrNoReading", err)
	}
	if faults, err := m.Health(); err != nil || faults != 0 {
		t.Errorf("health: %v, %d faults", err, faults)
	}
}

type failing struct{}

func (failing) Read(ctx context.Context) (float64, bool, error) {
	return 0, false, ErrFault
}
func (failing) Close() error { return nil }

func TestMonitorFaultAndStale(t *testing.T) {
	m := NewMonitor(failing{}, 20*time.Millisecond, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	_, err := m.Wait(ctx, time.Now(), 150*time.Millisecond)
	if !errors.Is(err, ErrNoReading) || !errors.Is(err, ErrFault) {
		t.Fatalf("Wait on a failing sensor: %v; want ErrNoReading wrapping the fault", err)
	}
	if faults, err := m.Health(); !errors.Is(err, ErrFault) || faults == 0 {
		t.Errorf("health: %v, %d faults", err, faults)
	}

	silent := NewMonitor(NewSim(nil), 20*time.Millisecond, 50*time.Millisecond)
	clk := clockwork.NewFakeClock()
	silent.clock = clk
	go silent.Run(ctx)
	testkit.Eventually(t, "the monitor running", 5*time.Second, func() bool {
		_, err := silent.Health()
		return err == nil
	})
	clk.Advance(time.Second)
	if _, err := silent.Health(); !errors.Is(err, ErrStale) {
		t.Errorf("silent sensor: %v; want ErrStale", err)
	}
}

// sourceFunc is a device.Source made of its Run.
type sourceFunc func(ctx context.Context, out chan<- device.Scan) error

func (f sourceFunc) Run(ctx context.Context, out chan<- device.Scan) error { return f(ctx, out) }

// TestLineSensorClose: Close returns only once the source's goroutine has
// ended, and a source that ends by itself is a fault for Read and its
// error for Close.
func TestLineSensorClose(t *testing.T) {
	ended := make(chan struct{})
	s := NewLineSensor(sourceFunc(func(ctx context.Context, _ chan<- device.Scan) error {
		defer close(ended)
		<-ctx.Done()
		return ctx.Err()
	}), Correction{})
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v; want nil for a source stopped by Close", err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("Close returned while the source was still running")
	}

	unplugged := errors.New("unplugged")
	s = NewLineSensor(sourceFunc(func(context.Context, chan<- device.Scan) error { return unplugged }), Correction{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		if _, _, err := s.Read(ctx); !errors.Is(err, ErrFault) {
			t.Errorf("Read after the source ended = %v; want a fault", err)
		}
	}
	if err := s.Close(); !errors.Is(err, unplugged) {
		t.Errorf("Close = %v; want the source's error", err)
	}
}
