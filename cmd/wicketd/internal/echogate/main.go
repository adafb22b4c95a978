// Command echogate is the measuring apparatus of BenchmarkSerialToRelay
// without the gate: it reads codes from the serial scanner that a wicketd
// configuration names, through wicketd's own serial source, and for each
// one at once writes the lines the benchmark waits for (relay ON, the
// decision, relay OFF). Run as the benchmark's WICKET_LATENCY_BASE, it
// shows what the pseudo-terminal, the pipes, the scheduler and the
// benchmark itself add to every sample, with no verification, rules,
// store or relay in between.
//
//	go build -o /tmp/echogate ./cmd/wicketd/internal/echogate
//	WICKET_LATENCY_BASE=/tmp/echogate go test -run XXX -bench SerialToRelay -benchtime 1x ./cmd/wicketd/
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"syscall"

	"wicket/device"
)

// scannerLine is the serial scanner line of the benchmark's configuration.
var scannerLine = regexp.MustCompile(`scanner: \{type: serial, device: ([^,}]+), baud: (\d+)`)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "echogate:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 || args[0] != "run" || args[1] != "-config" {
		return errors.New("usage: echogate run -config FILE")
	}
	raw, err := os.ReadFile(args[2])
	if err != nil {
		return err
	}
	m := scannerLine.FindSubmatch(raw)
	if m == nil {
		return fmt.Errorf("%s: no serial scanner", args[2])
	}
	var baud int
	fmt.Sscan(string(m[2]), &baud)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	src, err := device.NewSerialSource(device.SerialConfig{Device: string(m[1]), Baud: baud}, device.SourceOptions{
		OnState: func(connected bool, _ error) {
			if connected {
				fmt.Println(`{"msg":"device connected"}`)
			}
		},
	})
	if err != nil {
		return err
	}
	scans := make(chan device.Scan, 4)
	go func() {
		for range scans {
			fmt.Print("turnstile: relay ON\n{\"msg\":\"decision\"}\nturnstile: relay OFF\n")
		}
	}()
	if err := src.Run(ctx, scans); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
