package phantom_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

func newClient(t *testing.T, url string, auth phantom.Auth) *phantom.Client {
	t.Helper()
	c, err := phantom.New(phantom.Config{BaseURL: url, Credentials: phantom.StaticCredentials(auth), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var basicAuth = phantom.Auth{User: testkit.User, Password: testkit.Password}

func artifact(sdi string) phantom.Artifact {
	return phantom.Artifact{
		Name: "Terminal shell in container", Label: "falco", Severity: "low", SourceDataIdentifier: sdi,
		CEF:      map[string]any{"kubernetesPodName": "web-1", "commandLine": "sh -c id"},
		CEFTypes: map[string][]string{"kubernetesPodName": {"k8s pod name"}},
		Data:     json.RawMessage(`{"rule":"Terminal shell in container"}`),
	}
}

func container(sdi string, arts ...phantom.Artifact) *phantom.Container {
	return &phantom.Container{
		Name: "Terminal shell in container", Label: "events", Severity: "low", Status: "new",
		SourceDataIdentifier: sdi, StartTime: phantom.FormatTime(time.Now()),
		Data: json.RawMessage(`{"k":"v"}`), Tags: []string{"shell"}, Artifacts: arts,
	}
}

func TestCreateAndReadBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	c := newClient(t, soar.URL, basicAuth)

	res, err := c.CreateContainer(ctx, container("case-1", artifact("a1"), artifact("a2")))
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if res.Existing || res.ID == 0 || len(res.Artifacts) != 2 || res.Artifacts[0].ID == 0 || res.Artifacts[1].Err != nil {
		t.Fatalf("result = %+v", res)
	}
	more, err := c.CreateArtifacts(ctx, []phantom.Artifact{
		withContainer(artifact("a3"), res.ID), withContainer(artifact("a1"), res.ID),
	})
	if err != nil {
		t.Fatalf("CreateArtifacts: %v", err)
	}
	if more[0].ID == 0 || more[0].Existing || !more[1].Existing || more[1].ID != res.Artifacts[0].ID {
		t.Errorf("artifact results = %+v, want a new one and the existing %d", more, res.Artifacts[0].ID)
	}

	got, err := c.Container(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Terminal shell in container" || got.SourceDataIdentifier != "case-1" || string(got.Data) != `{"k":"v"}` {
		t.Errorf("container read back = %+v", got)
	}
	page, err := c.Artifacts(ctx, phantom.Query{Filters: map[string]any{"container_id": res.ID}, Sort: "id", Order: "asc"})
	if err != nil {
		t.Fatal(err)
	}
	if page.Count != 3 || len(page.Data) != 3 || page.Data[0].Container != res.ID {
		t.Fatalf("artifacts of the case: count %d, %+v", page.Count, page.Data)
	}
	if page.Data[0].CEF["commandLine"] != "sh -c id" || page.Data[0].CEFTypes["kubernetesPodName"][0] != "k8s pod name" {
		t.Errorf("artifact read back = %+v", page.Data[0])
	}
	one, err := c.Artifact(ctx, page.Data[2].ID)
	if err != nil || one.SourceDataIdentifier != "a3" {
		t.Errorf("Artifact(%d) = %+v, %v", page.Data[2].ID, one, err)
	}
	list, err := c.Containers(ctx, phantom.Query{Filters: map[string]any{"source_data_identifier": "case-1"}})
	if err != nil || list.Count != 1 || list.Data[0].ID != res.ID {
		t.Errorf("Containers(filter sdi) = %+v, %v", list, err)
	}
	if v, err := c.Version(ctx); err != nil || v == "" {
		t.Errorf("Version = %q, %v", v, err)
	}
	if labels, err := c.Labels(ctx); err != nil || len(labels) != 1 || labels[0] != "events" {
		t.Errorf("Labels = %v, %v", labels, err)
	}
}

func withContainer(a phantom.Artifact, id int64) phantom.Artifact {
	a.ContainerID = id
	return a
}

// SOAR's status code for a duplicate container is not documented: the
// answer must count as success whatever status carries it.
func TestDuplicateContainerIsSuccess(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusOK, http.StatusBadRequest, http.StatusConflict} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			soar := testkit.StartPhantom(t, mockphantom.Config{DuplicateStatus: status})
			c := newClient(t, soar.URL, basicAuth)
			first, err := c.CreateContainer(ctx, container("dup", artifact("x")))
			if err != nil {
				t.Fatal(err)
			}
			again, err := c.CreateContainer(ctx, container("dup", artifact("x")))
			if err != nil {
				t.Fatalf("second CreateContainer: %v", err)
			}
			if !again.Existing || again.ID != first.ID {
				t.Errorf("second create = %+v, want existing %d", again, first.ID)
			}
			dup, err := c.CreateArtifacts(ctx, []phantom.Artifact{withContainer(artifact("x"), first.ID)})
			if err != nil || !dup[0].Existing {
				t.Errorf("duplicate artifact = %+v, %v; want existing", dup, err)
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	good := newClient(t, soar.URL, basicAuth)
	tests := []struct {
		name      string
		client    *phantom.Client
		ct        *phantom.Container
		kind      phantom.Kind
		retryable bool
		hint      string
	}{
		{"wrong password", newClient(t, soar.URL, phantom.Auth{User: testkit.User, Password: "wrong"}), container("k1"), phantom.KindAuth, false, "PHANTOM_PASSWORD"},
		{"wrong token", newClient(t, soar.URL, phantom.Auth{Token: "nope"}), container("k2"), phantom.KindAuth, false, "PHANTOM_TOKEN"},
		{"no credentials", newClient(t, soar.URL, phantom.Auth{}), container("k3"), phantom.KindAuth, false, ""},
		{"unknown label", good, func() *phantom.Container { c := container("k4"); c.Label = "falco"; return c }(), phantom.KindConfig, false, "create the label"},
		{"unknown severity", good, func() *phantom.Container { c := container("k5"); c.Severity = "urgent"; return c }(), phantom.KindConfig, false, "severity"},
		{"missing name", good, func() *phantom.Container { c := container("k6"); c.Name = ""; return c }(), phantom.KindRejected, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.client.CreateContainer(ctx, tt.ct)
			var pe *phantom.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v, want *phantom.Error", err)
			}
			if pe.Kind != tt.kind || pe.Retryable() != tt.retryable || !strings.Contains(pe.Error(), tt.hint) {
				t.Errorf("error %q: kind %v retryable %v; want kind %v retryable %v, mentioning %q", pe, pe.Kind, pe.Retryable(), tt.kind, tt.retryable, tt.hint)
			}
			for _, secret := range []string{testkit.Password, testkit.Token, "wrong", "nope"} {
				if strings.Contains(pe.Error(), secret) {
					t.Errorf("error %q shows a credential", pe)
				}
			}
		})
	}
	// An artifact for a container that does not exist fails alone.
	res, err := good.CreateArtifacts(ctx, []phantom.Artifact{withContainer(artifact("z"), 999999)})
	if err != nil || len(res) != 1 || phantom.KindOf(res[0].Err) != phantom.KindNotFound {
		t.Errorf("artifact for a missing case: %+v, %v; want a not_found result", res, err)
	}
}

func TestTransientFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	c := newClient(t, soar.URL, basicAuth)

	soar.SetFaults(mockphantom.Faults{DownUntil: time.Now().Add(time.Hour)})
	_, err := c.CreateContainer(ctx, container("t1"))
	if k := phantom.KindOf(err); k != phantom.KindTransient || err == nil {
		t.Errorf("SOAR down: err %v kind %v, want transient", err, k)
	}
	soar.SetFaults(mockphantom.Faults{TimeoutRate: 1})
	short, _ := phantom.New(phantom.Config{BaseURL: soar.URL, Credentials: phantom.StaticCredentials(basicAuth), Timeout: 200 * time.Millisecond})
	if _, err := short.CreateContainer(ctx, container("t2")); phantom.KindOf(err) != phantom.KindTransient || err == nil {
		t.Errorf("SOAR hangs: err %v, want transient", err)
	}
	soar.SetFaults(mockphantom.Faults{})
	if _, err := c.CreateContainer(ctx, container("t3")); err != nil {
		t.Errorf("SOAR back: %v", err)
	}
	soar.Stop()
	if _, err := c.CreateContainer(ctx, container("t4")); phantom.KindOf(err) != phantom.KindTransient || err == nil {
		t.Errorf("SOAR stopped: err %v, want transient", err)
	}
	// Nothing from the failed attempts was stored.
	soar.Restart()
	page, err := c.Containers(ctx, phantom.Query{})
	if err != nil || page.Count != 1 || page.Data[0].SourceDataIdentifier != "t3" {
		t.Errorf("after restart: %+v, %v; want only t3", page, err)
	}
}

func TestTLSVerification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	soarURL, caFile := testkit.StartPhantomTLS(t)
	auth := phantom.StaticCredentials(phantom.Auth{Token: testkit.Token})

	verifying, _ := phantom.New(phantom.Config{BaseURL: soarURL, Credentials: auth})
	_, err := verifying.Version(ctx)
	var pe *phantom.Error
	if !errors.As(err, &pe) || pe.Kind != phantom.KindConfig || !strings.Contains(err.Error(), "VERIFY_SSL=false") {
		t.Fatalf("untrusted certificate: err %v, want a config error that names the fix", err)
	}
	trusting, err := phantom.New(phantom.Config{BaseURL: soarURL, Credentials: auth, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trusting.Version(ctx); err != nil {
		t.Errorf("with the CA file: %v", err)
	}
	skipping, _ := phantom.New(phantom.Config{BaseURL: soarURL, Credentials: auth, InsecureSkipVerify: true})
	if _, err := skipping.Version(ctx); err != nil {
		t.Errorf("with verification off: %v", err)
	}
}

func TestFileCredentialsRotate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("stale\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := &phantom.FileCredentials{TokenFile: tokenFile, Refresh: time.Millisecond}
	c, err := phantom.New(phantom.Config{BaseURL: soar.URL, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Version(ctx); phantom.KindOf(err) != phantom.KindAuth {
		t.Fatalf("stale token: %v, want an auth error", err)
	}
	if err := os.WriteFile(tokenFile, []byte(testkit.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, func() error { _, err := c.Version(ctx); return err })

	missing := &phantom.FileCredentials{PasswordFile: filepath.Join(dir, "absent")}
	_, err = missing.Auth(ctx)
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
}

func TestAuthNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	a := phantom.Auth{User: "admin", Password: "hunter2", Token: "tok-123"}
	for _, s := range []string{a.String(), a.GoString(), a.LogValue().String()} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "tok-123") {
			t.Errorf("Auth printed as %q", s)
		}
	}
}

func TestParseBaseURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://soar.example.com/":        "https://soar.example.com",
		"http://127.0.0.1:8080":            "http://127.0.0.1:8080",
		" https://soar.example.com/soar/ ": "https://soar.example.com/soar",
	} {
		u, err := phantom.ParseBaseURL(in)
		if err != nil || u.String() != want {
			t.Errorf("ParseBaseURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, bad := range []string{"", "soar.example.com", "ftp://x", "https://admin:pw@soar", "https://soar?x=1", "https://",
		// Passwords that make the URL unparsable: the parser's own error
		// would quote them.
		"https://admin:p w@soar", "https://admin:pw%zz@soar", "https://admin:pw@soar/%zz", "http://soar/%zz",
		// Userinfo that url.Parse reads as a scheme, an opaque part or a
		// path, and tokens in the query or fragment.
		"admin:pw@soar.example.com", "https:admin:pw@soar", "http:/admin:pw@soar", "https:pw", "pw:443",
		"https://soar/?token=pw", "https://soar?pw", "https://soar/#pw", "https://soar/rest?ph-auth-token=pw&x=1"} {
		_, err := phantom.ParseBaseURL(bad)
		switch {
		case err == nil:
			t.Errorf("ParseBaseURL(%q) succeeded", bad)
		case strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "p w"):
			t.Errorf("ParseBaseURL(%q): the error shows the password: %v", bad, err)
		case strings.Contains(bad, "@") && !strings.Contains(err.Error(), "must not contain credentials"):
			t.Errorf("ParseBaseURL(%q) = %v, want it to say credentials do not belong there", bad, err)
		}
	}
}

// A redirect is not followed: the token header would go along to wherever
// it points. It is a configuration error that names where SOAR pointed.
func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("ph-auth-token") != "" || r.Header.Get("Authorization") != "" {
			elsewhere.Add(1)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"version":"6.4.0"}`))
	}))
	defer other.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+r.URL.Path, http.StatusFound)
	}))
	defer redirecting.Close()
	for _, auth := range []phantom.Auth{{Token: testkit.Token}, {User: testkit.User, Password: testkit.Password}} {
		c, err := phantom.New(phantom.Config{BaseURL: redirecting.URL, Credentials: phantom.StaticCredentials(auth)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Version(context.Background())
		var pe *phantom.Error
		if !errors.As(err, &pe) || pe.Kind != phantom.KindConfig || pe.Status != http.StatusFound ||
			!strings.Contains(err.Error(), "redirect to http://localhost:") {
			t.Errorf("redirected: err %v, want a config error naming where SOAR redirects", err)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("%d request(s) with credentials reached the host SOAR redirected to", n)
	}
}

func TestNotesOnAContainer(t *testing.T) {
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	c := newClient(t, soar.URL, phantom.Auth{Token: testkit.Token})
	ctx := context.Background()
	ct, err := c.CreateContainer(ctx, &phantom.Container{Name: "Terminal shell in container", Label: "events", SourceDataIdentifier: "case-notes"})
	if err != nil {
		t.Fatal(err)
	}
	content := "**isolate** of pod `shop/web`: **done** in 14 ms\n\n| a | b |"
	id, err := c.CreateNote(ctx, phantom.Note{ContainerID: ct.ID, Title: "falco-phantom isolate shop/web: done", Content: content})
	if err != nil || id == 0 {
		t.Fatalf("CreateNote: %d, %v", id, err)
	}
	page, err := c.Notes(ctx, phantom.Query{Filters: map[string]any{"container": ct.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 {
		t.Fatalf("%d notes on the container, want 1", len(page.Data))
	}
	n := page.Data[0]
	if n.ID != id || n.Container != ct.ID || n.Content != content || n.NoteType != "general" || n.NoteFormat != "markdown" || n.CreateTime == "" {
		t.Errorf("note read back: %+v", n)
	}
	// A note on a container SOAR does not have is refused, with its message.
	_, err = c.CreateNote(ctx, phantom.Note{ContainerID: ct.ID + 1000, Title: "x", Content: "y"})
	var pe *phantom.Error
	if !errors.As(err, &pe) || pe.Kind == phantom.KindTransient {
		t.Errorf("note on a missing container: %v, want a refusal that is not transient", err)
	}
}
