package falco

import (
	"encoding/json"
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
