package verifier

// Deny returns d turned into a denial for r, with r's message and detail:
// how a rule applied after Verify (the gate's temperature screening,
// anti-passback, a fault of the gate itself) denies, exactly as Verify
// does. Everything else in d (voucher, colour, alert, warnings) stays.
func (d Decision) Deny(r Reason, detail string) Decision { return deny(&d, r, detail) }
