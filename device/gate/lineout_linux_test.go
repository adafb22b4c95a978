package gate

import (
	"testing"
	"unsafe"
)

// The request structs must match linux/gpio.h byte for byte: the kernel
// reads them by size, and the ioctl numbers carry that size.
func TestLineOutABI(t *testing.T) {
	iowr := func(nr, size uintptr) uintptr { return 3<<30 | size<<16 | 0xB4<<8 | nr }
	for _, c := range []struct {
		name       string
		size, want uintptr
	}{
		{"gpio_v2_line_attribute", unsafe.Sizeof(gpioV2LineAttribute{}), 16},
		{"gpio_v2_line_config_attribute", unsafe.Sizeof(gpioV2LineConfigAttribute{}), 24},
		{"gpio_v2_line_config", unsafe.Sizeof(gpioV2LineConfig{}), 272},
		{"gpio_v2_line_request", unsafe.Sizeof(gpioV2LineRequest{}), 592},
		{"gpio_v2_line_values", unsafe.Sizeof(gpioV2LineValues{}), 16},
	} {
		if c.size != c.want {
			t.Errorf("sizeof %s = %d, kernel has %d", c.name, c.size, c.want)
		}
	}
	var r gpioV2LineRequest
	if off := unsafe.Offsetof(r.config); off != 288 {
		t.Errorf("offsetof config = %d, kernel has 288", off)
	}
	if off := unsafe.Offsetof(r.fd); off != 588 {
		t.Errorf("offsetof fd = %d, kernel has 588", off)
	}
	if got := iowr(0x07, unsafe.Sizeof(r)); got != gpioV2GetLineIoctl {
		t.Errorf("GPIO_V2_GET_LINE_IOCTL = %#x, constant %#x", got, gpioV2GetLineIoctl)
	}
	if got := iowr(0x0F, unsafe.Sizeof(gpioV2LineValues{})); got != gpioV2LineSetValuesIoctl {
		t.Errorf("GPIO_V2_LINE_SET_VALUES_IOCTL = %#x, constant %#x", got, gpioV2LineSetValuesIoctl)
	}
}

// A name no character device has leaves the pin to periph.
func TestOpenLineOutUnknown(t *testing.T) {
	p, err := openLineOut("NO_SUCH_LINE_NAME", false)
	if p != nil || err != nil {
		t.Fatalf("openLineOut(unknown) = %v, %v; want nil, nil", p, err)
	}
}
