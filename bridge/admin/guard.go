package admin

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// browserGuard refuses what a web page can make a browser send to this
// server on its user's behalf; the CLI and curl send nothing it refuses.
// It wraps every endpoint, before the bearer token is looked at.
//
//   - Host. When hosts is not empty, the Host header must name one of them
//     (any port). A page of evil.example whose name is rebound to 127.0.0.1
//     reaches the server with Host: evil.example and gets 421, so it reads
//     neither workflows nor metrics. On a loopback listener the loopback
//     names are always allowed; off loopback the bearer token does this
//     job, and hosts lists the names only if the operator configures them.
//   - Cross-site writes. A POST, PUT, PATCH or DELETE with an Origin other
//     than the server's own (scheme://Host), or with Sec-Fetch-Site other
//     than same-origin or none, gets 403. Browsers send these headers on
//     every cross-origin write, including the form and text/plain ones
//     that need no CORS preflight.
func browserGuard(next http.Handler, hosts []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(hosts) > 0 && !slices.Contains(hosts, hostOnly(r.Host)) && !isLoopbackIP(hostOnly(r.Host), hosts) {
			writeJSON(w, http.StatusMisdirectedRequest, apiError{
				Error: "unexpected Host header: this server answers to " + strings.Join(hosts, ", ") + " (admin.hosts)",
				Kind:  KindForbidden,
			})
			return
		}
		if writes(r.Method) {
			if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
				writeJSON(w, http.StatusForbidden, apiError{Error: "cross-site request refused (Sec-Fetch-Site: " + site + ")", Kind: KindForbidden})
				return
			}
			if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r) {
				writeJSON(w, http.StatusForbidden, apiError{Error: "cross-origin request refused (Origin is not this server)", Kind: KindForbidden})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allowedHosts are the Host names a server on listen answers to: the
// loopback names on a loopback listener, plus the configured ones.
func allowedHosts(listen string, configured []string) []string {
	var out []string
	if IsLoopback(listen) {
		out = append(out, "localhost", "127.0.0.1", "::1")
	}
	for _, h := range configured {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// isLoopbackIP lets any loopback address in (127.0.0.2, say) when the
// loopback names are allowed: no page can be served from one but a local
// one.
func isLoopbackIP(host string, hosts []string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && slices.Contains(hosts, "127.0.0.1")
}

// hostOnly is the host of a Host header, lower case, without port or
// IPv6 brackets.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}

func writes(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// sameOrigin reports whether origin is this server as the request reached
// it.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}
