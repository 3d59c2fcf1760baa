package falco

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Priority is the severity Falco gives an alert. The zero value is not a
// valid priority; values are ordered so that a higher one is more urgent.
type Priority int

const (
	// PriorityDebug is for rules that are only useful when debugging.
	PriorityDebug Priority = iota + 1
	// PriorityInformational is Falco's "Informational" (also written "info").
	PriorityInformational
	// PriorityNotice is the priority of "Terminal shell in container".
	PriorityNotice
	// PriorityWarning is Falco's "Warning" (also written "warn").
	PriorityWarning
	// PriorityError is Falco's "Error".
	PriorityError
	// PriorityCritical is Falco's "Critical".
	PriorityCritical
	// PriorityAlert is Falco's "Alert".
	PriorityAlert
	// PriorityEmergency is the most urgent priority.
	PriorityEmergency
)

var priorityNames = [...]string{
	PriorityDebug:         "Debug",
	PriorityInformational: "Informational",
	PriorityNotice:        "Notice",
	PriorityWarning:       "Warning",
	PriorityError:         "Error",
	PriorityCritical:      "Critical",
	PriorityAlert:         "Alert",
	PriorityEmergency:     "Emergency",
}

// Priorities lists every valid priority from the least to the most urgent.
func Priorities() []Priority {
	out := make([]Priority, 0, len(priorityNames)-1)
	for p := PriorityDebug; p <= PriorityEmergency; p++ {
		out = append(out, p)
	}
	return out
}

// String returns the name Falco and falcosidekick print, e.g. "Notice".
func (p Priority) String() string {
	if !p.Valid() {
		return fmt.Sprintf("Priority(%d)", int(p))
	}
	return priorityNames[p]
}

// Valid reports whether p is one of the eight Falco priorities.
func (p Priority) Valid() bool { return p >= PriorityDebug && p <= PriorityEmergency }

// ParsePriority reads a priority name in any letter case. It accepts the
// short forms "info" and "warn" that Falco's configuration also accepts.
func ParsePriority(s string) (Priority, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	switch name {
	case "info":
		return PriorityInformational, nil
	case "warn":
		return PriorityWarning, nil
	}
	for p := PriorityDebug; p <= PriorityEmergency; p++ {
		if strings.ToLower(priorityNames[p]) == name {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown priority %q (want one of emergency, alert, critical, error, warning, notice, informational, debug)", truncate(s, 40))
}

// MarshalJSON writes the priority as its name.
func (p Priority) MarshalJSON() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("cannot encode invalid priority %d", int(p))
	}
	return json.Marshal(p.String())
}

// UnmarshalJSON reads a priority name.
func (p *Priority) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("priority must be a string: %w", err)
	}
	v, err := ParsePriority(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}
