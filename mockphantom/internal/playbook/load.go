package playbook

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/falco-phantom/kubectl-falco-phantom/internal/input"
)

// maxNameLen bounds a playbook's name.
const maxNameLen = 128

// Known are the values of the mock that matches may name; an empty list
// is not checked.
type Known struct {
	Labels, Severities []string
}

// Set is the validated playbooks of one file, ready to run: tokens read,
// certificates loaded, one HTTP client per playbook.
type Set struct {
	playbooks []*playbook
}

// playbook is a Rule ready to run.
type playbook struct {
	Rule
	endpoint string // POST target
	token    string // never logged, never in an error
	client   *http.Client
}

// Load reads and validates the playbooks file at path. Relative token_file
// and ca_file paths are taken from the file's folder. The error lists
// every problem found, each naming the playbook and the field.
func Load(path string, known Known) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read playbooks file: %w", err)
	}
	set, err := Parse(data, filepath.Dir(path), known)
	if err != nil {
		return nil, fmt.Errorf("playbooks file %s: %w", path, err)
	}
	return set, nil
}

// Parse is Load for the content of a file; dir is where relative paths
// start.
func Parse(data []byte, dir string, known Known) (*Set, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(js, &items); err != nil || items == nil {
		return nil, errors.New("the file must be a YAML list of playbooks (each starting with \"- name: ...\")")
	}
	if len(items) == 0 {
		return nil, errors.New("the file lists no playbooks")
	}
	var (
		errs  []error
		set   = &Set{}
		names = map[string]int{}
	)
	for i, raw := range items {
		var r Rule
		where := fmt.Sprintf("playbook %d", i+1)
		if err := strict(raw, &r, ""); err != nil {
			errs = append(errs, fmt.Errorf("%s%s: %w", where, nameOf(raw), err))
			continue
		}
		if r.Name = strings.TrimSpace(r.Name); r.Name != "" {
			where += fmt.Sprintf(" (%s)", r.Name)
		}
		if first, dup := names[r.Name]; dup && r.Name != "" {
			errs = append(errs, fmt.Errorf("%s: name is already used by playbook %d", where, first))
			continue
		}
		names[r.Name] = i + 1
		p, problems := compile(r, dir, known)
		for _, e := range problems {
			errs = append(errs, fmt.Errorf("%s: %w", where, e))
		}
		if len(problems) == 0 {
			set.playbooks = append(set.playbooks, p)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// nameOf finds the name of a playbook that could not be decoded, for the
// error message.
func nameOf(raw json.RawMessage) string {
	var named struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &named) != nil || strings.TrimSpace(named.Name) == "" {
		return ""
	}
	return " (" + strings.TrimSpace(named.Name) + ")"
}

// Names lists the playbooks in file order.
func (s *Set) Names() []string {
	out := make([]string, len(s.playbooks))
	for i, p := range s.playbooks {
		out[i] = p.Name
	}
	return out
}

// Insecure lists the playbooks that do not verify the responder's
// certificate, so that the caller can warn about them.
func (s *Set) Insecure() []string {
	var out []string
	for _, p := range s.playbooks {
		if p.Responder.InsecureSkipVerify {
			out = append(out, p.Name)
		}
	}
	return out
}

// Close closes the idle connections to the responders.
func (s *Set) Close() {
	for _, p := range s.playbooks {
		p.client.CloseIdleConnections()
	}
}

// compile checks r and prepares it to run; it returns every problem.
func compile(r Rule, dir string, known Known) (*playbook, []error) {
	var errs []error
	if r.Name == "" {
		errs = append(errs, errors.New("name is required"))
	} else if len(r.Name) > maxNameLen {
		errs = append(errs, fmt.Errorf("name is longer than %d bytes", maxNameLen))
	}
	errs = append(errs, checkMatch(r.Match, known)...)
	if r.Action == "" {
		errs = append(errs, fmt.Errorf("action is required; use one of %s", actionList()))
	} else if !slices.Contains(Actions, r.Action) {
		errs = append(errs, fmt.Errorf("action %q is unknown; use one of %s", r.Action, actionList()))
	} else {
		errs = append(errs, checkParams(r.Action, r.Params)...)
	}
	p := &playbook{Rule: r}
	var rerrs []error
	p.endpoint, p.token, p.client, rerrs = responder(r.Responder, r.Action, dir)
	errs = append(errs, rerrs...)
	return p, errs
}

func actionList() string {
	names := make([]string, len(Actions))
	for i, a := range Actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

func checkMatch(m Match, known Known) []error {
	if len(m.Rule)+len(m.Severity)+len(m.Label) == 0 {
		return []error{errors.New("match needs at least one of rule, severity and label (a playbook never acts on every case by accident)")}
	}
	var errs []error
	for _, f := range []struct {
		name  string
		vals  []string
		known []string
	}{
		{"match.rule", m.Rule, nil},
		{"match.severity", m.Severity, known.Severities},
		{"match.label", m.Label, known.Labels},
	} {
		for _, v := range f.vals {
			switch {
			case strings.TrimSpace(v) == "":
				errs = append(errs, fmt.Errorf("%s has an empty value", f.name))
			case len(f.known) > 0 && !slices.Contains(f.known, v):
				errs = append(errs, fmt.Errorf("%s %q is not one the mock knows (%s), so it would never match", f.name, v, strings.Join(f.known, ", ")))
			}
		}
	}
	return errs
}

// checkParams refuses parameters the action does not take, and requires
// the ones it needs.
func checkParams(a Action, p Params) []error {
	var errs []error
	only := func(given bool, field string, takers ...Action) {
		if given && !slices.Contains(takers, a) {
			errs = append(errs, fmt.Errorf("params.%s is not a parameter of %s", field, a))
		}
	}
	only(p.Labels != nil, "labels", ActionLabel)
	only(p.Annotations != nil, "annotations", ActionAnnotate)
	only(p.GracePeriodSeconds != nil, "grace_period_seconds", ActionTerminate)
	only(p.AllowStandalone != nil, "allow_standalone", ActionTerminate)
	only(p.Taint != "", "taint", ActionCordon, ActionUncordon)
	switch {
	case a == ActionLabel && len(p.Labels) == 0:
		errs = append(errs, errors.New(`params.labels is required for label (key: value sets a label, "key-": "" removes it)`))
	case a == ActionAnnotate && len(p.Annotations) == 0:
		errs = append(errs, errors.New(`params.annotations is required for annotate (key: value sets one, "key-": "" removes it)`))
	}
	if p.GracePeriodSeconds != nil && *p.GracePeriodSeconds < 0 {
		errs = append(errs, errors.New("params.grace_period_seconds must not be negative"))
	}
	return errs
}

// responder checks the responder block and builds what calls need. The
// token is read here; errors name the file, never its content.
func responder(r Responder, a Action, dir string) (endpoint, token string, client *http.Client, errs []error) {
	switch u, err := url.Parse(r.URL); {
	case r.URL == "":
		errs = append(errs, errors.New("responder.url is required (such as https://falco-phantom-responder.falco-phantom.svc:8443)"))
	case err != nil:
		errs = append(errs, fmt.Errorf("responder.url is not a URL: %w", err))
	case u.Scheme != "https":
		errs = append(errs, fmt.Errorf("responder.url %q must start with https:// (the token must not travel in clear)", r.URL))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("responder.url %q has no host", r.URL))
	case u.User != nil:
		errs = append(errs, errors.New("responder.url must not hold credentials; the token goes in token_file"))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("responder.url %q must not have a query or fragment", r.URL))
	default:
		endpoint = strings.TrimRight(r.URL, "/") + "/v1/actions/" + string(a)
	}

	if r.TokenFile == "" {
		errs = append(errs, errors.New("responder.token_file is required: the file holding the responder's bearer token"))
	} else {
		var err error
		if token, err = input.SecretFile(within(dir, r.TokenFile)); err != nil {
			errs = append(errs, fmt.Errorf("responder.token_file: %w", err))
		}
	}

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case r.CAFile != "" && r.InsecureSkipVerify:
		errs = append(errs, errors.New("responder.ca_file and responder.insecure_skip_verify exclude each other"))
	case r.CAFile != "":
		pem, err := os.ReadFile(within(dir, r.CAFile))
		if err != nil {
			errs = append(errs, fmt.Errorf("responder.ca_file: %w", err))
			break
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			errs = append(errs, fmt.Errorf("responder.ca_file: %s holds no PEM certificate", within(dir, r.CAFile)))
		}
		tlsCfg.RootCAs = pool
	case r.InsecureSkipVerify:
		tlsCfg.InsecureSkipVerify = true
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	client = &http.Client{
		Transport: transport,
		// A redirect is an answer of its own: following it would send the
		// token somewhere the file did not name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return endpoint, token, client, errs
}

// within resolves a path of the file relative to its folder.
func within(dir, path string) string {
	if filepath.IsAbs(path) || dir == "" {
		return path
	}
	return filepath.Join(dir, path)
}
