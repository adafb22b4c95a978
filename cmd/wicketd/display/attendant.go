package display

import (
	"encoding/json"
	"mime"
	"net/http"
)

// attendantRequest is the body of POST /attendant.
type attendantRequest struct {
	Seq    uint64 `json:"seq"`
	Action string `json:"action"`
}

// serveAttendant takes an attendant's answer to a prompt, behind
// checkAdmin. A browser cannot send a cross-site application/json POST
// without a preflight, and the server answers no preflight.
func (s *Server) serveAttendant(w http.ResponseWriter, r *http.Request) {
	if !isJSON(w, r) {
		return
	}
	var req attendantRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAttendantBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		jsonError(w, http.StatusBadRequest, "body must be {\"seq\": N, \"action\": \"confirm\"|\"reject\"}")
		return
	}
	if dec.More() {
		jsonError(w, http.StatusBadRequest, "one JSON object expected")
		return
	}
	var confirm bool
	switch req.Action {
	case "confirm":
		confirm = true
	case "reject":
	default:
		jsonError(w, http.StatusBadRequest, "action must be confirm or reject")
		return
	}
	if req.Seq == 0 {
		jsonError(w, http.StatusBadRequest, "seq must be a scan's sequence number")
		return
	}
	if s.OnAttendant == nil {
		jsonError(w, http.StatusServiceUnavailable, "attendant actions are not wired")
		return
	}
	if err := s.OnAttendant(req.Seq, confirm); err != nil {
		s.log.Warn("attendant action refused", "seq", req.Seq, "action", req.Action, "err", err)
		jsonError(w, http.StatusConflict, "action refused")
		return
	}
	s.log.Info("attendant action", "seq", req.Seq, "action", req.Action)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{\"ok\":true}\n"))
}

// isJSON answers 415 unless r's body is declared application/json.
func isJSON(w http.ResponseWriter, r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		jsonError(w, http.StatusUnsupportedMediaType, "content type must be application/json")
		return false
	}
	return true
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}{false, msg})
}
