// Package playbook runs the mock SOAR's playbooks: rules, read from a YAML
// file, that act on a new case by calling falco-phantom-responder's HTTP
// API (POST /v1/actions/<action>, docs/respond.md) with the case's target,
// retrying transient failures. It knows nothing of HTTP serving or
// storage: the server hands it cases and keeps the action runs it reports
// through a Recorder.
package playbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Action is an action of the responder (docs/respond.md).
type Action string

// The responder's actions.
const (
	// ActionIsolate labels the pod and cuts it off the network.
	ActionIsolate Action = "isolate"
	// ActionRelease undoes isolate.
	ActionRelease Action = "release"
	// ActionLabel sets or removes labels of the pod (Params.Labels).
	ActionLabel Action = "label"
	// ActionAnnotate sets or removes annotations (Params.Annotations).
	ActionAnnotate Action = "annotate"
	// ActionTerminate deletes the pod.
	ActionTerminate Action = "terminate"
	// ActionCordon marks the pod's node unschedulable, with an optional taint.
	ActionCordon Action = "cordon"
	// ActionUncordon undoes cordon.
	ActionUncordon Action = "uncordon"
	// ActionDescribe changes nothing and answers what the pod is.
	ActionDescribe Action = "describe"
)

// Actions lists every action, in the order of docs/respond.md.
var Actions = []Action{ActionIsolate, ActionRelease, ActionLabel, ActionAnnotate,
	ActionTerminate, ActionCordon, ActionUncordon, ActionDescribe}

// Rule is one playbook of the file, as written.
type Rule struct {
	// Name identifies the playbook in action runs and in requested_by.
	Name string `json:"name"`
	// Match selects the cases it acts on.
	Match Match `json:"match"`
	// Action is what it asks the responder to do.
	Action Action `json:"action"`
	// Params are sent with the action as they are.
	Params Params `json:"params"`
	// Responder says where and how to reach the responder.
	Responder Responder `json:"responder"`
}

// Match selects cases. Every field given must match; a field with several
// values matches any of them. At least one field must be given.
type Match struct {
	// Rule is the Falco rule: the cef.falcoRule of the case's first
	// artifact, or the container's name when that has none.
	Rule []string
	// Severity is the container's severity (high, medium, low ...).
	Severity []string
	// Label is the container's label (the forwarder's PHANTOM_LABEL).
	Label []string
}

// Params are the optional parameters of an action (docs/respond.md).
type Params struct {
	DryRun             *bool             `json:"dry_run,omitempty"`
	Labels             map[string]string `json:"labels,omitempty"`
	Annotations        map[string]string `json:"annotations,omitempty"`
	GracePeriodSeconds *int64            `json:"grace_period_seconds,omitempty"`
	AllowStandalone    *bool             `json:"allow_standalone,omitempty"`
	Taint              string            `json:"taint,omitempty"`
}

// Responder says how to reach falco-phantom-responder.
type Responder struct {
	// URL is its base URL; it must be https.
	URL string `json:"url"`
	// TokenFile holds the bearer token.
	TokenFile string `json:"token_file"`
	// CAFile holds the CA certificates (PEM) that its certificate must
	// chain to; without it the system's roots are used.
	CAFile string `json:"ca_file"`
	// InsecureSkipVerify accepts any certificate. Only for trying things
	// out: anyone on the path can then read the token.
	InsecureSkipVerify bool `json:"insecure_skip_verify"`
}

// UnmarshalJSON reads a match strictly; each field is a string or a list
// of strings.
func (m *Match) UnmarshalJSON(b []byte) error {
	var raw struct {
		Rule     json.RawMessage `json:"rule"`
		Severity json.RawMessage `json:"severity"`
		Label    json.RawMessage `json:"label"`
	}
	if err := strict(b, &raw, "match"); err != nil {
		return err
	}
	var err error
	if m.Rule, err = values("match.rule", raw.Rule); err != nil {
		return err
	}
	if m.Severity, err = values("match.severity", raw.Severity); err != nil {
		return err
	}
	m.Label, err = values("match.label", raw.Label)
	return err
}

// UnmarshalJSON reads the parameters strictly.
func (p *Params) UnmarshalJSON(b []byte) error {
	type plain Params
	return strict(b, (*plain)(p), "params")
}

// UnmarshalJSON reads the responder block strictly.
func (r *Responder) UnmarshalJSON(b []byte) error {
	type plain Responder
	return strict(b, (*plain)(r), "responder")
}

// values reads a string or a list of strings; null or absent is none.
func values(field string, raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%s must be a string or a list of strings", field)
	}
	return list, nil
}

// strict decodes b into v, refusing unknown fields, and says where a
// problem is: where is the path of b in the rule ("" for the rule itself).
func strict(b []byte, v any, where string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	prefix := ""
	if where != "" {
		prefix = where + "."
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && isMapField(v, typeErr.Field):
		return fmt.Errorf("%s%s: every value must be a %s (quote it), not a %s", prefix, typeErr.Field, jsonType(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Errorf("%s%s must be a %s, not a %s", prefix, typeErr.Field, jsonType(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &typeErr) && where != "":
		return fmt.Errorf("%s must be a mapping, not a %s", where, typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Errorf("a playbook must be a mapping, not a %s", typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unknown field %s%s", prefix, strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
	}
	if where == "" {
		return err
	}
	return fmt.Errorf("%s: %w", where, err)
}

// isMapField reports whether the field of the struct *v named name in
// JSON is a map.
func isMapField(v any, name string) bool {
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return false
	}
	t = t.Elem()
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); tag == name {
			return t.Field(i).Type.Kind() == reflect.Map
		}
	}
	return false
}

// jsonType names a Go type the way a YAML file's author thinks of it.
func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "map["):
		return "mapping of strings"
	case strings.Contains(goType, "int"):
		return "whole number"
	case strings.Contains(goType, "bool"):
		return "boolean (true or false)"
	case strings.Contains(goType, "string"):
		return "string"
	}
	return goType
}
