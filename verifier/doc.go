// Package verifier decides, offline, whether a scanned code lets its holder
// through.
//
// It checks a voucher against the signed key set (kid, algorithm, validity,
// allowed kinds), the revocation and colour-override statements, a trusted
// clock with a floor, and the venue's policy, and returns a Decision: allow
// or not, a typed Reason, the effective colour and a short message in
// Chinese and English. A denied voucher is a Decision, never an error.
// Verify is safe for concurrent use; trust data and policy can be swapped
// while it runs.
package verifier
