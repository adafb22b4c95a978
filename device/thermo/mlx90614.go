package thermo

import (
	"context"
	"fmt"
	"math"

	"periph.io/x/conn/v3/i2c"
)

// MLX90614 registers (RAM, read with the SMBus "read word" command whose
// command byte is the address) and limits, from the Melexis datasheet.
const (
	// MLXAddr is the factory SMBus address.
	MLXAddr = 0x5A
	// RegAmbient (Ta) and RegObject (Tobj1) hold kelvin in units of
	// 0.02 K; bit 15 set means an error.
	RegAmbient = 0x06
	RegObject  = 0x07
	// The sensor's specified object range, °C.
	mlxObjectMin = -70.01
	mlxObjectMax = 382.19
	mlxErrorFlag = 0x8000
)

// MLX90614 reads an MLX90614 on an I²C bus.
type MLX90614 struct {
	dev  i2c.Dev
	corr Correction
}

// NewMLX90614 uses the sensor at addr (MLXAddr if 0) on bus.
func NewMLX90614(bus i2c.Bus, addr uint16, corr Correction) (*MLX90614, error) {
	if corr.Emissivity < 0 || corr.Emissivity > 1 {
		return nil, fmt.Errorf("thermometer emissivity %v: want 0 (none) or up to 1", corr.Emissivity)
	}
	if addr == 0 {
		addr = MLXAddr
	}
	return &MLX90614{dev: i2c.Dev{Bus: bus, Addr: addr}, corr: corr}, nil
}

// Close does nothing: the bus belongs to the caller.
func (s *MLX90614) Close() error { return nil }

// Read takes the object temperature, corrects it, and reports a person's
// reading, nothing, or a fault.
func (s *MLX90614) Read(ctx context.Context) (float64, bool, error) {
	obj, err := s.readKelvin(RegObject)
	if err != nil {
		return 0, false, err
	}
	if obj-273.15 < mlxObjectMin || obj-273.15 > mlxObjectMax {
		return 0, false, fmt.Errorf("%w: object %.2f °C outside the sensor's range", ErrFault, obj-273.15)
	}
	if e := s.corr.Emissivity; e > 0 && e < 1 {
		amb, err := s.readKelvin(RegAmbient)
		if err != nil {
			return 0, false, err
		}
		// The sensor sees εT⁴ + (1-ε)Ta⁴ of a surface of emissivity ε at
		// temperature T in surroundings at Ta (Stefan-Boltzmann).
		t4 := (math.Pow(obj, 4) - (1-e)*math.Pow(amb, 4)) / e
		if t4 <= 0 {
			return 0, false, fmt.Errorf("%w: emissivity correction failed (object %.2f K, ambient %.2f K)", ErrFault, obj, amb)
		}
		obj = math.Pow(t4, 0.25)
	}
	return check(obj - 273.15 + s.corr.Offset)
}

// readKelvin reads one RAM register: command, then LSB, MSB and the PEC.
func (s *MLX90614) readKelvin(reg byte) (float64, error) {
	var r [3]byte
	if err := s.dev.Tx([]byte{reg}, r[:]); err != nil {
		return 0, fmt.Errorf("%w: i2c read of register %#02x: %v", ErrFault, reg, err)
	}
	addr := byte(s.dev.Addr << 1)
	if pec := CRC8([]byte{addr, reg, addr | 1, r[0], r[1]}); pec != r[2] {
		return 0, fmt.Errorf("%w: PEC %#02x, computed %#02x (register %#02x)", ErrFault, r[2], pec, reg)
	}
	raw := uint16(r[0]) | uint16(r[1])<<8
	if raw&mlxErrorFlag != 0 {
		return 0, fmt.Errorf("%w: sensor error flag in register %#02x (%#04x)", ErrFault, reg, raw)
	}
	return float64(raw) * 0.02, nil
}

// CRC8 is the SMBus packet error code: CRC-8 with polynomial x⁸+x²+x+1
// (0x07), initial value 0, over every byte of the transaction including
// the address bytes.
func CRC8(b []byte) byte {
	var crc byte
	for _, c := range b {
		crc ^= c
		for range 8 {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x07
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// MLXWord returns the three bytes an MLX90614 at addr answers for register
// reg holding kelvin, PEC included: for tests and simulators.
func MLXWord(addr uint16, reg byte, kelvin float64) []byte {
	raw := uint16(math.Round(kelvin / 0.02))
	a := byte(addr << 1)
	lsb, msb := byte(raw), byte(raw>>8)
	return []byte{lsb, msb, CRC8([]byte{a, reg, a | 1, lsb, msb})}
}
