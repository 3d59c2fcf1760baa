package falco

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Subject is the NATS subject falcosidekick uses for an alert with the
// default subject template: "falco." + lower-case priority + "." + slug of
// the rule, where the slug is the lower-cased rule with every run of
// characters other than a-z and 0-9 replaced by "_", trimmed of "_".
// Example: Subject(PriorityNotice, "Terminal shell in container") is
// "falco.notice.terminal_shell_in_container".
func Subject(p Priority, rule string) string {
	return "falco." + strings.ToLower(p.String()) + "." + slug(rule)
}

func slug(rule string) string {
	var b strings.Builder
	b.Grow(len(rule))
	pendingSep := false
	for _, r := range strings.ToLower(rule) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if pendingSep && b.Len() > 0 {
				b.WriteByte('_')
			}
			pendingSep = false
			b.WriteRune(r)
			continue
		}
		pendingSep = true
	}
	return b.String()
}

// ValidSubject checks a NATS subject as a subscriber gives it: tokens
// separated by dots, none empty, no white space; with wildcards, "*" and a
// final ">" as whole tokens.
func ValidSubject(s string, wildcards bool) error {
	if s == "" {
		return errors.New("empty")
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return fmt.Errorf("%q has an empty token", s)
		case strings.ContainsAny(t, " \t\r\n"):
			return fmt.Errorf("%q contains white space", s)
		case (t == "*" || t == ">") && !wildcards:
			return fmt.Errorf("%q must not contain wildcards", s)
		case t == ">" && i != len(tokens)-1:
			return fmt.Errorf("%q: > must be the last token", s)
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("%q: wildcards must be whole tokens", s)
		}
	}
	return nil
}

// SubjectCovers reports whether every subject matching filter also
// matches pattern, e.g. "falco.>" covers "falco.*.*".
func SubjectCovers(pattern, filter string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(filter, ".")
	for i, t := range p {
		if t == ">" {
			return len(s) > i
		}
		if i >= len(s) || s[i] == ">" || (t != "*" && t != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

// wireEvent is the JSON shape falcosidekick publishes.
type wireEvent struct {
	UUID         string    `json:"uuid,omitempty"`
	Output       string    `json:"output"`
	Priority     Priority  `json:"priority"`
	Rule         string    `json:"rule"`
	Time         time.Time `json:"time"`
	OutputFields Fields    `json:"output_fields"`
	Source       string    `json:"source,omitempty"`
	Tags         []string  `json:"tags,omitempty"`
	Hostname     string    `json:"hostname,omitempty"`
}

// MarshalJSON writes the event in the shape falcosidekick publishes.
func (e *Event) MarshalJSON() ([]byte, error) {
	fields := e.OutputFields
	if fields == nil {
		fields = Fields{}
	}
	return json.Marshal(wireEvent{
		UUID: e.UUID, Output: e.Output, Priority: e.Priority, Rule: e.Rule, Time: e.Time,
		OutputFields: fields, Source: e.Source, Tags: e.Tags, Hostname: e.Hostname,
	})
}
