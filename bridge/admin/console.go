package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The web console (Config.Console) is served under /ui/ on the admin
// listener. It is a set of static pages that call the JSON API from the
// browser, so it can do nothing the API does not allow.
//
// Authentication is the API's: with no token (a loopback listener) it is
// open; with a token, a page or API call needs the bearer header or the
// session cookie that POST /ui/login sets after checking the token. The
// cookie holds an HMAC of the token, not the token; it is HttpOnly,
// SameSite=Strict, and Secure when the request came over TLS (directly or
// through a proxy that says so). A write authorised by the cookie must
// also carry the ConsoleHeader, which a page of another origin cannot add
// without a CORS preflight this server never grants; browserGuard refuses
// cross-site writes besides. Static assets (CSS, scripts) are served to
// anyone: they hold no data.
const (
	SessionCookie = "sagabridge_console"
	ConsoleHeader = "X-Sagabridge-Console"
	sessionMaxAge = 12 * time.Hour
)

// sessionValue is what the session cookie holds for the current token.
func (s *Server) sessionValue() string {
	mac := hmac.New(sha256.New, []byte(s.cfg.Token))
	mac.Write([]byte("sagabridge console session v1"))
	return hex.EncodeToString(mac.Sum(nil))
}

// sessionOK reports whether r carries a valid session cookie.
func (s *Server) sessionOK(r *http.Request) bool {
	c, err := r.Cookie(SessionCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.sessionValue())) == 1
}

func (s *Server) mountConsole(mux *http.ServeMux) {
	files := s.cfg.Console
	serve := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r2 := r.Clone(r.Context())
			r2.URL.Path = name
			consoleHeaders(w)
			files.ServeHTTP(w, r2)
		})
	}
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusSeeOther))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusSeeOther))
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		consoleHeaders(w)
		files.ServeHTTP(w, r)
	})))
	mux.Handle("GET /ui/login", serve("/login.html"))
	mux.HandleFunc("POST /ui/login", s.login)
	mux.HandleFunc("POST /ui/logout", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	})
	mux.Handle("GET /ui/", http.StripPrefix("/ui", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		consoleHeaders(w)
		files.ServeHTTP(w, r)
	})))
}

// consoleHeaders keep the pages from loading anything but their own
// files and from being framed.
func consoleHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" makes a form post send Origin: null, which browserGuard refuses
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if s.cfg.Token == "" {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) != 1 {
		s.log.Warn("console login refused: wrong token", zap.String("remote", r.RemoteAddr))
		http.Redirect(w, r, "/ui/login?failed=1", http.StatusSeeOther)
		return
	}
	secure := r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: s.sessionValue(), Path: "/", MaxAge: int(sessionMaxAge.Seconds()),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}
