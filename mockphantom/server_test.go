package mockphantom

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	open := newTestEnv(t, Config{InsecureNoAuth: true})

	tests := []struct {
		name   string
		env    *testEnv
		method string
		path   string
		auth   auth
		want   int
		msg    string // part of the 401 message
	}{
		{"basic", e, http.MethodGet, "/rest/version", asAdmin, http.StatusOK, ""},
		{"token header", e, http.MethodGet, "/rest/version", tokenHeader(testToken), http.StatusOK, ""},
		{"token as password, empty user", e, http.MethodGet, "/rest/version", basic("", testToken), http.StatusOK, ""},
		{"wrong password", e, http.MethodGet, "/rest/version", basic(testUser, "nope"), http.StatusUnauthorized, "Authentication failed"},
		{"wrong user", e, http.MethodGet, "/rest/version", basic("root", testPassword), http.StatusUnauthorized, "Authentication failed"},
		{"token as password of a user", e, http.MethodGet, "/rest/version", basic(testUser, testToken), http.StatusUnauthorized, "Authentication failed"},
		{"wrong token header", e, http.MethodGet, "/rest/version", tokenHeader("tok-wrong"), http.StatusUnauthorized, "Authentication failed"},
		{"no credentials", e, http.MethodGet, "/rest/version", noAuth, http.StatusUnauthorized, "Authentication failed"},
		{"delete with token header", e, http.MethodDelete, "/rest/container/1", tokenHeader(testToken), http.StatusUnauthorized, "user credentials"},
		{"delete with token as password", e, http.MethodDelete, "/rest/container/1", basic("", testToken), http.StatusUnauthorized, "user credentials"},
		{"delete with basic (missing container)", e, http.MethodDelete, "/rest/container/1", asAdmin, http.StatusNotFound, ""},
		{"delete with basic and token", e, http.MethodDelete, "/rest/container/1", both(asAdmin, tokenHeader(testToken)), http.StatusNotFound, ""},
		{"token header beside wrong basic", e, http.MethodGet, "/rest/version", both(basic(testUser, "nope"), tokenHeader(testToken)), http.StatusOK, ""},
		{"web page needs auth", e, http.MethodGet, "/", noAuth, http.StatusUnauthorized, "Authentication failed"},
		{"mock stats needs auth", e, http.MethodGet, "/mock/stats", noAuth, http.StatusUnauthorized, "Authentication failed"},
		{"mock faults needs auth", e, http.MethodGet, "/mock/faults", noAuth, http.StatusUnauthorized, "Authentication failed"},
		{"healthz is open", e, http.MethodGet, "/healthz", noAuth, http.StatusOK, ""},
		{"no-auth mode: nothing", open, http.MethodGet, "/rest/version", noAuth, http.StatusOK, ""},
		{"no-auth mode: delete", open, http.MethodDelete, "/rest/container/1", noAuth, http.StatusNotFound, ""},
		{"no-auth mode: web page", open, http.MethodGet, "/", noAuth, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := doRequest(t, http.DefaultClient, tt.method, tt.env.url+tt.path, nil, tt.auth)
			if tt.want != http.StatusUnauthorized {
				r.wantStatus(t, tt.want)
				return
			}
			r.wantFailure(t, http.StatusUnauthorized, tt.msg)
			if got, want := r.header.Get("WWW-Authenticate"), `Basic realm="mockphantom"`; got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
		})
	}
}

func TestDeleteContainerWithUser(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	id := e.createContainer(map[string]any{"name": "c", "artifacts": []any{map[string]any{"name": "a"}}})
	r := e.do(http.MethodDelete, "/rest/container/"+itoa(id), nil, asAdmin)
	r.wantStatus(t, http.StatusOK)
	e.do(http.MethodGet, "/rest/container/"+itoa(id), nil, asAdmin).wantFailure(t, http.StatusNotFound, "does not exist")
	if got := e.count("/rest/artifact"); got != 0 {
		t.Errorf("artifacts after deleting their container = %d, want 0", got)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "x.db")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no db", Config{Token: "t"}, "DBPath"},
		{"no credentials", Config{DBPath: db}, "no credentials"},
		{"password without user", Config{DBPath: db, Password: "p"}, "user name"},
		{"user without password", Config{DBPath: db, User: "u", Token: "t"}, "needs a password"},
		{"bad duplicate status", Config{DBPath: db, Token: "t", DuplicateStatus: 42}, "duplicate status"},
		{"severities without medium", Config{DBPath: db, Token: "t", Severities: []string{"high"}}, "medium"},
		{"empty label", Config{DBPath: db, Token: "t", Labels: []string{" "}}, "empty label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(t.Context(), tt.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatalf("New(%+v) succeeded, want an error containing %q", tt.cfg, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestFixedEndpoints(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{Labels: []string{"events", "falco"}})

	v := e.do(http.MethodGet, "/rest/version", nil, asAdmin)
	v.wantStatus(t, http.StatusOK)
	if got := v.decode(t)["version"]; got != Version {
		t.Errorf("version = %v, want %q", got, Version)
	}

	o := e.do(http.MethodGet, "/rest/container_options", nil, asAdmin)
	o.wantStatus(t, http.StatusOK)
	opts := o.decode(t)
	for key, want := range map[string][]string{
		"label":       {"events", "falco"},
		"severity":    {"high", "medium", "low"},
		"status":      {"new", "open", "closed"},
		"sensitivity": {"white", "green", "amber", "red"},
	} {
		var got []string
		for _, x := range opts[key].([]any) {
			got = append(got, x.(string))
		}
		if !slices.Equal(got, want) {
			t.Errorf("container_options[%s] = %v, want %v", key, got, want)
		}
	}

	h := e.do(http.MethodGet, "/healthz", nil, noAuth)
	if h.status != http.StatusOK || strings.TrimSpace(string(h.body)) != "ok" {
		t.Errorf("healthz = %d %q, want 200 \"ok\"", h.status, h.body)
	}
}

func TestMethodAndPathErrorsAreJSON(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodPut, "/rest/container", http.StatusMethodNotAllowed},
		{http.MethodPut, "/rest/container/1", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/rest/artifact", http.StatusMethodNotAllowed},
		{http.MethodGet, "/rest/nothing", http.StatusNotFound},
		{http.MethodGet, "/rest/container/abc", http.StatusNotFound},
		{http.MethodGet, "/rest/artifact/99", http.StatusNotFound},
		{http.MethodGet, "/elsewhere", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			r := e.do(tt.method, tt.path, nil, asAdmin)
			r.wantFailure(t, tt.want, "")
			if got := r.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			if tt.want == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}
}

func TestSecretEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "abcd", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := secretEqual(tt.a, tt.b); got != tt.want {
			t.Errorf("secretEqual(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// both applies two kinds of credentials.
func both(a, b auth) auth {
	return func(r *http.Request) { a(r); b(r) }
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	e := newTestEnv(t, Config{MaxBodyBytes: limit})
	big := `{"name": "` + strings.Repeat("x", 2*limit) + `", "label": "events"}`

	tests := []struct {
		name string
		body func() io.Reader
	}{
		{"with Content-Length", func() io.Reader { return strings.NewReader(big) }},
		// MultiReader hides the length, so the body is sent chunked and
		// only reading it finds the excess.
		{"chunked", func() io.Reader { return io.MultiReader(strings.NewReader(big)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/rest/container", tt.body())
			req.RequestURI = ""
			req.SetBasicAuth(testUser, testPassword)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			response{status: res.StatusCode, header: res.Header, body: body}.
				wantFailure(t, http.StatusRequestEntityTooLarge, "too large")
		})
	}
	e.createContainer(map[string]any{"name": strings.Repeat("y", limit/2)})
	if got := e.count("/rest/container"); got != 1 {
		t.Errorf("containers = %d, want 1 (only the small one)", got)
	}
}
