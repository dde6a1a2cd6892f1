package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/console"
	"github.com/sagabridge/sagabridge/bridge/sagaview"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
)

// TestConsoleAuth: off loopback the console and its API need the token,
// as a bearer header or as the session cookie the login sets (which holds
// no token, is HttpOnly and SameSite=Strict, and Secure behind TLS); a
// write on the cookie needs the console header and the same origin.
func TestConsoleAuth(t *testing.T) {
	s := startStack(t, t.TempDir(), false)
	o := simulated.Order{OrderID: "ui-1", Amount: 7, Quantity: 1, SKU: "sku-1"}
	if err := simulated.PublishOrder(s.client.Publisher(), order.OrdersPlaced, "evt-ui-1", o); err != nil {
		t.Fatal(err)
	}
	const token = "s3cret-token"
	srv, err := admin.New(admin.Config{
		Listen: "0.0.0.0:0", Token: token, Workflows: s.bridge.Engine(), Sagas: s.bridge.Sagas(),
		DeadLetters: s.bridge.DeadLetters(), Migration: s.bridge.MigrationReport, Console: console.Handler(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, hdr map[string]string, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	body := func(r *http.Response) string { b, _ := io.ReadAll(r.Body); return string(b) }

	// Without the token: the pages send to the login, the API refuses.
	for _, p := range []string{"/ui/", "/ui/saga.html?id=order-ui-1", "/ui/dlq.html"} {
		if r := do(http.MethodGet, p, nil, ""); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/ui/login" {
			t.Errorf("GET %s without the token: %d %s", p, r.StatusCode, r.Header.Get("Location"))
		}
	}
	for _, p := range []string{"/v1/workflows", "/v1/workflows/order-ui-1/history", "/v1/dlq", "/v1/migration/report"} {
		if r := do(http.MethodGet, p, nil, ""); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d", p, r.StatusCode)
		}
	}
	if r := do(http.MethodGet, "/ui/login", nil, ""); r.StatusCode != http.StatusOK || !strings.Contains(body(r), `name="token"`) ||
		!strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("login page: %d %v", r.StatusCode, r.Header)
	}
	if r := do(http.MethodGet, "/ui/static/style.css", nil, ""); r.StatusCode != http.StatusOK {
		t.Errorf("style.css: %d", r.StatusCode)
	}

	// The login.
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if r := do(http.MethodPost, "/ui/login", form, url.Values{"token": {"wrong"}}.Encode()); r.Header.Get("Location") != "/ui/login?failed=1" || len(r.Cookies()) != 0 {
		t.Errorf("wrong token: %s %v", r.Header.Get("Location"), r.Cookies())
	}
	crossSite := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
	if r := do(http.MethodPost, "/ui/login", crossSite, url.Values{"token": {token}}.Encode()); r.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login: %d", r.StatusCode)
	}
	r := do(http.MethodPost, "/ui/login", form, url.Values{"token": {token}}.Encode())
	var session *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == admin.SessionCookie {
			session = c
		}
	}
	if r.Header.Get("Location") != "/ui/" || session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode ||
		session.Secure || strings.Contains(session.Value, token) {
		t.Fatalf("login: %s %+v", r.Header.Get("Location"), session)
	}
	tls := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-Proto": "https"}
	if r := do(http.MethodPost, "/ui/login", tls, url.Values{"token": {token}}.Encode()); len(r.Cookies()) != 1 || !r.Cookies()[0].Secure {
		t.Errorf("login behind TLS: %+v", r.Cookies())
	}
	cookie := map[string]string{"Cookie": session.Name + "=" + session.Value}
	if r := do(http.MethodGet, "/ui/", cookie, ""); r.StatusCode != http.StatusOK || !strings.Contains(body(r), "Saga instances") {
		t.Errorf("console with the session: %d", r.StatusCode)
	}
	if r := do(http.MethodGet, "/ui/", map[string]string{"Cookie": session.Name + "=forged"}, ""); r.StatusCode != http.StatusSeeOther {
		t.Errorf("console with a forged session: %d", r.StatusCode)
	}
	ctx := context.Background()
	cl, _ := admin.NewClient(ts.URL, token)
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := cl.List(ctx, sagaview.Filter{}, false)
		if err == nil && len(l.Instances) == 1 && l.Instances[0].InstanceID == "order-ui-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list with the bearer token: %+v %v", l, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := do(http.MethodGet, "/v1/workflows", cookie, ""); r.StatusCode != http.StatusOK || !strings.Contains(body(r), "order-ui-1") {
		t.Errorf("list with the session: %d", r.StatusCode)
	}

	// Writes on the session need the console header, and the same origin.
	path := "/v1/workflows/order-ui-1/suspend"
	if r := do(http.MethodPost, path, cookie, `{"reason":"x"}`); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("write on the session without the console header: %d", r.StatusCode)
	}
	withHeader := map[string]string{"Cookie": cookie["Cookie"], admin.ConsoleHeader: "1", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
	if r := do(http.MethodPost, path, withHeader, `{"reason":"x"}`); r.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site write on the session: %d", r.StatusCode)
	}
	withHeader["Origin"], withHeader["Sec-Fetch-Site"] = ts.URL, "same-origin"
	if r := do(http.MethodPost, path, withHeader, `{"reason":"from the console"}`); r.StatusCode != http.StatusNoContent {
		t.Errorf("same-origin write on the session: %d %s", r.StatusCode, body(r))
	}
	if st, err := cl.Get(ctx, "order-ui-1"); err != nil || st.RuntimeStatus != "SUSPENDED" {
		t.Errorf("after the suspend: %+v %v", st, err)
	}
	if r := do(http.MethodPost, "/ui/logout", map[string]string{"Cookie": cookie["Cookie"]}, ""); r.StatusCode != http.StatusSeeOther ||
		len(r.Cookies()) != 1 || r.Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout: %d %+v", r.StatusCode, r.Cookies())
	}
	if r := do(http.MethodGet, "/v1/migration/report?since=bogus", map[string]string{"Authorization": "Bearer " + token}, ""); r.StatusCode != http.StatusBadRequest {
		t.Errorf("migration report with a bad window: %d", r.StatusCode)
	}
	if r := do(http.MethodGet, "/v1/migration/report?since=1h", map[string]string{"Authorization": "Bearer " + token}, ""); r.StatusCode != http.StatusOK || !strings.Contains(body(r), `"sagas"`) {
		t.Errorf("migration report: %d", r.StatusCode)
	}
	if r := do(http.MethodGet, "/v1/dlq/42", map[string]string{"Authorization": "Bearer " + token}, ""); r.StatusCode != http.StatusNotFound {
		t.Errorf("a missing dead letter: %d", r.StatusCode)
	}
	if r := do(http.MethodPost, "/v1/dlq/replay", map[string]string{"Authorization": "Bearer " + token}, `{}`); r.StatusCode != http.StatusBadRequest {
		t.Errorf("a replay that names nothing: %d", r.StatusCode)
	}
}
