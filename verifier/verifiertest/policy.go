package verifiertest

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"wicket/verifier"
)

// ParsePolicy reads a policy YAML document over verifier.DefaultPolicy,
// strictly (an unknown key is an error naming its line), and validates
// it: the policy section of wicketd.yaml as the configuration reads it,
// for tests that write policies as text.
func ParsePolicy(data []byte) (*verifier.Policy, error) {
	p := verifier.DefaultPolicy()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}
