// Package falco is the model of a Falco alert as Falco writes it in JSON and
// as falcosidekick publishes it to NATS: parsing, priorities and subjects.
package falco

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxEventBytes is the largest event Parse accepts. Real alerts are a few
// kilobytes; anything near this size is hostile or broken.
const MaxEventBytes = 1 << 20

// MaxDepth is the deepest nesting of objects and lists Parse accepts. A
// Falco event nests three levels deep; SOAR keeps the event inside its own
// objects, and its parser has a depth limit of its own.
const MaxDepth = 32

// Event is one Falco alert.
type Event struct {
	// Time is when the kernel event happened (Falco's "time").
	Time time.Time
	// Rule is the name of the rule that fired, e.g. "Terminal shell in container".
	Rule string
	// Priority is the rule's priority.
	Priority Priority
	// Source is the event source, e.g. "syscall"; empty in 2018-era events.
	Source string
	// Hostname is the node Falco runs on; empty in 2018-era events.
	Hostname string
	// Output is the rendered alert line, including its time and priority prefix.
	Output string
	// Tags are the rule's tags.
	Tags []string
	// OutputFields are the fields the output line was rendered from.
	OutputFields Fields
	// UUID is the id falcosidekick adds. It is new on every resend, so it
	// must not be used to recognise an event: use ID instead.
	UUID string
}

// Fields holds output fields. A value is nil (JSON null), a string, a
// json.Number, a bool, or a json.RawMessage for a list or an object.
type Fields map[string]any

// String returns a field as text: "" when absent or null, numbers exactly as
// Falco wrote them, lists and objects as compact JSON.
func (f Fields) String(key string) string {
	switch v := f[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case json.RawMessage:
		return string(v)
	default:
		return ""
	}
}

// ParseError says why an input is not a Falco event. Field is the JSON key
// at fault, or "" when the input as a whole is wrong.
type ParseError struct {
	Field  string
	Reason string
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return "invalid Falco event: " + e.Reason
	}
	return fmt.Sprintf("invalid Falco event: field %q: %s", e.Field, e.Reason)
}

// ErrTooLarge is wrapped by the error Parse returns for an input larger than MaxEventBytes.
var ErrTooLarge = errors.New("event too large")

// Parse reads one event in any of the shapes in use: what falcosidekick
// publishes (with "uuid"), Falco's own json_output, and 2018-era events that
// lack "source", "hostname" and "tags". When "priority" is missing it is
// taken from the output's "HH:MM:SS.nnnnnnnnn: Priority" prefix. Parse never
// panics; every rejection is a *ParseError (or wraps ErrTooLarge).
func Parse(data []byte) (*Event, error) {
	if len(data) > MaxEventBytes {
		return nil, fmt.Errorf("invalid Falco event: %w: %d bytes (limit %d)", ErrTooLarge, len(data), MaxEventBytes)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, &ParseError{Reason: "empty input"}
	}
	if data[0] != '{' {
		return nil, &ParseError{Reason: "not a JSON object (is Falco's json_output enabled?)"}
	}
	if tooDeep(data, MaxDepth) {
		return nil, &ParseError{Reason: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
	}
	// One pass: a decoder into the known fields, numbers kept as written.
	var w struct {
		Time         *string        `json:"time"`
		Rule         *string        `json:"rule"`
		Priority     *string        `json:"priority"`
		Source       *string        `json:"source"`
		Hostname     *string        `json:"hostname"`
		Output       *string        `json:"output"`
		UUID         *string        `json:"uuid"`
		Tags         []string       `json:"tags"`
		OutputFields map[string]any `json:"output_fields"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return nil, decodeError(err)
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return nil, &ParseError{Reason: "malformed JSON: data after the object"}
	}
	if w.Rule == nil {
		return nil, &ParseError{Field: "rule", Reason: "is missing"}
	}
	if strings.TrimSpace(*w.Rule) == "" {
		return nil, &ParseError{Field: "rule", Reason: "is empty"}
	}
	ev := &Event{Rule: *w.Rule, Source: deref(w.Source), Hostname: deref(w.Hostname), Output: deref(w.Output), UUID: deref(w.UUID), Tags: w.Tags}
	var err error
	if ev.Priority, err = parsePriority(deref(w.Priority), ev.Output); err != nil {
		return nil, err
	}
	if w.Time == nil {
		return nil, &ParseError{Field: "time", Reason: "is missing"}
	}
	if ev.Time, err = time.Parse(time.RFC3339Nano, *w.Time); err != nil {
		return nil, &ParseError{Field: "time", Reason: fmt.Sprintf("want RFC 3339 time, got %q", truncate(*w.Time, 64))}
	}
	if y := ev.Time.UTC().Year(); y < 1 || y > 9999 {
		// "0000-01-01T00:30:00+01:00" and "9999-12-31T23:30:00-01:00"
		// parse, but no SOAR can store a time outside these years.
		return nil, &ParseError{Field: "time", Reason: fmt.Sprintf("%q is outside the years 1 to 9999 (in UTC)", truncate(*w.Time, 64))}
	}
	if ev.OutputFields, err = fields(w.OutputFields); err != nil {
		return nil, err
	}
	return ev, nil
}

// tooDeep reports whether the JSON text b nests objects and lists deeper
// than limit. b may be invalid; the decoder finds out.
func tooDeep(b []byte, limit int) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			if depth++; depth > limit {
				return true
			}
		case '}', ']':
			depth--
		case '"':
			// Jump to the closing quote: one not escaped by an odd number
			// of backslashes.
			for {
				j := bytes.IndexByte(b[i+1:], '"')
				if j < 0 {
					return false
				}
				i += j + 1
				k := i - 1
				for k >= 0 && b[k] == '\\' {
					k--
				}
				if (i-1-k)%2 == 0 {
					break
				}
			}
		}
	}
	return false
}

// decodeError turns a decoding error into a ParseError naming the field.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field, _, _ := strings.Cut(te.Field, ".")
		want := map[string]string{"tags": "a list of strings", "output_fields": "an object"}[field]
		if want == "" {
			want = "a string"
		}
		return &ParseError{Field: field, Reason: "want " + want + ", got " + kindName(te.Value)}
	}
	return &ParseError{Reason: "malformed JSON: " + err.Error()}
}

// kindName names a JSON kind as encoding/json reports it ("number 42",
// "object", "array", "bool", "string").
func kindName(v string) string {
	switch {
	case strings.HasPrefix(v, "number"):
		return "a number"
	case v == "object":
		return "an object"
	case v == "array":
		return "a list"
	case v == "bool":
		return "a boolean"
	case v == "string":
		return "a string"
	}
	return v
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func parsePriority(name, output string) (Priority, error) {
	if name == "" {
		if _, p, _, ok := SplitOutput(output); ok {
			return p, nil
		}
		return 0, &ParseError{Field: "priority", Reason: "is missing and the output has no priority prefix"}
	}
	p, err := ParsePriority(name)
	if err != nil {
		return 0, &ParseError{Field: "priority", Reason: err.Error()}
	}
	return p, nil
}

// fields keeps scalar output fields as they are and lists or objects as
// compact JSON.
func fields(m map[string]any) (Fields, error) {
	out := make(Fields, len(m))
	for k, v := range m {
		switch v.(type) {
		case []any, map[string]any:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, &ParseError{Field: "output_fields." + k, Reason: err.Error()}
			}
			out[k] = json.RawMessage(b)
		default:
			out[k] = v
		}
	}
	return out, nil
}

// SplitOutput splits Falco's output line "HH:MM:SS.nnnnnnnnn: Priority text"
// (or the same with an ISO 8601 time) into its parts. ok is false when the
// line has no such prefix.
func SplitOutput(output string) (clock string, p Priority, text string, ok bool) {
	head, rest, found := strings.Cut(output, ": ")
	if !found || len(head) < 8 || !strings.ContainsRune(head, ':') || head[0] < '0' || head[0] > '9' {
		return "", 0, output, false
	}
	name, text, _ := strings.Cut(rest, " ")
	p, err := ParsePriority(name)
	if err != nil {
		return "", 0, output, false
	}
	return head, p, text, true
}

// ID identifies the event itself: the same alert resent (by falcosidekick
// with a new uuid, or redelivered by NATS) has the same ID; two different
// alerts do not. It hashes the time, rule, priority, source, host, output
// and output fields.
func (e *Event) ID() string {
	h := sha256.New()
	write := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	write(strconv.FormatInt(e.Time.UnixNano(), 10))
	write(e.Rule)
	write(e.Priority.String())
	write(e.Source)
	write(e.Hostname)
	write(e.Output)
	keys := make([]string, 0, len(e.OutputFields))
	for k := range e.OutputFields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		write(k)
		if e.OutputFields[k] == nil {
			write("\x00null")
		} else {
			write(e.OutputFields.String(k))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Subject is the NATS subject falcosidekick publishes this event on.
func (e *Event) Subject() string { return Subject(e.Priority, e.Rule) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
