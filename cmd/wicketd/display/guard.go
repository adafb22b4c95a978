package display

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// checkHost refuses (421) a request whose Host header does not name the
// gate: a configured name, localhost, or the IP address the request
// arrived at. A DNS-rebinding page reaches the gate under its own name,
// which is none of these; an IP literal can't be rebound.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r) {
			s.refuse(w, r, http.StatusMisdirectedRequest, "unknown_host", "unknown host: reach the gate by its address, localhost or a name listed in http.hosts")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// normalHost is a host name as compared: lower case, without the port,
// the brackets of an IPv6 literal and a final dot.
func normalHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func (s *Server) hostAllowed(r *http.Request) bool {
	host := normalHost(r.Host)
	switch {
	case host == "":
		return false
	case host == "localhost", s.hosts[host]:
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lap, err := netip.ParseAddrPort(local.String())
	return err == nil && lap.Addr().Unmap().WithZone("") == ip.WithZone("")
}

// checkAdmin lets through only requests that carry a credential and that,
// if a browser says where they come from, come from the admin page
// itself. Without a credential the answer is 401 with a basic-auth
// challenge, so a browser asks the attendant for the token.
func (s *Server) checkAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authenticated(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="wicket gate admin", charset="UTF-8"`)
			s.refuse(w, r, http.StatusUnauthorized, "no_credential", "credential required: the admin token (Authorization: Bearer TOKEN) or a client certificate")
			return
		}
		if !sameOrigin(r) {
			s.refuse(w, r, http.StatusForbidden, "cross_origin", "cross-origin request refused")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticated reports whether r carries the admin token (as a bearer
// token or the password of basic authentication, compared in constant
// time) or a client certificate that verified against the admin API's
// client CAs.
func (s *Server) authenticated(r *http.Request) bool {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	if len(s.cfg.AdminToken) == 0 {
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, got, ok = r.BasicAuth()
	}
	if !ok || got == "" {
		return false
	}
	// Hashes of equal length: the comparison tells nothing of the
	// token's length either.
	h := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

// sameOrigin reports whether the browser says r comes from the page
// itself: no Sec-Fetch-Site other than same-origin or none (typed in),
// and an Origin, if any, of this scheme and Host. Requests without either
// header (the CLI, curl with the token) pass: they are not a browser
// carrying the attendant's credential for another site.
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
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u, err := url.Parse(o)
	return err == nil && u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}

// refuseLogEvery is how often, at most, a refusal of one reason is logged
// at WARN: a scanner of the station's network can send thousands.
const refuseLogEvery = 10 * time.Second

// refuse answers a refused request, counts it in
// wicket_http_refused_total and logs it, one line per reason per
// refuseLogEvery with the number held back.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, reason, msg string) {
	s.metrics.Refused(reason)
	s.refusedMu.Lock()
	ok, held := s.refusedLog.Allow(reason, s.cfg.Clock.Now())
	s.refusedMu.Unlock()
	if ok {
		s.log.Warn("http request refused", "reason", reason, "from", source(r).String(), "host", r.Host, "path", r.URL.Path, "suppressed", held)
	}
	jsonError(w, code, msg)
}
