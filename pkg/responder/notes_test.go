package responder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/responder"
)

// After acting, the responder writes the outcome into the case named by
// case_id, as a SOAR note on the real mock SOAR; a refusal is noted too,
// an unauthorised request never.
func TestOutcomeIsNotedIntoTheCase(t *testing.T) {
	testkit.Need(t, apiServer, noAPIWhy)
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	ctx := context.Background()
	client, err := phantom.New(phantom.Config{BaseURL: soar.URL, Credentials: phantom.StaticCredentials{Token: testkit.Token}})
	if err != nil {
		t.Fatal(err)
	}
	created, err := client.CreateContainer(ctx, &phantom.Container{Name: "Terminal shell in container", Label: "events", Severity: "low", SourceDataIdentifier: "responder-note-test"})
	if err != nil {
		t.Fatal(err)
	}
	caseID := created.ID

	ns := newNamespace(t)
	newPod(t, ns, "web", "c0ffee000000")
	tokenFile := filepath.Join(t.TempDir(), "soar-token")
	write(t, tokenFile, testkit.Token+"\n")
	r := start(t, []string{ns}, func(c *responder.Config) {
		c.SOAR.BaseURL, c.SOAR.TokenFile = soar.URL, tokenFile
	})

	done := r.post(t, "isolate", token, map[string]any{"namespace": ns, "pod": "web", "case_id": caseID, "requested_by": "playbook isolate-shell"}).result(t)
	if len(done.Warnings) != 0 {
		t.Errorf("warnings: %v", done.Warnings)
	}
	refused := r.post(t, "terminate", token, map[string]any{"namespace": ns, "pod": "web", "case_id": caseID})
	refusedID, _, _ := refused.errorOf(t)
	r.post(t, "isolate", "wrong", map[string]any{"namespace": ns, "pod": "web", "case_id": caseID})

	notes := notesOf(t, soar.URL, caseID)
	if len(notes) != 2 {
		t.Fatalf("%d notes in case %d, want 2 (the isolate and the refused terminate, not the unauthorised one): %+v", len(notes), caseID, notes)
	}
	for i, want := range []struct{ title, id string }{
		{"falco-phantom isolate " + ns + "/web: done", done.RequestID},
		// Refused before the pod was looked up: the note names the pod asked for.
		{"falco-phantom terminate " + ns + "/web: refused", refusedID},
	} {
		if notes[i].Title != want.title || !strings.Contains(notes[i].Content, want.id) {
			t.Errorf("note %d: %q\n%s\nwant title %q naming request %s", i, notes[i].Title, notes[i].Content, want.title, want.id)
		}
	}
	if strings.Contains(notes[0].Content, testkit.Token) || strings.Contains(notes[0].Content, token) {
		t.Error("a note holds a token")
	}
}

// note is a note as SOAR lists it: its case is "container" (the field
// written is "container_id"; both are read).
type note struct {
	Container   int64  `json:"container"`
	ContainerID int64  `json:"container_id"`
	Title       string `json:"title"`
	Content     string `json:"content"`
}

// notesOf lists the notes of a case, oldest first.
func notesOf(t *testing.T, base string, caseID int64) []note {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/rest/note?page_size=0&_filter_container=%d&sort=id&order=asc", base, caseID), nil)
	req.Header.Set("ph-auth-token", testkit.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var page struct {
		Data []note `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		t.Fatalf("GET /rest/note: %d, %v", res.StatusCode, err)
	}
	var out []note
	for _, n := range page.Data {
		if n.Container == caseID || n.ContainerID == caseID {
			out = append(out, n)
		}
	}
	return out
}
