package phantom

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The write requests (a container with its artifacts, a list of artifacts)
// are most of what the forwarder sends, and encoding/json spends most of
// its time on them in reflection, in sorting map keys and in compacting
// the raw events they carry. These functions write the same JSON values
// directly. They differ from encoding/json only in ways that do not change
// the values: '<', '>' and '&' are not escaped, and raw data is checked
// but sent as it is instead of compacted.

var errInvalidData = errors.New("data is not valid JSON")

// encodeBody encodes a request body: by hand for the write requests,
// with encoding/json for anything else.
func encodeBody(in any) ([]byte, error) {
	switch v := in.(type) {
	case *Container:
		return appendContainer(make([]byte, 0, len(v.Data)+len(v.Description)+sizeHint(v.Artifacts)), v)
	case []Artifact:
		return appendArtifacts(make([]byte, 0, sizeHint(v)), v)
	default:
		return json.Marshal(in)
	}
}

// sizeHint guesses the encoded size of arts, so that the buffer rarely grows.
func sizeHint(arts []Artifact) int {
	n := 1024
	for i := range arts {
		n += len(arts[i].Data) + 1536
	}
	return n
}

// sortedKeys returns m's keys sorted, in keys when they fit.
func sortedKeys[V any](m map[string]V, keys []string) []string {
	keys = keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendArtifacts(b []byte, arts []Artifact) ([]byte, error) {
	b = append(b, '[')
	for i := range arts {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendArtifact(b, &arts[i]); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// object writes the members of one JSON object, skipping empty ones as
// omitempty does.
type object struct {
	b     []byte
	count int
}

func (o *object) key(k string) {
	if o.count > 0 {
		o.b = append(o.b, ',')
	}
	o.count++
	o.b = appendString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *object) str(k, v string) {
	if v != "" {
		o.key(k)
		o.b = appendString(o.b, v)
	}
}

func (o *object) int(k string, v int64) {
	if v != 0 {
		o.key(k)
		o.b = strconv.AppendInt(o.b, v, 10)
	}
}

func (o *object) bool(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *object) strings(k string, v []string) {
	if len(v) == 0 {
		return
	}
	o.key(k)
	o.b = appendStringList(o.b, v)
}

func (o *object) raw(k string, v json.RawMessage) error {
	if len(v) == 0 {
		return nil
	}
	if !json.Valid(v) {
		return errInvalidData
	}
	o.key(k)
	if !utf8.Valid(v) {
		// JSON text is UTF-8 (RFC 8259), and a strict parser refuses
		// anything else; encoding/json accepts invalid bytes inside
		// strings. They can only be inside strings (outside, the text would
		// not be valid), where U+FFFD takes the place of each run of them.
		v = bytes.ToValidUTF8(v, []byte("\uFFFD"))
	}
	o.b = append(o.b, v...)
	return nil
}

func appendArtifact(b []byte, a *Artifact) ([]byte, error) {
	o := object{b: append(b, '{')}
	o.int("id", a.ID)
	o.int("container_id", a.ContainerID)
	o.int("container", a.Container)
	o.str("name", a.Name)
	o.str("label", a.Label)
	o.str("severity", a.Severity)
	o.str("type", a.Type)
	o.str("source_data_identifier", a.SourceDataIdentifier)
	o.str("start_time", a.StartTime)
	o.str("end_time", a.EndTime)
	o.str("create_time", a.CreateTime)
	if len(a.CEF) > 0 {
		o.key("cef")
		var err error
		if o.b, err = appendAnyMap(o.b, a.CEF); err != nil {
			return nil, err
		}
	}
	if len(a.CEFTypes) > 0 {
		o.key("cef_types")
		o.b = append(o.b, '{')
		var buf [32]string
		for i, k := range sortedKeys(a.CEFTypes, buf[:]) {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			o.b = appendString(o.b, k)
			o.b = append(o.b, ':')
			o.b = appendStringList(o.b, a.CEFTypes[k])
		}
		o.b = append(o.b, '}')
	}
	if err := o.raw("data", a.Data); err != nil {
		return nil, err
	}
	o.strings("tags", a.Tags)
	o.bool("run_automation", a.RunAutomation)
	return append(o.b, '}'), nil
}

func appendContainer(b []byte, c *Container) ([]byte, error) {
	o := object{b: append(b, '{')}
	o.int("id", c.ID)
	o.key("name")
	o.b = appendString(o.b, c.Name)
	o.key("label")
	o.b = appendString(o.b, c.Label)
	o.str("description", c.Description)
	o.str("severity", c.Severity)
	o.str("sensitivity", c.Sensitivity)
	o.str("status", c.Status)
	o.str("source_data_identifier", c.SourceDataIdentifier)
	o.str("start_time", c.StartTime)
	o.str("end_time", c.EndTime)
	o.str("create_time", c.CreateTime)
	if err := o.raw("data", c.Data); err != nil {
		return nil, err
	}
	o.strings("tags", c.Tags)
	if c.RunAutomation != nil {
		o.bool("run_automation", *c.RunAutomation)
	}
	if c.ArtifactCount != 0 {
		o.int("artifact_count", int64(c.ArtifactCount))
	}
	if len(c.Artifacts) > 0 {
		o.key("artifacts")
		var err error
		if o.b, err = appendArtifacts(o.b, c.Artifacts); err != nil {
			return nil, err
		}
	}
	return append(o.b, '}'), nil
}

// appendAnyMap writes a map with sorted keys; string values directly,
// others through encoding/json.
func appendAnyMap(b []byte, m map[string]any) ([]byte, error) {
	b = append(b, '{')
	var buf [32]string
	for i, k := range sortedKeys(m, buf[:]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if s, ok := m[k].(string); ok {
			b = appendString(b, s)
			continue
		}
		v, err := json.Marshal(m[k])
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

func appendStringList(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD as encoding/json
// does, and U+2028 and U+2029 escaped so that the text is also valid
// JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
