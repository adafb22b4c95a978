package display

import (
	"encoding/json"
	"net/http"
	"time"
)

// maxOrderBody bounds the body of POST /clock-reset: a signed order
// naming a few gates is under 1 KiB; one naming every gate of a large
// fleet stays under 1 MiB, a third more in base64.
const maxOrderBody = 2 << 20

// ClockResetRequest is the body of POST /clock-reset: the signed order,
// as the file wicketctl clock-reset sign wrote (base64 in JSON).
type ClockResetRequest struct {
	Order []byte `json:"order"`
}

// ClockResetAnswer is what OnClockReset answers and POST /clock-reset
// returns: Result is applied (the floor is now Floor), stale (this very
// order was acted on before) or, with OK false, why it was refused.
type ClockResetAnswer struct {
	OK      bool      `json:"ok"`
	Result  string    `json:"result"`
	Serial  uint64    `json:"serial,omitempty"`
	Floor   time.Time `json:"floor,omitzero"`
	Clock   time.Time `json:"clock,omitzero"`
	Trusted bool      `json:"trusted"`
	Error   string    `json:"error,omitempty"`
}

// serveClockReset hands a signed clock-floor reset to OnClockReset (POST
// /clock-reset, admin API) and answers its ClockResetAnswer: 200 when the
// gate acted on it or had already, 409 when it refused it (the order is
// forged, expired, replayed or for other gates; nothing changed).
func (s *Server) serveClockReset(w http.ResponseWriter, r *http.Request) {
	if !isJSON(w, r) {
		return
	}
	var req ClockResetRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxOrderBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || len(req.Order) == 0 {
		jsonError(w, http.StatusBadRequest, `body must be {"order": "<the signed order, base64>"}`)
		return
	}
	if s.OnClockReset == nil {
		jsonError(w, http.StatusServiceUnavailable, "clock reset is not wired")
		return
	}
	ans := s.OnClockReset(req.Order, requester(r))
	w.Header().Set("Content-Type", "application/json")
	if !ans.OK {
		w.WriteHeader(http.StatusConflict)
	}
	_ = json.NewEncoder(w).Encode(ans)
}
