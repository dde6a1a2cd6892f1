package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sagabridge/sagabridge/bridge/sagaview"
	"github.com/sagabridge/sagabridge/engine"
)

// ErrUnreachable means no admin server answered: most likely no worker runs
// at that address.
var ErrUnreachable = errors.New("admin server unreachable")

// ErrUnauthorized means the server wants a (different) bearer token.
var ErrUnauthorized = errors.New("admin server refused the bearer token")

// ErrBadRequest means the server refused the request as malformed.
var ErrBadRequest = errors.New("bad request")

// Client calls a running worker's admin API. Its workflow methods have the
// signatures and error meanings of *engine.Engine: errors.Is(err,
// engine.ErrNotFound), engine.ErrFinished and engine.ErrUnavailable work.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient points at an admin server: "http://127.0.0.1:9464" or a bare
// host:port.
func NewClient(base, token string) (*Client, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("admin: bad address %q", base)
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), token: token, hc: &http.Client{Timeout: 30 * time.Second}}, nil
}

// BaseURL is the server's URL.
func (c *Client) BaseURL() string { return c.base }

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int
	Kind    string
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Unwrap maps the answer to the engine's errors.
func (e *APIError) Unwrap() error {
	switch e.Kind {
	case KindNotFound:
		return engine.ErrNotFound
	case KindFinished:
		return engine.ErrFinished
	case KindUnavailable:
		return engine.ErrUnavailable
	case KindUnauthorized:
		return ErrUnauthorized
	case KindBadRequest:
		return ErrBadRequest
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 && !(path == "/readyz" && resp.StatusCode == http.StatusServiceUnavailable) {
		var ae apiError
		if json.Unmarshal(data, &ae) != nil || ae.Error == "" {
			ae = apiError{Error: strings.TrimSpace(string(data)), Kind: KindInternal}
			if resp.StatusCode == http.StatusNotFound {
				ae.Error = fmt.Sprintf("%s %s: 404 (is this a sagabridge admin server?)", method, path)
			}
		}
		return &APIError{Status: resp.StatusCode, Kind: ae.Kind, Message: ae.Error}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("admin %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

func wfPath(id string, op ...string) string {
	p := "/v1/workflows/" + url.PathEscape(id)
	for _, o := range op {
		p += "/" + o
	}
	return p
}

// Info returns how to reach the worker's broker and engine.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var out Info
	return out, c.do(ctx, http.MethodGet, "/v1/info", nil, &out)
}

// Ready returns the worker's readiness (not an error when not ready).
func (c *Client) Ready(ctx context.Context) (Readiness, error) {
	var out Readiness
	return out, c.do(ctx, http.MethodGet, "/readyz", nil, &out)
}

// Get returns an instance's status.
func (c *Client) Get(ctx context.Context, instanceID string) (engine.Status, error) {
	d, err := c.Detail(ctx, instanceID)
	return d.Status, err
}

// Detail returns an instance's status and, when the worker knows it, its
// progress.
func (c *Client) Detail(ctx context.Context, instanceID string) (WorkflowDetail, error) {
	var out WorkflowDetail
	return out, c.do(ctx, http.MethodGet, wfPath(instanceID), nil, &out)
}

// Raise delivers an external event; payload is JSON or nil.
func (c *Client) Raise(ctx context.Context, instanceID, eventName string, payload []byte) error {
	return c.do(ctx, http.MethodPost, wfPath(instanceID, "raise"), ControlRequest{EventName: eventName, Payload: payload}, nil)
}

// Terminate stops an instance.
func (c *Client) Terminate(ctx context.Context, instanceID, reason string) error {
	return c.do(ctx, http.MethodPost, wfPath(instanceID, "terminate"), ControlRequest{Reason: reason}, nil)
}

// Suspend pauses an instance.
func (c *Client) Suspend(ctx context.Context, instanceID, reason string) error {
	return c.do(ctx, http.MethodPost, wfPath(instanceID, "suspend"), ControlRequest{Reason: reason}, nil)
}

// Resume continues a suspended instance.
func (c *Client) Resume(ctx context.Context, instanceID, reason string) error {
	return c.do(ctx, http.MethodPost, wfPath(instanceID, "resume"), ControlRequest{Reason: reason}, nil)
}

// Purge deletes a finished instance's state.
func (c *Client) Purge(ctx context.Context, instanceID string) error {
	return c.do(ctx, http.MethodDelete, wfPath(instanceID), nil, nil)
}

// TokenFromEnv reads the bearer token from $SAGABRIDGE_ADMIN_TOKEN_FILE,
// then $SAGABRIDGE_ADMIN_TOKEN; "" when neither is set.
func TokenFromEnv() (string, error) {
	if f := os.Getenv(TokenFileEnv); f != "" {
		return ReadToken(f)
	}
	return strings.TrimSpace(os.Getenv(TokenEnv)), nil
}

// ReadToken reads a token file (surrounding space trimmed).
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token: %s is empty", path)
	}
	return tok, nil
}

// List lists saga instances (GET /v1/workflows); counts asks for the
// counts per status too.
func (c *Client) List(ctx context.Context, f sagaview.Filter, counts bool) (WorkflowList, error) {
	var out WorkflowList
	path := "/v1/workflows"
	if q := ListQuery(f, counts).Encode(); q != "" {
		path += "?" + q
	}
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// History returns an instance's timeline.
func (c *Client) History(ctx context.Context, instanceID string) (sagaview.History, error) {
	var out sagaview.History
	return out, c.do(ctx, http.MethodGet, wfPath(instanceID, "history"), nil, &out)
}

// DeadLetters lists dead letters; query holds the filters of GET /v1/dlq.
func (c *Client) DeadLetters(ctx context.Context, query url.Values) (DeadLetterList, error) {
	var out DeadLetterList
	return out, c.do(ctx, http.MethodGet, "/v1/dlq?"+query.Encode(), nil, &out)
}

// DeadLetterAction replays or purges dead letters (op "replay" or "purge").
func (c *Client) DeadLetterAction(ctx context.Context, op string, a DeadLetterAction) (DeadLetterResult, error) {
	var out DeadLetterResult
	return out, c.do(ctx, http.MethodPost, "/v1/dlq/"+url.PathEscape(op), a, &out)
}
