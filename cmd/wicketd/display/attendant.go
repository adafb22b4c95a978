package display

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
)

// attendantRequest is the body of POST /attendant.
type attendantRequest struct {
	Seq    uint64 `json:"seq"`
	Action string `json:"action"`
}

// serveAttendant takes an attendant's answer to a prompt. A browser
// cannot send a cross-site application/json POST without a preflight, and
// the server answers no preflight; the Origin and Sec-Fetch-Site checks
// refuse what a browser marks as coming from elsewhere.
func (s *Server) serveAttendant(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		jsonError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		jsonError(w, http.StatusUnsupportedMediaType, "content type must be application/json")
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

// sameOrigin reports whether the browser says r comes from the page
// itself. Requests without either header (curl, tests) pass.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host && (u.Scheme == "http" || u.Scheme == "https")
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
