package decoder

// Text marshalling, so JSON and YAML show names instead of numbers.

func (c Colour) MarshalText() ([]byte, error)   { return []byte(c.String()), nil }
func (k Kind) MarshalText() ([]byte, error)     { return []byte(k.String()), nil }
func (c Class) MarshalText() ([]byte, error)    { return []byte(c.String()), nil }
func (t TestKind) MarshalText() ([]byte, error) { return []byte(t.String()), nil }
func (r TestResult) MarshalText() ([]byte, error) {
	return []byte(r.String()), nil
}
func (a Alg) MarshalText() ([]byte, error) { return []byte(a.String()), nil }
