package main

import (
	"fmt"
	"os"

	"wicket/cmd/wicketd/config"
	"wicket/decoder"
	"wicket/verifier"
)

// loadRoots reads the pinned root keys a config names.
func loadRoots(cfg *config.Config) (verifier.RootKeys, error) {
	var roots verifier.RootKeys
	for _, p := range cfg.Trust.RootKeys {
		k, err := verifier.ReadPublicKeyFile(cfg.Path(p))
		if err != nil {
			return nil, fmt.Errorf("trust.root_keys: %s: %w", p, err)
		}
		roots = append(roots, k)
	}
	return roots, nil
}

// readTrustDoc reads a signed trust document file, bounded.
func readTrustDoc(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > decoder.MaxTrustDocLen {
		return nil, fmt.Errorf("%s: %d bytes, over %d", path, st.Size(), decoder.MaxTrustDocLen)
	}
	return os.ReadFile(path)
}

func readKeySet(roots verifier.RootKeys, path string) (*verifier.KeySet, error) {
	b, err := readTrustDoc(path)
	if err != nil {
		return nil, fmt.Errorf("trust.key_set: %w", err)
	}
	ks, err := roots.ParseKeySet(b)
	if err != nil {
		return nil, fmt.Errorf("trust.key_set: %s: %w", path, err)
	}
	return ks, nil
}

func readBatch(roots verifier.RootKeys, path string) (*verifier.Batch, error) {
	b, err := readTrustDoc(path)
	if err != nil {
		return nil, fmt.Errorf("trust.batches: %w", err)
	}
	batch, err := roots.ParseBatch(b)
	if err != nil {
		return nil, fmt.Errorf("trust.batches: %s: %w", path, err)
	}
	return batch, nil
}

// loadDCCPseudonymKey gives v the fleet's DCC pseudonym key, if the
// config names one.
func loadDCCPseudonymKey(cfg *config.Config, v *verifier.Verifier) error {
	if cfg.Trust.DCCPseudonymKey == "" {
		return nil
	}
	b, err := os.ReadFile(cfg.Path(cfg.Trust.DCCPseudonymKey))
	if err != nil {
		return fmt.Errorf("trust.dcc_pseudonym_key: %w", err)
	}
	if err := v.SetDCCPseudonymKey(b); err != nil {
		return fmt.Errorf("trust.dcc_pseudonym_key: %w; the authority makes one with: wicketctl dcc pseudonym -new -secret FILE", err)
	}
	return nil
}

// installTrust installs the stored key set, then the config's key set
// file if it is newer, then the config's batch files, through the same
// checks as data from the broker, from the files cfg names. A file that
// does not verify is an error (a technician must see it); one older than
// the installed data is skipped. Files before the failing one stay
// installed: they verified, as anything from the broker would.
func (d *daemon) installTrust(cfg *config.Config) error {
	if err := d.trust.LoadStored(); err != nil {
		return err
	}
	if cfg.Trust.KeySet != "" {
		path := cfg.Path(cfg.Trust.KeySet)
		doc, err := readTrustDoc(path)
		if err != nil {
			return fmt.Errorf("trust.key_set: %w", err)
		}
		if _, err := d.trust.KeySet(doc, path); err != nil {
			return fmt.Errorf("trust.key_set: %w", err)
		}
	}
	batches, err := cfg.BatchFiles()
	if err != nil {
		return err
	}
	for _, path := range batches {
		doc, err := readTrustDoc(path)
		if err != nil {
			return fmt.Errorf("trust.batches: %w", err)
		}
		if _, err := d.trust.Batch(doc, path); err != nil {
			return fmt.Errorf("trust.batches: %w", err)
		}
	}
	if as := d.trust.Stats().Assembling; as != nil && len(batches) > 0 {
		return fmt.Errorf("trust.batches: snapshot %d has %d parts, the files hold %d of them", as.Version, as.Of, as.Have)
	}
	return nil
}
