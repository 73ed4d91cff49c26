package kfp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Default request timeouts (docs/kfp-api.md §4): the Python client has none and
// hangs; the Istio route in front of KFP gives up after 300 s.
const (
	DefaultReadTimeout  = 30 * time.Second
	DefaultWriteTimeout = 120 * time.Second
	// DefaultPollInterval is how often WaitRun asks for the run, as kfp.Client.
	DefaultPollInterval = 5 * time.Second
	// DefaultExperiment is the experiment runs go to when none is named.
	DefaultExperiment = "Default"
	// UserIDHeader is the trusted identity header of Kubeflow's manifests.
	UserIDHeader = "kubeflow-userid"
)

// apiPrefix is appended to the host's path for every endpoint.
const apiPrefix = "/apis/v2beta1"

// Options configure a Client. Only Host is required.
type Options struct {
	// Host is the API server or UI address: "localhost:8888",
	// "http://localhost:8080" or "https://kubeflow.example.com/pipeline".
	// https:// is assumed when there is no scheme; a path prefix is kept.
	Host string
	// Namespace is the user (profile) namespace on multi-user clusters. It
	// selects where experiments are looked up and created, where pipelines
	// are uploaded, and which runs are listed. Single-user servers ignore it.
	Namespace string
	// TokenFile holds a bearer token, re-read before every request because
	// the kubelet rotates projected service-account tokens.
	TokenFile string
	// Cookie is sent verbatim as the Cookie header (Dex/authservice
	// sessions: "authservice_session=...").
	Cookie string
	// UserID is sent as the kubeflow-userid header (direct access to the API
	// server in development).
	UserID string
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// InsecureSkipVerify turns TLS certificate verification off.
	InsecureSkipVerify bool
	// ReadTimeout bounds a GET (default 30 s); WriteTimeout bounds an upload
	// or a create (default 120 s).
	ReadTimeout, WriteTimeout time.Duration
	// Transport replaces the HTTP transport (tests); TLS options are then
	// ignored.
	Transport http.RoundTripper
	// Logger receives one debug line per request (never a header value).
	// Nil discards.
	Logger *slog.Logger
	// UserAgent is sent as User-Agent (default "mlpipe").
	UserAgent string
}

// Client talks to one KFP API server. It is safe for concurrent use.
type Client struct {
	base      *url.URL // scheme, host and path prefix, no trailing slash
	host      string   // base as text, for messages
	namespace string
	tokenFile string
	cookie    string
	userID    string
	http      *http.Client
	log       *slog.Logger
	ua        string
	readTO    time.Duration
	writeTO   time.Duration
}

// New checks the options and returns a client. It does not contact the
// server; call Health for that.
func New(o Options) (*Client, error) {
	base, err := NormalizeHost(o.Host)
	if err != nil {
		return nil, err
	}
	rt := o.Transport
	if rt == nil {
		t, err := newTransport(o.CAFile, o.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		rt = t
	}
	c := &Client{
		base:      base,
		host:      base.String(),
		namespace: o.Namespace,
		tokenFile: o.TokenFile,
		cookie:    o.Cookie,
		userID:    o.UserID,
		log:       o.Logger,
		ua:        o.UserAgent,
		readTO:    o.ReadTimeout,
		writeTO:   o.WriteTimeout,
		http: &http.Client{
			Transport: rt,
			// Never follow redirects: a redirect is a login page
			// (docs/kfp-api.md §2), and following it would send the
			// credentials elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ua == "" {
		c.ua = "mlpipe"
	}
	if c.readTO <= 0 {
		c.readTO = DefaultReadTimeout
	}
	if c.writeTO <= 0 {
		c.writeTO = DefaultWriteTimeout
	}
	return c, nil
}

// Host is the normalised base address: scheme, host and path prefix, with
// no trailing slash.
func (c *Client) Host() string { return c.host }

// Namespace is the user namespace the client works in ("" when none).
func (c *Client) Namespace() string { return c.namespace }

// RunURL is the UI address of a run, as kfp.Client prints it.
func (c *Client) RunURL(runID string) string { return RunURL(c.host, runID) }

// RunURL is the UI address of a run under ui, a UI base address.
func RunURL(ui, runID string) string {
	return strings.TrimRight(ui, "/") + "/#/runs/details/" + runID
}

// PipelineVersionURL is the UI address of a pipeline version.
func (c *Client) PipelineVersionURL(pipelineID, versionID string) string {
	return c.host + "/#/pipelines/details/" + pipelineID + "/version/" + versionID
}

// NormalizeHost turns a host as users write it into a base URL, as
// kfp.Client does: https:// is prepended when there is no scheme, a path
// prefix such as /pipeline is kept, and trailing slashes are stripped. Only
// http and https are accepted; credentials, queries and fragments are
// refused.
func NormalizeHost(host string) (*url.URL, error) {
	h := strings.TrimSpace(host)
	if h == "" {
		return nil, &InputError{Msg: "no KFP host given"}
	}
	if !strings.Contains(h, "://") {
		h = "https://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("KFP host %q is not a URL: %v", host, errors.Unwrap(err))}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &InputError{Msg: fmt.Sprintf("KFP host %q: the scheme must be http or https", host)}
	case u.Host == "":
		return nil, &InputError{Msg: fmt.Sprintf("KFP host %q has no host name", host)}
	case u.User != nil:
		return nil, &InputError{Msg: "KFP host: credentials in the URL are not supported; use a token file or a cookie"}
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(h, "?") || strings.HasSuffix(h, "#"):
		return nil, &InputError{Msg: fmt.Sprintf("KFP host %q must not have a query or a fragment", host)}
	}
	// Collapse repeated slashes so that ".../pipeline//" still gives
	// ".../pipeline/apis/v2beta1" and never "//apis".
	p := u.EscapedPath()
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	p = strings.TrimRight(p, "/")
	unesc, err := url.PathUnescape(p)
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("KFP host %q: bad path: %v", host, err)}
	}
	u.Path, u.RawPath = unesc, ""
	if p != (&url.URL{Path: unesc}).EscapedPath() {
		u.RawPath = p
	}
	return u, nil
}

// InputError is a bad option (host, CA file): the user's input.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// InvalidInput marks the error as the user's.
func (e *InputError) InvalidInput() bool { return true }

func newTransport(caFile string, insecure bool) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone() // honours HTTPS_PROXY
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, &InputError{Msg: fmt.Sprintf("read KFP CA file: %v", err)}
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &InputError{Msg: fmt.Sprintf("KFP CA file %s holds no PEM certificate", caFile)}
		}
		cfg.RootCAs = pool
	}
	if insecure {
		cfg.InsecureSkipVerify = true // the user asked for it (--insecure-skip-verify)
	}
	t.TLSClientConfig = cfg
	return t, nil
}
