package gate

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/host/v3/gpioioctl"
)

// lineOut is an output line requested from the kernel's GPIO character
// device (uAPI v2) with its initial level in the request itself, so the
// line never shows another level between the request and the first write.
//
// periph's gpioioctl driver requests a line first and makes it an output
// afterwards, with no output value: the kernel drives it low until the
// level is set. On an active-low relay board that low is the relay
// energised, the turnstile free, for as long as the two calls take (1 to
// 34 ms seen on the board twin at every start of wicketd). The relay and
// the feedback outputs therefore go through lineOut wherever the kernel's
// character device has the line.
type lineOut struct {
	name  string
	chip  string
	num   int
	fd    int
	level gpio.Level
}

// GPIO uAPI v2 (linux/gpio.h). The layouts fall on natural alignment on
// both 32- and 64-bit ARM, so Go's layout matches the kernel's.
const (
	gpioV2LinesMax        = 64
	gpioMaxNameSize       = 32
	gpioV2LineNumAttrsMax = 10

	gpioV2LineFlagOutput         = 1 << 3
	gpioV2LineAttrIDOutputValues = 2

	// _IOWR(0xB4, 0x07, struct gpio_v2_line_request) and
	// _IOWR(0xB4, 0x0F, struct gpio_v2_line_values).
	gpioV2GetLineIoctl       uintptr = 0xC250B407
	gpioV2LineSetValuesIoctl uintptr = 0xC010B40F
)

type gpioV2LineAttribute struct {
	id      uint32
	padding uint32
	value   uint64
}

type gpioV2LineConfigAttribute struct {
	attr gpioV2LineAttribute
	mask uint64
}

type gpioV2LineConfig struct {
	flags    uint64
	numAttrs uint32
	padding  [5]uint32
	attrs    [gpioV2LineNumAttrsMax]gpioV2LineConfigAttribute
}

type gpioV2LineRequest struct {
	offsets         [gpioV2LinesMax]uint32
	consumer        [gpioMaxNameSize]byte
	config          gpioV2LineConfig
	numLines        uint32
	eventBufferSize uint32
	padding         [5]uint32
	fd              int32
}

type gpioV2LineValues struct {
	bits uint64
	mask uint64
}

// findLine returns the character device and line offset of the line the
// kernel names name, after host.Init; ok is false if no chip has it.
func findLine(name string) (chip string, num int, ok bool) {
	for _, c := range gpioioctl.Chips {
		if l := c.ByName(name); l != nil {
			return c.Path(), l.Number(), true
		}
	}
	return "", 0, false
}

// openLineOut requests the line called name as an output at level. It
// returns nil, nil if no GPIO character device has such a line (the
// caller then uses periph's pin).
func openLineOut(name string, level gpio.Level) (gpio.PinOut, error) {
	chip, num, ok := findLine(name)
	if !ok {
		return nil, nil
	}
	f, err := os.OpenFile(chip, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if cerr := chipError(chip, err); cerr != nil {
			return nil, cerr
		}
		return nil, fmt.Errorf("%w: open %s: %w", ErrGPIO, chip, err)
	}
	defer f.Close()
	var req gpioV2LineRequest
	req.offsets[0] = uint32(num)
	req.numLines = 1
	copy(req.consumer[:gpioMaxNameSize-1], "wicketd")
	req.config.flags = gpioV2LineFlagOutput
	req.config.numAttrs = 1
	req.config.attrs[0].attr.id = gpioV2LineAttrIDOutputValues
	req.config.attrs[0].mask = 1
	if level {
		req.config.attrs[0].attr.value = 1
	}
	if err := ioctl(f.Fd(), gpioV2GetLineIoctl, unsafe.Pointer(&req)); err != nil {
		return nil, fmt.Errorf("%w: request %s (line %d of %s) as output: %w", ErrGPIO, name, num, chip, err)
	}
	return &lineOut{name: name, chip: chip, num: num, fd: int(req.fd), level: level}, nil
}

func ioctl(fd uintptr, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(arg))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		default:
			return errno
		}
	}
}

// Out sets the line's level.
func (l *lineOut) Out(level gpio.Level) error {
	if l.fd < 0 {
		return fmt.Errorf("%s: line released", l.name)
	}
	v := gpioV2LineValues{mask: 1}
	if level {
		v.bits = 1
	}
	if err := ioctl(uintptr(l.fd), gpioV2LineSetValuesIoctl, unsafe.Pointer(&v)); err != nil {
		return err
	}
	l.level = level
	return nil
}

// Halt releases the line; the kernel keeps its last level.
func (l *lineOut) Halt() error {
	if l.fd < 0 {
		return nil
	}
	err := unix.Close(l.fd)
	l.fd = -1
	return err
}

func (l *lineOut) String() string   { return fmt.Sprintf("%s(%s:%d)", l.name, l.chip, l.num) }
func (l *lineOut) Name() string     { return l.name }
func (l *lineOut) Number() int      { return l.num }
func (l *lineOut) Function() string { return "Out/" + l.level.String() }

// PWM is not offered by the character device.
func (l *lineOut) PWM(gpio.Duty, physic.Frequency) error {
	return fmt.Errorf("%s: PWM not supported on a GPIO character device line", l.name)
}
