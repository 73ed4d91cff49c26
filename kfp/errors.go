package kfp

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Sentinels matched by errors.Is on an *APIError.
var (
	// ErrAuthRequired: a 401, a redirect (to a login page) or an HTML page
	// where JSON was expected.
	ErrAuthRequired = errors.New("authentication required")
	// ErrPermissionDenied: a 403 (KFP authorization or Istio RBAC).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNotFound: a 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a 409 (a name already taken).
	ErrConflict = errors.New("already exists")
)

// APIError is an answer from the server (or a proxy in front of it) that
// is not a success. Use errors.As to read the status code, and errors.Is
// with the sentinels above to branch on the kind.
type APIError struct {
	Host   string // the client's base address
	Method string
	Path   string // the API path, "/apis/v2beta1/runs"
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the gRPC code of a google.rpc.Status body (0 when absent).
	Code int
	// Message is the headline: the user-facing message of the body.
	Message string
	// Detail is the longer text (the server's internal error chain), when
	// it says more than Message: one line.
	Detail string
	// Trace is the upload handler's whole error_details, usually a Go stack
	// trace from the server: logged at debug level, never printed.
	Trace string
	// Auth is true when the answer means the request never reached KFP
	// because authentication is missing: a 401, a redirect or a login page.
	Auth bool
	// Location is where a redirect pointed, without its query.
	Location string
}

func (e *APIError) Error() string {
	var b strings.Builder
	switch {
	case e.Auth:
		fmt.Fprintf(&b, "authentication required at %s: %s %s", e.Host, e.Method, e.Path)
	case e.StatusCode == http.StatusForbidden:
		fmt.Fprintf(&b, "permission denied at %s: %s %s", e.Host, e.Method, e.Path)
	default:
		fmt.Fprintf(&b, "KFP at %s: %s %s", e.Host, e.Method, e.Path)
	}
	switch {
	case e.StatusCode >= 300 && e.StatusCode < 400:
		fmt.Fprintf(&b, " was redirected (%d)", e.StatusCode)
		if e.Location != "" {
			fmt.Fprintf(&b, " to %s", e.Location)
		}
		b.WriteString(", a login page: pass a bearer token or a session cookie")
	case e.StatusCode != 0:
		fmt.Fprintf(&b, ": %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Detail != "" && e.Detail != e.Message {
		b.WriteString(" (" + e.Detail + ")")
	}
	return b.String()
}

// Is matches the sentinels of this package.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrAuthRequired:
		return e.Auth
	case ErrPermissionDenied:
		return !e.Auth && e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return !e.Auth && e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return !e.Auth && e.StatusCode == http.StatusConflict
	}
	return false
}

// StatusCode is the HTTP status of an *APIError in err's chain, or 0.
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// NetworkError is a request that got no HTTP answer: the host does not
// resolve, refuses connections, the TLS handshake fails, or the request
// timed out.
type NetworkError struct {
	Host, Method, Path string
	Err                error
}

func (e *NetworkError) Error() string {
	return fmt.Sprintf("cannot reach KFP at %s: %s %s: %v", e.Host, e.Method, e.Path, e.Err)
}

func (e *NetworkError) Unwrap() error { return e.Err }

// IsTransient says whether a request that failed with err may succeed when
// repeated: network errors, 429, and 5xx other than 501. Authentication,
// permission and not-found errors are not transient.
func IsTransient(err error) bool {
	var ne *NetworkError
	if errors.As(err, &ne) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) && !ae.Auth {
		return ae.StatusCode == http.StatusTooManyRequests ||
			(ae.StatusCode >= 500 && ae.StatusCode != http.StatusNotImplemented)
	}
	return false
}

// rpcStatus covers both gateway error shapes: google.rpc.Status (new
// servers) and {error, code, message, details} (grpc-gateway v1), plus the
// upload handler's {error_message, error_details}.
type rpcStatus struct {
	Code         int             `json:"code"`
	Message      string          `json:"message"`
	Error        string          `json:"error"`
	Details      []rpcStatusItem `json:"details"`
	ErrorMessage string          `json:"error_message"`
	ErrorDetails string          `json:"error_details"`
}

type rpcStatusItem struct {
	Type         string `json:"@type"`
	Code         int    `json:"code"`
	Message      string `json:"message"`
	ErrorMessage string `json:"error_message"`
	ErrorDetails string `json:"error_details"`
}

const maxMessage = 1000

// newAPIError decodes a failed answer. secrets are removed from every text
// taken from the body.
func (c *Client) newAPIError(method, path string, resp *http.Response, body []byte, secrets []string) *APIError {
	e := &APIError{Host: c.host, Method: method, Path: path, StatusCode: resp.StatusCode}
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	text := strings.TrimSpace(string(body))
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		e.Auth = true
		e.Location = cleanLocation(resp.Header.Get("Location"))
	case strings.Contains(ct, "text/html") || looksHTML(text):
		switch {
		case resp.StatusCode == http.StatusNotFound:
			e.Message = "this address does not serve the KFP v2beta1 API (a wrong path prefix, or a KFP 1.x backend?)"
			e.Detail = htmlSnippet(text)
		case resp.StatusCode < 300 || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			e.Auth = true
			e.Message = "the answer is an HTML page (a login page?)"
			e.Detail = htmlSnippet(text)
		default:
			e.Message = htmlSnippet(text)
		}
	default:
		var st rpcStatus
		if text != "" && text[0] == '{' && json.Unmarshal(body, &st) == nil {
			e.Code = st.Code
			e.Message, e.Detail = statusText(st)
			e.Trace = cmp.Or(st.ErrorDetails, detailsTrace(st))
			if e.Trace != "" {
				e.Detail = traceHeadline(e.Detail, e.Message)
			}
		} else {
			e.Message = snippet(text, 300)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Auth = true
		}
	}
	e.Message = redact(snippet(e.Message, maxMessage), secrets)
	e.Detail = redact(snippet(e.Detail, maxMessage), secrets)
	e.Trace = redact(e.Trace, secrets)
	e.Location = redact(e.Location, secrets)
	return e
}

// statusText picks the headline and the detail of an error body: the
// user-facing details[0].message first, then message, error, and the
// upload handler's error_message.
func statusText(st rpcStatus) (headline, detail string) {
	long := st.Message
	if long == "" {
		long = st.Error
	}
	for _, d := range st.Details {
		if d.Message != "" {
			headline = d.Message
			break
		}
		if d.ErrorMessage != "" {
			headline, detail = d.ErrorMessage, d.ErrorDetails
			break
		}
	}
	switch {
	case st.ErrorMessage != "":
		return st.ErrorMessage, st.ErrorDetails
	case headline == "":
		return long, detail
	case headline == "Internal Server Error" && long != "":
		// KFP wraps user mistakes as Internal: the useful text is the chain.
		return long, ""
	}
	if long != "" && long != headline {
		detail = long
	}
	return headline, detail
}

func detailsTrace(st rpcStatus) string {
	for _, d := range st.Details {
		if d.ErrorDetails != "" {
			return d.ErrorDetails
		}
	}
	return ""
}

// traceHeadline is what a user reads of an error_details text: its first
// line, without the headline it repeats, and nothing when that is all it
// says or when it is a stack frame.
func traceHeadline(details, headline string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(details), "\n")
	line = strings.TrimSpace(line)
	if rest, ok := strings.CutPrefix(line, headline); ok {
		line = strings.TrimSpace(strings.TrimLeft(rest, ":. "))
	}
	if line == "" || strings.HasPrefix(line, "goroutine ") || strings.Contains(line, ".go:") || strings.HasPrefix(line, "github.com/") {
		return ""
	}
	return line
}

func looksHTML(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "<!doctype html") || strings.HasPrefix(l, "<html")
}

var (
	titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	tagRE   = regexp.MustCompile(`(?s)<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// htmlSnippet is the title of an HTML page, or the start of its text.
func htmlSnippet(s string) string {
	if m := titleRE.FindStringSubmatch(s); m != nil && strings.TrimSpace(m[1]) != "" {
		return fmt.Sprintf("page title %q", snippet(html.UnescapeString(m[1]), 100))
	}
	t := tagRE.ReplaceAllString(s, " ")
	return snippet(html.UnescapeString(t), 200)
}

// snippet is s on one line, cut to at most n bytes.
func snippet(s string, n int) string {
	s = strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// cleanLocation keeps a redirect target's scheme, host and path: the query
// of a login redirect carries state that does not belong in messages.
func cleanLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || loc == "" {
		return ""
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// redact removes every secret from s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
