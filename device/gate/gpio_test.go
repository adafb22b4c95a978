package gate_test

import (
	"errors"
	"testing"

	"periph.io/x/host/v3"

	"wicket/device/gate"
)

func TestOpenGPIOUnknownPin(t *testing.T) {
	if _, err := host.Init(); err != nil {
		t.Skipf("no GPIO drivers here: %v", err)
	}
	for _, cfg := range []gate.Config{
		{},
		{Turnstile: gate.TurnstileConfig{RelayPin: "NO_SUCH_GPIO"}},
		{Turnstile: gate.TurnstileConfig{RelayPin: "NO_SUCH_GPIO", PassagePin: "NOR_THIS"}},
	} {
		if _, _, err := gate.OpenGPIO(cfg, gate.Options{}); !errors.Is(err, gate.ErrConfig) {
			t.Errorf("OpenGPIO(%+v) = %v; want ErrConfig", cfg.Turnstile, err)
		}
	}
}
