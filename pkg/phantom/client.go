// Package phantom is a client for the REST API of Splunk SOAR (formerly
// Phantom): containers and artifacts, with typed errors that say whether a
// retry can help.
package phantom

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config configures a Client.
type Config struct {
	// BaseURL is SOAR's address, e.g. https://soar.example.com. It must not
	// hold credentials.
	BaseURL string
	// Credentials for every request; nil sends none.
	Credentials Credentials
	// InsecureSkipVerify turns TLS certificate verification off. Callers
	// should warn when they set it.
	InsecureSkipVerify bool
	// CAFile is a PEM file of CA certificates to trust in addition to the
	// system's.
	CAFile string
	// CAPEM is the same as CAFile, given as content.
	CAPEM []byte
	// Timeout bounds each request, including reading the answer; default 30 s.
	Timeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// MaxConns bounds the connections kept to SOAR; default 16.
	MaxConns int
	// Transport, when set, replaces the client's own (TLS settings above
	// then do not apply): e.g. the Kubernetes API server's service proxy,
	// to reach a SOAR that runs inside a cluster.
	Transport http.RoundTripper
}

// Client talks to one SOAR server over one pool of keep-alive connections.
// It is safe for concurrent use.
type Client struct {
	base    *url.URL
	creds   Credentials
	http    *http.Client
	timeout time.Duration
	agent   string
}

// maxResponseBytes bounds what is read of an answer.
const maxResponseBytes = 64 << 20

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	base, err := ParseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // only when the user asks
	pem := cfg.CAPEM
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read SOAR CA file: %w", err)
		}
		pem = b
	}
	if len(pem) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("SOAR CA (%s) holds no PEM certificate", orDefault(cfg.CAFile, "given"))
		}
		tlsCfg.RootCAs = pool
	}
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = 16
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          maxConns,
		MaxIdleConnsPerHost:   maxConns,
		MaxConnsPerHost:       maxConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0,
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	agent := cfg.UserAgent
	if agent == "" {
		agent = "falco-phantom"
	}
	creds := cfg.Credentials
	if creds == nil {
		creds = StaticCredentials{}
	}
	var rt http.RoundTripper = transport
	if cfg.Transport != nil {
		rt = cfg.Transport
	}
	// Never follow a redirect: the ph-auth-token header would go along to
	// wherever it points (Go drops only Authorization, and only across
	// hosts). A redirect is answered as a configuration error instead.
	hc := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Client{base: base, creds: creds, http: hc, timeout: timeout, agent: agent}, nil
}

// ParseBaseURL checks a SOAR base URL: http or https, a host, no
// credentials, no query. A trailing slash is removed.
//
// Its errors never quote the URL or any part of it: whatever its shape, a
// URL that is refused may hold a user, a password or a token (userinfo
// that url.Parse reads as a scheme or a path, a token in the query).
func ParseBaseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("SOAR base URL is empty (set PHANTOM_BASE_URL, e.g. https://soar.example.com)")
	}
	if strings.Contains(raw, "@") {
		return nil, errors.New("SOAR base URL must not contain credentials (nor any '@'): use PHANTOM_USER/PHANTOM_PASSWORD or PHANTOM_TOKEN")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("SOAR base URL is not a valid URL (want e.g. https://soar.example.com)")
	case (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "":
		return nil, errors.New("SOAR base URL must start with https:// (or http://), e.g. https://soar.example.com")
	case u.Host == "":
		return nil, errors.New("SOAR base URL has no host (want e.g. https://soar.example.com)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		return nil, errors.New("SOAR base URL must not have a query or fragment: credentials go in PHANTOM_TOKEN or PHANTOM_USER/PHANTOM_PASSWORD")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// CreateContainer creates a container, with its inline artifacts. When SOAR
// already holds a container with the same source_data_identifier, the
// answer is a success with Existing set, whatever status code carried it.
func (c *Client) CreateContainer(ctx context.Context, ct *Container) (*ContainerResult, error) {
	const op = "POST /rest/container"
	var resp response
	status, err := c.do(ctx, http.MethodPost, "/rest/container", nil, ct, &resp)
	if err != nil {
		return nil, withOp(err, op)
	}
	// Duplicates first: SOAR reports them as "failed" too.
	if resp.ExistingContainerID != 0 {
		return &ContainerResult{ID: resp.ExistingContainerID, Existing: true}, nil
	}
	if resp.Failed || status >= 300 || resp.ID == 0 {
		return nil, &Error{Op: op, Status: status, Kind: classify(status, resp.Message), Message: orUnexpected(resp.Message, resp.ID == 0)}
	}
	res := &ContainerResult{ID: resp.ID}
	for _, a := range resp.Artifacts {
		res.Artifacts = append(res.Artifacts, artifactResult(op, status, a))
	}
	if len(res.Artifacts) != len(ct.Artifacts) {
		return res, &Error{Op: op, Status: status, Kind: KindTransient,
			Message: fmt.Sprintf("answer lists %d artifacts, %d were sent", len(res.Artifacts), len(ct.Artifacts))}
	}
	return res, nil
}

// CreateNote adds a note to a container and returns its id. NoteType
// defaults to "general" and NoteFormat to "markdown".
func (c *Client) CreateNote(ctx context.Context, n Note) (int64, error) {
	const op = "POST /rest/note"
	if n.NoteType == "" {
		n.NoteType = "general"
	}
	if n.NoteFormat == "" {
		n.NoteFormat = "markdown"
	}
	var resp responseStatus
	status, err := c.do(ctx, http.MethodPost, "/rest/note", nil, n, &resp)
	if err != nil {
		return 0, withOp(err, op)
	}
	if resp.Failed || status >= 300 || resp.ID == 0 {
		return 0, &Error{Op: op, Status: status, Kind: classify(status, resp.Message), Message: orUnexpected(resp.Message, resp.ID == 0)}
	}
	return resp.ID, nil
}

// CreateArtifacts adds artifacts to existing containers in one request and
// returns one result per artifact, in order. An artifact that SOAR already
// holds (same container and source_data_identifier) counts as a success
// with Existing set. The error is set only when the request as a whole
// failed; per-artifact refusals are in the results.
func (c *Client) CreateArtifacts(ctx context.Context, arts []Artifact) ([]ArtifactResult, error) {
	const op = "POST /rest/artifact"
	if len(arts) == 0 {
		return nil, nil
	}
	var raw json.RawMessage
	status, err := c.do(ctx, http.MethodPost, "/rest/artifact", nil, arts, &raw)
	if err != nil {
		return nil, withOp(err, op)
	}
	var list []responseStatus
	if err := json.Unmarshal(raw, &list); err != nil {
		// A single object answers for the whole request: an error.
		var one response
		if json.Unmarshal(raw, &one) == nil && one.Message != "" {
			return nil, &Error{Op: op, Status: status, Kind: classify(status, one.Message), Message: one.Message}
		}
		return nil, &Error{Op: op, Status: status, Kind: KindTransient, Message: "unexpected answer: not a list"}
	}
	if len(list) != len(arts) {
		return nil, &Error{Op: op, Status: status, Kind: KindTransient,
			Message: fmt.Sprintf("answer lists %d artifacts, %d were sent", len(list), len(arts))}
	}
	out := make([]ArtifactResult, len(list))
	for i, s := range list {
		out[i] = artifactResult(op, status, s)
	}
	return out, nil
}

func artifactResult(op string, status int, s responseStatus) ArtifactResult {
	switch {
	case s.ExistingArtifactID != 0:
		return ArtifactResult{ID: s.ExistingArtifactID, Existing: true}
	case !s.Failed && s.ID != 0:
		return ArtifactResult{ID: s.ID}
	default:
		itemStatus := status
		if itemStatus < 400 {
			itemStatus = http.StatusBadRequest
		}
		kind := classify(itemStatus, s.Message)
		if strings.Contains(s.Message, "does not exist") && strings.Contains(s.Message, "container") {
			kind = KindNotFound
		}
		return ArtifactResult{Err: &Error{Op: op, Status: status, Kind: kind, Message: orUnexpected(s.Message, s.ID == 0)}}
	}
}

func orUnexpected(msg string, noID bool) string {
	if msg == "" && noID {
		return "unexpected answer without id"
	}
	return msg
}

// Container reads one container.
func (c *Client) Container(ctx context.Context, id int64) (*Container, error) {
	var ct Container
	path := "/rest/container/" + strconv.FormatInt(id, 10)
	if err := c.get(ctx, path, nil, &ct); err != nil {
		return nil, err
	}
	return &ct, nil
}

// Artifact reads one artifact.
func (c *Client) Artifact(ctx context.Context, id int64) (*Artifact, error) {
	var a Artifact
	path := "/rest/artifact/" + strconv.FormatInt(id, 10)
	if err := c.get(ctx, path, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Containers lists containers.
func (c *Client) Containers(ctx context.Context, q Query) (*Page[Container], error) {
	var p Page[Container]
	if err := c.get(ctx, "/rest/container", q.values(), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Artifacts lists artifacts; filter on "container_id" for one container's.
func (c *Client) Artifacts(ctx context.Context, q Query) (*Page[Artifact], error) {
	var p Page[Artifact]
	if err := c.get(ctx, "/rest/artifact", q.values(), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Notes lists notes; filter on a container with
// Filters: {"container": id}.
func (c *Client) Notes(ctx context.Context, q Query) (*Page[Note], error) {
	var p Page[Note]
	if err := c.get(ctx, "/rest/note", q.values(), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Version returns SOAR's version; it is a cheap way to check that SOAR is
// reachable and the credentials work.
func (c *Client) Version(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	if err := c.get(ctx, "/rest/version", nil, &v); err != nil {
		return "", err
	}
	return v.Version, nil
}

// Labels returns the container labels SOAR knows.
func (c *Client) Labels(ctx context.Context) ([]string, error) {
	var opts struct {
		Label []json.RawMessage `json:"label"`
	}
	if err := c.get(ctx, "/rest/container_options", nil, &opts); err != nil {
		return nil, err
	}
	// Entries are names, or objects with a name, depending on the version.
	labels := make([]string, 0, len(opts.Label))
	for _, raw := range opts.Label {
		var name string
		if json.Unmarshal(raw, &name) != nil {
			var obj struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(raw, &obj) != nil {
				continue
			}
			name = obj.Name
		}
		labels = append(labels, name)
	}
	return labels, nil
}

func (q Query) values() url.Values {
	v := url.Values{}
	v.Set("page", strconv.Itoa(q.Page))
	v.Set("page_size", strconv.Itoa(q.PageSize))
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Order != "" {
		v.Set("order", q.Order)
	}
	for field, val := range q.Filters {
		var lit string
		switch x := val.(type) {
		case string:
			lit = strconv.Quote(x)
		case []string, []int64:
			b, _ := json.Marshal(x)
			lit = string(b)
		default:
			lit = fmt.Sprint(x)
		}
		v.Set("_filter_"+field, lit)
	}
	return v
}

func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	op := "GET " + path
	var raw json.RawMessage
	status, err := c.do(ctx, http.MethodGet, path, query, nil, &raw)
	if err != nil {
		return withOp(err, op)
	}
	var failure response
	if status >= 300 {
		_ = json.Unmarshal(raw, &failure)
		return &Error{Op: op, Status: status, Kind: classify(status, failure.Message), Message: failure.Message}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Op: op, Status: status, Kind: KindTransient, Message: "unexpected answer: " + err.Error()}
	}
	return nil
}

// do sends one request and decodes a JSON answer into out. It returns the
// status; err is set only when there was no usable answer.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	auth, err := c.creds.Auth(ctx)
	if err != nil {
		return 0, &Error{Kind: KindAuth, Err: err}
	}
	var body io.Reader
	if in != nil {
		b, err := encodeBody(in)
		if err != nil {
			return 0, &Error{Kind: KindRejected, Err: fmt.Errorf("encode request: %w", err)}
		}
		body = bytes.NewReader(b)
	}
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, &Error{Kind: KindConfig, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	auth.apply(req)
	resp, err := c.http.Do(req)
	if err != nil {
		kind := KindTransient
		if isTLSError(err) {
			kind = KindConfig
		}
		return 0, &Error{Kind: kind, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return resp.StatusCode, &Error{Status: resp.StatusCode, Kind: KindConfig, Message: redirectMessage(resp)}
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		if inv, ok := c.creds.(interface{ Invalidate() }); ok {
			inv.Invalidate()
		}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, &Error{Status: resp.StatusCode, Kind: KindTransient, Err: fmt.Errorf("read answer: %w", err)}
	}
	if err := json.Unmarshal(b, out); err != nil {
		kind := classify(resp.StatusCode, "")
		if resp.StatusCode < 300 {
			kind = KindTransient
		}
		return resp.StatusCode, &Error{Status: resp.StatusCode, Kind: kind, Message: "answer is not JSON: " + snippet(b)}
	}
	return resp.StatusCode, nil
}

// redirectMessage says where SOAR redirected to (scheme and host only)
// and what to change.
func redirectMessage(resp *http.Response) string {
	where := "another address"
	if loc, err := resp.Location(); err == nil && loc.Host != "" {
		where = loc.Scheme + "://" + loc.Host
	}
	return fmt.Sprintf("SOAR answered with a redirect to %s, which is not followed (credentials would go along): set the SOAR base URL to the address SOAR serves its REST API on", where)
}

// stripURL drops the URL from a *url.Error: the operation already says
// what was called, and a URL is noise in a log line.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func withOp(err error, op string) error {
	var pe *Error
	if errors.As(err, &pe) && pe.Op == "" {
		pe.Op = op
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func snippet(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return strconv.Quote(s)
}
