package display

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"wicket/device/gate"
)

// maxAckBody bounds the body of POST /emergency/ack, which carries nothing
// but an empty JSON object.
const maxAckBody = 256

// serveState answers GET /state (admin API): the gate state the page's
// banners show, as JSON.
func (s *Server) serveState(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.State())
}

// serveStatus answers GET /status (admin API): what OnStatus returns, as
// JSON, for wicketd status beside a running gate; 503 when not wired.
func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	if s.OnStatus == nil {
		jsonError(w, http.StatusServiceUnavailable, "status is not wired")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.OnStatus())
}

// serveAcknowledge ends a latched emergency release (POST /emergency/ack,
// admin API, body {}) and answers an AckResponse; 409 while the emergency
// input is still active: the gate stays free.
func (s *Server) serveAcknowledge(w http.ResponseWriter, r *http.Request) {
	if !isJSON(w, r) {
		return
	}
	var req struct{}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAckBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		jsonError(w, http.StatusBadRequest, "body must be {}")
		return
	}
	if s.OnAcknowledge == nil {
		jsonError(w, http.StatusServiceUnavailable, "emergency acknowledge is not wired")
		return
	}
	ended, err := s.OnAcknowledge(requester(r))
	switch {
	case errors.Is(err, gate.ErrEmergencyActive):
		jsonError(w, http.StatusConflict, "emergency input still active: the gate stays free until the alarm clears")
		return
	case err != nil:
		s.log.Error("emergency acknowledge failed", "err", err)
		jsonError(w, http.StatusInternalServerError, "acknowledge failed: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(AckResponse{OK: true, Ended: ended})
}

// requester says who made an admin request, for the log and the access
// log: "admin API token from 10.0.0.5".
func requester(r *http.Request) string {
	by := "admin API token"
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		// The certificate's fingerprint, not its subject: a subject may
		// be a person's name, which never goes to the log or the records.
		sum := sha256.Sum256(r.TLS.VerifiedChains[0][0].Raw)
		by = "admin API client certificate sha256:" + hex.EncodeToString(sum[:8])
	}
	return by + " from " + source(r).String()
}

// AckResponse is the answer of POST /emergency/ack: Ended says whether
// there was a release to end (false: the gate was in normal operation).
type AckResponse struct {
	OK    bool `json:"ok"`
	Ended bool `json:"ended"`
}
