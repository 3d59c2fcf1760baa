package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// startNATS starts a NATS server on a port the kernel picks.
func startNATS(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready after 10s")
	}
	return srv.ClientURL()
}

func TestPublishesLikeFalcosidekick(t *testing.T) {
	t.Parallel()
	url := startNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("falco.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions(nil, env(map[string]string{"NATS_HOSTPORT": url, "NATS_MINIMUMPRIORITY": "notice"}))
	if err != nil {
		t.Fatal(err)
	}
	h := httptest.NewServer(newHandler(o, nc, slog.New(slog.DiscardHandler)))
	t.Cleanup(h.Close)

	ev := falco.ShellEvent(falco.ShellSpec{ContainerID: "0c30aac0e6f0", ContainerName: "main", CommandLine: "sh -c echo standin"})
	sent := ev.UUID
	body, _ := json.Marshal(ev)
	resp, err := http.Post(h.URL+"/", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Published bool   `json:"published"`
		Subject   string `json:"subject"`
		UUID      string `json:"uuid"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	const wantSubject = "falco.notice.terminal_shell_in_container"
	if resp.StatusCode != http.StatusOK || !answer.Published || answer.Subject != wantSubject {
		t.Fatalf("POST / = %s %+v, want 200, published on %s", resp.Status, answer, wantSubject)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no message on falco.>: %v", err)
	}
	if msg.Subject != wantSubject {
		t.Errorf("subject = %s, want %s", msg.Subject, wantSubject)
	}
	got, err := falco.Parse(msg.Data)
	if err != nil {
		t.Fatalf("published payload does not parse: %v\n%s", err, msg.Data)
	}
	if got.UUID == "" || got.UUID == sent || got.UUID != answer.UUID {
		t.Errorf("uuid = %q (sent %q, answered %q): want a fresh one, as falcosidekick adds", got.UUID, sent, answer.UUID)
	}
	if got.Rule != ev.Rule || got.Output != ev.Output || got.OutputFields.String("proc.cmdline") != "sh -c echo standin" {
		t.Errorf("published event differs from the one posted:\n got %s", msg.Data)
	}

	// Below the minimum priority: accepted, not published.
	low := falco.ShellEvent(falco.ShellSpec{ContainerID: "c"})
	low.Priority = falco.PriorityInformational
	body, _ = json.Marshal(low)
	resp, err = http.Post(h.URL+"/", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("low priority: %s, want 200", resp.Status)
	}
	if m, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("an Informational alert was published with minimum notice: %s", m.Subject)
	}

	for _, tt := range []struct {
		method, body string
		want         int
	}{
		{http.MethodPost, "not json", http.StatusBadRequest},
		{http.MethodPost, `{"output":"no rule"}`, http.StatusBadRequest},
		{http.MethodGet, "", http.StatusOK}, // /healthz below
	} {
		path := "/"
		if tt.method == http.MethodGet {
			path = "/healthz"
		}
		req, _ := http.NewRequest(tt.method, h.URL+path, strings.NewReader(tt.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s %q = %s, want %d", tt.method, path, tt.body, resp.Status, tt.want)
		}
	}
}

func TestSubjectTemplate(t *testing.T) {
	t.Parallel()
	ev := &falco.Event{Rule: "Write below /etc (custom)", Priority: falco.PriorityCritical}
	for template, want := range map[string]string{
		defaultSubjectTemplate:              "falco.critical.write_below_etc_custom",
		"alerts.<rule>":                     "alerts.write_below_etc_custom",
		"sec.<priority>.<rule>.k8s-cluster": "sec.critical.write_below_etc_custom.k8s-cluster",
	} {
		if got := subject(template, ev); got != want {
			t.Errorf("subject(%q) = %q, want %q", template, got, want)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "NATS_HOSTPORT"},
		{map[string]string{"NATS_HOSTPORT": "nats://x:4222", "NATS_MINIMUMPRIORITY": "loud"}, "unknown priority"},
	} {
		_, err := parseOptions(nil, env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: error %v, want one mentioning %q", tt.env, err, tt.want)
		}
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// parseOptions runs the command line with args and the environment env up
// to the options it would serve with.
func parseOptions(args []string, getenv func(string) string) (*options, error) {
	var got *options
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	cmd := newCommand(streams, getenv, func(_ context.Context, o *options, _ io.Writer) error {
		got = o
		return nil
	})
	cmd.SetArgs(args)
	return got, cmd.Execute()
}

func TestFlagsOverTheEnvironment(t *testing.T) {
	t.Parallel()
	o, err := parseOptions([]string{"--nats-url", "nats://flag:4222", "--listen", "127.0.0.1:9", "--minimum-priority", "error",
		"--subject-template", "x.<rule>"}, env(map[string]string{"NATS_HOSTPORT": "nats://env:4222", "LISTENPORT": "2802"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.natsURL != "nats://flag:4222" || o.listen != "127.0.0.1:9" || o.minimum != falco.PriorityError || o.template != "x.<rule>" {
		t.Errorf("options = %+v, want the flags' values", o)
	}
	o, err = parseOptions(nil, env(map[string]string{"NATS_HOSTPORT": "nats://env:4222", "LISTENPORT": "2802"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.natsURL != "nats://env:4222" || o.listen != ":2802" || o.minimum != falco.PriorityDebug || o.template != defaultSubjectTemplate {
		t.Errorf("options = %+v, want falcosidekick's variables and defaults", o)
	}
}
