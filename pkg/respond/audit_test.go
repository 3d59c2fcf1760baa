package respond_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/respond"
)

// Every request naming a case, done or refused, leaves a note in that
// case of the real mock SOAR, and a line in the log.
func TestEveryRequestIsNotedInItsCase(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	newPod(t, apiServer.Kube, ns, "web", "")
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	client, err := phantom.New(phantom.Config{BaseURL: soar.URL, Credentials: phantom.StaticCredentials{Token: testkit.Token}})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := client.CreateContainer(ctx, &phantom.Container{Name: "Terminal shell in container", Label: "events", SourceDataIdentifier: "respond-notes"})
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	r := &respond.Responder{Kube: apiServer.Kube, Policy: respond.Policy{Namespaces: []string{ns}, Actions: []respond.Action{respond.Isolate, respond.Release}},
		Audit: respond.Auditors{respond.LogAuditor{Log: slog.New(slog.NewJSONHandler(&logged, nil))}, respond.NoteAuditor{SOAR: client, Source: "responder"}}}

	res, err := r.Do(ctx, respond.Request{Action: respond.Isolate, Namespace: ns, Pod: "web", CaseID: ct.ID, Reason: "Terminal shell | in container", RequestedBy: "playbook isolate-shell"}, "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings %q: the note should have been written", res.Warnings)
	}
	if _, err := r.Do(ctx, respond.Request{Action: respond.Terminate, Namespace: ns, Pod: "web", CaseID: ct.ID}, "10.0.0.7"); respond.CodeOf(err) != respond.ActionNotAllowed {
		t.Fatalf("terminate: %v", err)
	}
	page, err := client.Notes(ctx, phantom.Query{Filters: map[string]any{"container": ct.ID}, Sort: "id", Order: "asc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 {
		t.Fatalf("%d notes in the case, want 2 (the isolate, the refused terminate)", len(page.Data))
	}
	done, refused := page.Data[0], page.Data[1]
	if done.Title != "falco-phantom isolate "+ns+"/web: done" || !strings.Contains(done.Content, "playbook isolate-shell via responder (10.0.0.7)") ||
		!strings.Contains(done.Content, res.RequestID) || !strings.Contains(done.Content, `Terminal shell \| in container`) {
		t.Errorf("note of the isolate: %q\n%s", done.Title, done.Content)
	}
	if refused.Title != "falco-phantom terminate "+ns+"/web: refused" || !strings.Contains(refused.Content, "action_not_allowed") {
		t.Errorf("note of the refused terminate: %q\n%s", refused.Title, refused.Content)
	}
	for _, want := range []string{`"msg":"audit"`, `"action":"isolate"`, `"outcome":"done"`, `"outcome":"refused"`, `"code":"action_not_allowed"`, `"actor":"10.0.0.7"`} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logged.String())
		}
	}

	// SOAR down: the action is still done, and the answer says the note is
	// missing.
	soar.Stop()
	res, err = r.Do(ctx, respond.Request{Action: respond.Release, Namespace: ns, Pod: "web", CaseID: ct.ID}, "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "the note could not be written into case") {
		t.Errorf("release with SOAR down: %+v", res)
	}
}
