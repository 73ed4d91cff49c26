package kfp

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
)

// maxResponse bounds what is read from a response: an upload_version
// answer carries the whole pipeline spec (uploads are capped at 32 MiB).
const maxResponse = 64 << 20

// call is one API request.
type call struct {
	method string
	// path is below /apis/v2beta1, already escaped: "/runs/ID:terminate".
	path        string
	query       url.Values
	body        []byte
	contentType string
	// write selects the longer timeout (uploads, creates).
	write bool
}

// do sends a call and decodes a JSON answer into out (when not nil).
func (c *Client) do(ctx context.Context, cl call, out any) error {
	apiPath := apiPrefix + cl.path
	u := *c.base
	u.RawPath = c.base.EscapedPath() + apiPath
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return fmt.Errorf("build request path %q: %w", apiPath, err)
	}
	u.Path = p
	u.RawQuery = ""
	if len(cl.query) > 0 {
		u.RawQuery = cl.query.Encode()
	}
	timeout := c.readTO
	if cl.write {
		timeout = c.writeTO
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(rctx, cl.method, u.String(), body)
	if err != nil {
		return fmt.Errorf("build request %s %s: %w", cl.method, apiPath, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if cl.body != nil {
		ct := cl.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	secrets, err := c.authorize(req)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", timeout)
		}
		return &NetworkError{Host: c.host, Method: cl.method, Path: apiPath, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	c.log.DebugContext(ctx, "kfp request", "method", cl.method, "path", apiPath,
		"status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &NetworkError{Host: c.host, Method: cl.method, Path: apiPath, Err: fmt.Errorf("read answer: %w", err)}
	}
	if len(data) > maxResponse {
		return fmt.Errorf("KFP at %s: %s %s: answer larger than %d MiB", c.host, cl.method, apiPath, maxResponse>>20)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		e := c.newAPIError(cl.method, apiPath, resp, data, secrets)
		if e.Trace != "" {
			c.log.DebugContext(ctx, "kfp error details", "method", cl.method, "path", apiPath, "error_details", e.Trace)
		}
		return e
	}
	text := bytes.TrimSpace(data)
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	if strings.Contains(ct, "text/html") || looksHTML(string(text)) {
		// A proxy that followed a redirect itself, or a login page served
		// with 200.
		return c.newAPIError(cl.method, apiPath, resp, data, secrets)
	}
	if out == nil {
		return nil
	}
	if len(text) == 0 {
		text = []byte("{}")
	}
	if err := json.Unmarshal(text, out); err != nil {
		return &APIError{Host: c.host, Method: cl.method, Path: apiPath, StatusCode: resp.StatusCode,
			Message: "the answer is not the expected JSON: " + redact(snippet(string(text), 200), secrets),
			Detail:  err.Error()}
	}
	return nil
}

// authorize sets the credential headers and returns the secret values that
// must never appear in messages. The token file is read on every request:
// the kubelet rotates projected service-account tokens.
func (c *Client) authorize(req *http.Request) ([]string, error) {
	var secrets []string
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("read KFP token file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return nil, fmt.Errorf("KFP token file %s is empty", c.tokenFile)
		}
		if strings.ContainsAny(tok, "\r\n") {
			return nil, fmt.Errorf("KFP token file %s holds more than one line", c.tokenFile)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		secrets = append(secrets, tok)
	}
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
		secrets = append(secrets, c.cookie)
		for _, part := range strings.Split(c.cookie, ";") {
			if _, v, ok := strings.Cut(part, "="); ok {
				secrets = append(secrets, strings.TrimSpace(v))
			}
		}
	}
	if c.userID != "" {
		req.Header.Set(UserIDHeader, c.userID)
	}
	return secrets, nil
}

// getJSON is a GET decoded into out.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, call{method: http.MethodGet, path: path, query: q}, out)
}

// postJSON sends in as a bare JSON body (never wrapped) and decodes out.
func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(in); err != nil {
		return fmt.Errorf("encode %s body: %w", path, err)
	}
	return c.do(ctx, call{method: http.MethodPost, path: path, body: buf.Bytes(), write: true}, out)
}
