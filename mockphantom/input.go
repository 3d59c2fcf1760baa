package mockphantom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// inputError is a client mistake; it becomes a 400 with its message.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// writeInputError answers 400 for an inputError and 500 for anything else.
func (s *Server) writeInputError(w http.ResponseWriter, r *http.Request, op string, err error) {
	var ie *inputError
	if errors.As(err, &ie) {
		writeError(w, http.StatusBadRequest, ie.msg)
		return
	}
	s.internalError(w, r, op, err)
}

// maxPooledBody is the largest body buffer kept for reuse.
const maxPooledBody = 8 << 20

// readBody reads the request body into a buffer from the pool; call
// release when nothing refers to body any more. It answers the request
// itself (413 or 400) and returns ok=false when the body cannot be read.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), ok bool) {
	buf, _ := s.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	release = func() {
		if buf.Cap() <= maxPooledBody {
			s.bodies.Put(buf)
		}
	}
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, s.cfg.MaxBodyBytes)) + 1)
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		release()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, tooLargeMessage(tooBig.Limit))
			return nil, nil, false
		}
		writeError(w, http.StatusBadRequest, "failed to read request body")
		return nil, nil, false
	}
	if !utf8.Valid(buf.Bytes()) {
		// JSON text must be UTF-8 (RFC 8259), and SOAR's parser refuses
		// anything else; stored, it would make every listing invalid JSON.
		release()
		writeError(w, http.StatusBadRequest, "request body is not valid UTF-8")
		return nil, nil, false
	}
	return buf.Bytes(), release, true
}

// readObject is readBody for a body that must be a JSON object: it
// answers 400 with msg when it is something else.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, msg string) (body []byte, release func(), ok bool) {
	if body, release, ok = s.readBody(w, r); ok && jsonKind(body) != '{' {
		release()
		writeError(w, http.StatusBadRequest, msg)
		return nil, nil, false
	}
	return body, release, ok
}

// jsonKind returns the first non-space byte of a JSON text ('{', '[', ...),
// or 0 for an empty body. Validity is checked when the body is decoded.
func jsonKind(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// The opt* helpers read one optional field kept as raw JSON. Absent and
// null both mean "not given". Their errors name the field.

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func optString(field string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", badInput("%s must be a string", field)
	}
	// Most strings have no escapes: then the text between the quotes is
	// the value, and decoding it again would only cost time.
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badInput("%s must be a string", field)
	}
	return s, nil
}

func optBool(field string, raw json.RawMessage) (bool, error) {
	switch string(raw) {
	case "", "null", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, badInput("%s must be true or false", field)
}

func optInt(field string, raw json.RawMessage) (int64, bool, error) {
	if isNull(raw) {
		return 0, false, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, false, badInput("%s must be an integer", field)
	}
	return n, true, nil
}

// optObject returns the object's JSON text as sent, or def.
func optObject(field string, raw json.RawMessage, def string) (string, error) {
	if isNull(raw) {
		return def, nil
	}
	if raw[0] != '{' {
		return "", badInput("%s must be a JSON object", field)
	}
	return string(raw), nil
}

// optAny returns any JSON value's text as sent, or def.
func optAny(raw json.RawMessage, def string) string {
	if isNull(raw) {
		return def
	}
	return string(raw)
}

// optStringList returns a list of strings as JSON text, or "[]".
func optStringList(field string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "[]", nil
	}
	if end, ok := scanStringList(raw, 0); !ok || skipSpace(raw, end) != len(raw) {
		return "", badInput("%s must be a list of strings", field)
	}
	return string(raw), nil
}

// optCEFTypes checks the shape {"key": ["type", ...]} and returns its text.
func optCEFTypes(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "{}", nil
	}
	if !isStringListObject(raw) {
		return "", badInput("cef_types must be an object mapping each cef key to a list of strings")
	}
	return string(raw), nil
}

// The scan helpers check the shape of JSON text that is already known to
// be valid, without building Go values (this runs for every artifact).
// Out-of-range reads yield 0, which matches no expected byte.

func byteAt(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// scanStringList checks that a list of strings starts at b[i] and returns
// the index after it.
func scanStringList(b []byte, i int) (int, bool) {
	i = skipSpace(b, i)
	if byteAt(b, i) != '[' {
		return i, false
	}
	i = skipSpace(b, i+1)
	if byteAt(b, i) == ']' {
		return i + 1, true
	}
	for {
		if byteAt(b, i) != '"' {
			return i, false
		}
		i = skipSpace(b, skipString(b, i))
		switch byteAt(b, i) {
		case ']':
			return i + 1, true
		case ',':
			i = skipSpace(b, i+1)
		default:
			return i, false
		}
	}
}

// isStringListObject reports whether b is an object whose values are all
// lists of strings.
func isStringListObject(b []byte) bool {
	i := skipSpace(b, 0)
	if byteAt(b, i) != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if byteAt(b, i) == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if byteAt(b, i) != '"' {
			return false
		}
		i = skipSpace(b, skipString(b, i))
		if byteAt(b, i) != ':' {
			return false
		}
		var ok bool
		if i, ok = scanStringList(b, i+1); !ok {
			return false
		}
		i = skipSpace(b, i)
		switch byteAt(b, i) {
		case '}':
			return skipSpace(b, i+1) == len(b)
		case ',':
			i = skipSpace(b, i+1)
		default:
			return false
		}
	}
}

// skipValue returns the index after the value starting at b[i] (after
// spaces). b must be valid JSON.
func skipValue(b []byte, i int) int {
	i = skipSpace(b, i)
	switch byteAt(b, i) {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// eachMember calls fn with the key and the raw value of each member of
// the object b, in order. b must be valid JSON. Keys are decoded as
// encoding/json decodes them.
func eachMember(b []byte, fn func(key string, val json.RawMessage)) {
	i := skipSpace(b, 0) + 1 // after '{'
	for {
		i = skipSpace(b, i)
		if byteAt(b, i) != '"' {
			return // '}'
		}
		end := skipString(b, i)
		key := decodeKey(b[i:end])
		i = skipSpace(b, skipSpace(b, end)+1) // after ':'
		valEnd := skipValue(b, i)
		fn(key, b[i:valEnd])
		if i = skipSpace(b, valEnd); byteAt(b, i) == ',' {
			i++
		}
	}
}

// eachElement calls fn with each element of the list b, in order. b must
// be valid JSON.
func eachElement(b []byte, fn func(val json.RawMessage)) {
	i := skipSpace(b, skipSpace(b, 0)+1) // after '['
	for byteAt(b, i) != ']' && i < len(b) {
		end := skipValue(b, i)
		if end <= i {
			return // not valid JSON after all: stop rather than loop
		}
		fn(b[i:end])
		if i = skipSpace(b, end); byteAt(b, i) == ',' {
			i = skipSpace(b, i+1)
		}
	}
}

func decodeKey(quoted []byte) string {
	if inner := quoted[1 : len(quoted)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var k string
	_ = json.Unmarshal(quoted, &k) // valid JSON: cannot fail
	return k
}

// setField stores val in the field of the struct that key names, as
// encoding/json would: the exact name first, else one that matches
// without regard to case. names lists the fields; field returns the one
// with an exact name, or nil.
func setField(key string, val json.RawMessage, names []string, field func(string) *json.RawMessage) {
	if f := field(key); f != nil {
		*f = val
		return
	}
	for _, name := range names {
		if strings.EqualFold(name, key) {
			*field(name) = val
			return
		}
	}
}

// optOwner accepts a user id or a user name and returns its JSON text.
func optOwner(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	if raw[0] == '"' {
		return string(raw), nil
	}
	if _, _, err := optInt("owner_id", raw); err != nil {
		return "", badInput("owner_id must be an integer user id or a user name")
	}
	return string(raw), nil
}

// optTime reads a time and returns it in the stored layout, or "".
func optTime(field string, raw json.RawMessage) (string, error) {
	s, err := optString(field, raw)
	if err != nil || s == "" {
		return "", err
	}
	t, err := store.ParseTime(s)
	if err != nil {
		return "", badInput("%s %q is not a valid time; use RFC 3339 such as 2006-01-02T15:04:05.000000Z", field, s)
	}
	return store.FormatTime(t), nil
}

// checkSeverity answers with the real product's message for unknown ones.
func (s *Server) checkSeverity(sev string) (string, error) {
	if sev == "" {
		return "medium", nil
	}
	if !slices.Contains(s.cfg.Severities, sev) {
		return "", badInput("Severity matching query does not exist.")
	}
	return sev, nil
}
