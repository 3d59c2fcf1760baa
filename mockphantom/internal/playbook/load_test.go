package playbook

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testToken = "tok-responder-7f3a91"

// files writes name -> content into a fresh folder and returns it.
func files(t *testing.T, content map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, c := range content {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var testKnown = Known{Labels: []string{"events"}, Severities: []string{"high", "medium", "low"}}

func TestLoadValid(t *testing.T) {
	t.Parallel()
	dir := files(t, map[string]string{
		"token": testToken + "\n",
		"playbooks.yaml": `
- name: isolate-shell
  match:
    rule: Terminal shell in container
    severity: [low, medium]
  action: isolate
  params:
    dry_run: true
  responder: &responder
    url: https://responder.example:8443/
    token_file: token          # relative to this file
    insecure_skip_verify: true
- name: label-shell
  match: {label: events}
  action: label
  params:
    labels: {falco-phantom.io/triage: "yes", old-: ""}
  responder: *responder
`,
	})
	set, err := Load(filepath.Join(dir, "playbooks.yaml"), testKnown)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := set.Names(), []string{"isolate-shell", "label-shell"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
	if got, want := set.Insecure(), []string{"isolate-shell", "label-shell"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Insecure = %q, want %q", got, want)
	}
	p := set.playbooks[0]
	if p.endpoint != "https://responder.example:8443/v1/actions/isolate" || p.token != testToken {
		t.Errorf("first playbook: endpoint %q, token read %v; want the isolate endpoint and the file's token", p.endpoint, p.token == testToken)
	}
	if want := (Match{Rule: []string{"Terminal shell in container"}, Severity: []string{"low", "medium"}}); !reflect.DeepEqual(p.Match, want) {
		t.Errorf("match = %+v, want %+v", p.Match, want)
	}
	if p.Params.DryRun == nil || !*p.Params.DryRun {
		t.Errorf("params.dry_run = %v, want true", p.Params.DryRun)
	}
	if got := set.playbooks[1].Params.Labels; !reflect.DeepEqual(got, map[string]string{"falco-phantom.io/triage": "yes", "old-": ""}) {
		t.Errorf("labels = %v", got)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	otherDir := files(t, map[string]string{"empty": "\n", "notpem": "hello"})
	dir := files(t, map[string]string{"token": testToken})
	// ok is a valid playbook body after its name line.
	const ok = `
  match: {rule: Terminal shell in container}
  action: isolate
  responder: {url: "https://r.example", token_file: token}
`
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"not YAML", "- name: [", []string{"not valid YAML"}},
		{"duplicate key", "- name: a\n  name: b\n" + ok[1:], []string{"not valid YAML", "duplicate"}},
		{"not a list", "name: a\n", []string{"must be a YAML list of playbooks"}},
		{"empty file", "", []string{"must be a YAML list"}},
		{"empty list", "[]", []string{"lists no playbooks"}},
		{"not a mapping", "- isolate", []string{"playbook 1: a playbook must be a mapping, not a string"}},
		{"unknown key", "- name: p\n  acton: isolate" + ok, []string{`playbook 1 (p): unknown field acton`}},
		{"unknown match key", "- name: p\n  match: {rule: r, namespace: shop}\n  action: isolate\n  responder: {url: 'https://r', token_file: token}",
			[]string{"playbook 1 (p): unknown field match.namespace"}},
		{"unknown responder key", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'https://r', tokenfile: token}",
			[]string{"playbook 1 (p): unknown field responder.tokenfile"}},
		{"unknown param", "- name: p\n  params: {lables: {a: b}}" + ok, []string{"unknown field params.lables"}},
		{"match value type", "- name: p\n  match: {rule: {a: 1}}\n  action: isolate\n  responder: {url: 'https://r', token_file: token}",
			[]string{"match.rule must be a string or a list of strings"}},
		{"url type", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 8443, token_file: token}",
			[]string{"responder.url must be a string, not a number"}},
		{"label value type", "- name: p\n  match: {rule: r}\n  action: label\n  params: {labels: {case: 42}}\n  responder: {url: 'https://r', token_file: token}",
			[]string{"params.labels: every value must be a string (quote it), not a number"}},
		{"responder not a mapping", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: https://r",
			[]string{"responder must be a mapping, not a string"}},
		{"no name", "- match: {rule: r}\n  action: isolate\n  responder: {url: 'https://r', token_file: token}", []string{"playbook 1: name is required"}},
		{"same name twice", "- name: p" + ok + "- name: p" + ok, []string{"playbook 2 (p): name is already used by playbook 1"}},
		{"no match", "- name: p\n  action: isolate\n  responder: {url: 'https://r', token_file: token}", []string{"playbook 1 (p): match needs at least one of rule, severity and label"}},
		{"unknown severity", "- name: p\n  match: {severity: critical}\n  action: isolate\n  responder: {url: 'https://r', token_file: token}",
			[]string{`match.severity "critical" is not one the mock knows (high, medium, low)`}},
		{"unknown label", "- name: p\n  match: {label: falco}\n  action: isolate\n  responder: {url: 'https://r', token_file: token}",
			[]string{`match.label "falco" is not one the mock knows (events)`}},
		{"empty rule", "- name: p\n  match: {rule: ''}\n  action: isolate\n  responder: {url: 'https://r', token_file: token}", []string{"match.rule has an empty value"}},
		{"unknown action", "- name: p\n  match: {rule: r}\n  action: isolat\n  responder: {url: 'https://r', token_file: token}",
			[]string{`playbook 1 (p): action "isolat" is unknown; use one of isolate, release, label, annotate, terminate, cordon, uncordon, describe`}},
		{"no action", "- name: p\n  match: {rule: r}\n  responder: {url: 'https://r', token_file: token}", []string{"action is required"}},
		{"param of another action", "- name: p\n  params: {taint: 'a=b:NoSchedule', grace_period_seconds: 3}" + ok,
			[]string{"params.taint is not a parameter of isolate", "params.grace_period_seconds is not a parameter of isolate"}},
		{"label without labels", "- name: p\n  match: {rule: r}\n  action: label\n  responder: {url: 'https://r', token_file: token}", []string{"params.labels is required for label"}},
		{"negative grace", "- name: p\n  match: {rule: r}\n  action: terminate\n  params: {grace_period_seconds: -1}\n  responder: {url: 'https://r', token_file: token}",
			[]string{"grace_period_seconds must not be negative"}},
		{"no responder", "- name: p\n  match: {rule: r}\n  action: isolate", []string{"responder.url is required", "responder.token_file is required"}},
		{"http url", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'http://r:8443', token_file: token}", []string{`responder.url "http://r:8443" must start with https://`}},
		{"url with credentials", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'https://u:pw@r', token_file: token}", []string{"responder.url must not hold credentials"}},
		{"url with query", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'https://r/?a=b', token_file: token}", []string{"must not have a query"}},
		{"missing token file", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'https://r', token_file: nope}",
			[]string{"responder.token_file: open " + filepath.Join(dir, "nope") + ": no such file"}},
		{"empty token file", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'https://r', token_file: " + filepath.Join(otherDir, "empty") + "}",
			[]string{"responder.token_file: " + filepath.Join(otherDir, "empty") + " is empty"}},
		{"ca file without PEM", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'https://r', token_file: token, ca_file: " + filepath.Join(otherDir, "notpem") + "}",
			[]string{"responder.ca_file: " + filepath.Join(otherDir, "notpem") + " holds no PEM certificate"}},
		{"missing ca file", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'https://r', token_file: token, ca_file: ca.pem}",
			[]string{"responder.ca_file: open " + filepath.Join(dir, "ca.pem")}},
		{"ca file and insecure", "- name: p\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'https://r', token_file: token, ca_file: token, insecure_skip_verify: true}",
			[]string{"exclude each other"}},
		{"every problem of every playbook", "- name: a\n  action: isolat\n- name: b\n  match: {rule: r}\n  action: isolate\n  responder: {url: 'https://r', token_file: token}\n- name: c\n  match: {rule: r}\n  action: describe",
			[]string{"playbook 1 (a): match needs", `playbook 1 (a): action "isolat"`, "playbook 1 (a): responder.url is required", "playbook 3 (c): responder.token_file is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			set, err := Load(path, testKnown)
			if err == nil {
				t.Fatalf("Load succeeded with %d playbooks; want an error containing %q", len(set.playbooks), tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "playbooks file "+path+": ") {
				t.Errorf("error %q does not start with the file", msg)
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error = %q, want it to contain %q", msg, want)
				}
			}
			if strings.Contains(msg, testToken) {
				t.Errorf("error %q contains the token", msg)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "playbooks.yaml")
	if _, err := Load(path, Known{}); err == nil || !strings.Contains(err.Error(), "failed to read playbooks file: open "+path) {
		t.Errorf("Load(missing) = %v, want an error naming the file", err)
	}
}
