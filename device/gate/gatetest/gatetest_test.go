package gatetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
)

func TestOut(t *testing.T) {
	clk := clockwork.NewFakeClock()
	t0 := clk.Now()
	p := NewOut("RELAY", clk)
	p.FailWrite(1)
	var errs []bool
	write := func(l gpio.Level) {
		errs = append(errs, errors.Is(p.Out(l), ErrRefused))
		clk.Advance(time.Millisecond)
	}
	write(gpio.High) // 0
	write(gpio.Low)  // 1: named by FailWrite
	p.FailNext(2)
	write(gpio.Low) // 2: flaky
	write(gpio.Low) // 3: flaky
	write(gpio.Low) // 4: back
	p.SetDead(true)
	write(gpio.High) // 5: dead
	if p.Level() != gpio.Low {
		t.Errorf("Level() = %v after a refused write of High; want the Low it took", p.Level())
	}
	p.SetDead(false)
	write(gpio.High) // 6
	p.DieAfter(1)
	write(gpio.Low)  // 7: the one let through
	write(gpio.High) // 8: dead
	write(gpio.High) // 9: still dead
	p.SetDead(false)
	write(gpio.High) // 10
	if want := []bool{false, true, true, true, false, true, false, false, true, true, false}; !slices.Equal(errs, want) {
		t.Errorf("refused = %v; want %v", errs, want)
	}
	ws := p.Writes()
	if len(ws) != 11 || ws[10].L != gpio.High || ws[10].At.Sub(t0) != 10*time.Millisecond {
		t.Errorf("Writes() = %v; want 11, the last High at +10ms", ws)
	}
	if p.Level() != gpio.High {
		t.Errorf("Level() = %v; want High", p.Level())
	}
}

func TestIn(t *testing.T) {
	clk := clockwork.NewFakeClock()
	p := NewIn("PASSAGE", clk)
	if err := p.In(gpio.PullNoChange, gpio.RisingEdge); err != nil {
		t.Fatalf("In with an edge = %v; want nil", err)
	}
	if p.WaitRead(0) {
		t.Error("WaitRead reported a read before any")
	}
	p.Set(gpio.High)
	if p.Read() != gpio.High || !p.WaitRead(time.Second) {
		t.Error("Read after Set(High): want High, signalled")
	}
	got := make(chan bool)
	go func() { got <- p.WaitForEdge(-1) }()
	p.EdgesChan <- gpio.Low
	if !<-got || p.Read() != gpio.Low {
		t.Error("an edge to Low: want WaitForEdge true and the level Low")
	}
	go func() { got <- p.WaitForEdge(time.Second) }()
	if err := clk.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if <-got {
		t.Error("WaitForEdge without an edge = true; want false at its timeout on the clock")
	}

	polled := NewPolledIn("ALARM", clk)
	if err := polled.In(gpio.PullNoChange, gpio.BothEdges); err == nil {
		t.Error("polled input accepted edge detection")
	}
	if err := polled.In(gpio.PullNoChange, gpio.NoEdge); err != nil {
		t.Errorf("polled input In(NoEdge) = %v", err)
	}
}
