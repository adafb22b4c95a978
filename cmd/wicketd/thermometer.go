package main

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/host/v3"

	"wicket/device"
	"wicket/device/thermo"
)

// openThermometer builds the thermometer the config names, or returns nil
// for type none. The monitor is not running yet; the returned close stops
// the sensor and waits for what it runs (a serial thermometer's source).
func (d *daemon) openThermometer() (*thermo.Monitor, func(), error) {
	c := d.cfg.Thermo
	corr := thermo.Correction{Emissivity: c.Emissivity, Offset: c.Offset}
	var s thermo.Sensor
	stale := time.Duration(0)
	switch c.Type {
	case "none":
		return nil, func() {}, nil
	case "sim":
		s = thermo.NewSim(c.Sim)
	case "serial":
		src, err := device.NewSerialSource(device.SerialConfig{
			Device: d.cfg.Path(c.Device), Baud: c.Baud, Terminator: device.TerminatorCR,
			// Units end lines with CR, LF or CRLF: a pause ends a line too.
			InterByteTimeout: 200 * time.Millisecond, FlushPartial: true, MaxFrame: 256,
		}, device.SourceOptions{Logger: d.log.With("component", "thermometer")})
		if err != nil {
			return nil, nil, fmt.Errorf("thermometer: %w", err)
		}
		s = thermo.NewLineSensor(src, corr)
	case "mlx90614":
		if _, err := host.Init(); err != nil {
			return nil, nil, fmt.Errorf("thermometer: init i2c drivers: %w", err)
		}
		bus, err := i2creg.Open(c.Bus)
		if err != nil {
			return nil, nil, fmt.Errorf("thermometer.bus: open I2C bus %q: %w", c.Bus, err)
		}
		mlx, err := thermo.NewMLX90614(bus, c.Address, corr)
		if err != nil {
			bus.Close()
			return nil, nil, fmt.Errorf("thermometer: %w", err)
		}
		s, stale = mlx, c.StaleAfter
		closeBus := func() { bus.Close() }
		return thermo.NewMonitor(s, c.Poll, stale), closeBus, nil
	}
	closeSensor := func() {
		if err := s.Close(); err != nil {
			d.log.Warn("close thermometer", "err", err)
		}
	}
	return thermo.NewMonitor(s, c.Poll, stale), closeSensor, nil
}

// watchThermometer counts sensor faults in wicket_device_errors_total and
// logs when the sensor fails and recovers.
func (d *daemon) watchThermometer(ctx context.Context, m *thermo.Monitor) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	var seen uint64
	var failing bool
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		faults, err := m.Health()
		for ; seen < faults; seen++ {
			d.deviceError("thermometer")
		}
		switch {
		case err != nil && !failing:
			d.log.Error("thermometer failing", "err", err)
		case err == nil && failing:
			d.log.Info("thermometer works again")
		}
		failing = err != nil
	}
}
