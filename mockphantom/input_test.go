package mockphantom

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestShapeChecks(t *testing.T) {
	t.Parallel()
	cefTypes := []struct {
		in   string
		want bool
	}{
		{`{}`, true},
		{` { } `, true},
		{`{"a": []}`, true},
		{`{"a": ["ip", "host name"], "b" : [ "x" ] }`, true},
		{`{"a\"b": ["x\\\"]"]}`, true},
		{`{"a": "ip"}`, false},
		{`{"a": [1]}`, false},
		{`{"a": ["x", null]}`, false},
		{`{"a": [["x"]]}`, false},
		{`{"a": {"b": ["x"]}}`, false},
		{`["x"]`, false},
		{`{"a": ["x"]} {}`, false},
	}
	for _, tt := range cefTypes {
		if got := isStringListObject([]byte(tt.in)); got != tt.want {
			t.Errorf("isStringListObject(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
	lists := []struct {
		in   string
		want bool
	}{
		{`[]`, true},
		{`["a", "b,c", "d\"]"]`, true},
		{`["a", 1]`, false},
		{`[null]`, false},
		{`{"a": 1}`, false},
		{`"a"`, false},
	}
	for _, tt := range lists {
		_, err := optStringList("tags", json.RawMessage(tt.in))
		if got := err == nil; got != tt.want {
			t.Errorf("optStringList(%s) error = %v, want ok=%v", tt.in, err, tt.want)
		}
	}
}

func TestOptString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{`"plain"`, "plain", false},
		{`"with \"escapes\" \u00e9\n"`, "with \"escapes\" é\n", false},
		{`"ünïcode"`, "ünïcode", false},
		{`null`, "", false},
		{``, "", false},
		{`5`, "", true},
		{`["a"]`, "", true},
	}
	for _, tt := range tests {
		got, err := optString("name", json.RawMessage(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("optString(%s) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "name") {
			t.Errorf("optString(%s) error %q does not name the field", tt.in, err)
		}
	}
}

// TestParseArtifactListPaths checks that the one-pass decoding of a list
// and the item-by-item fallback (taken when an item is not an object)
// give the same results for the valid items.
func TestParseArtifactListPaths(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, Config{})
	good := `{"container_id": 1, "name": "a", "cef": {"k": "v"}, "cef_types": {"k": ["x"]}, "source_data_identifier": "s"}`
	bad := `{"container_id": 1, "severity": "urgent"}`
	fast, err := e.srv.parseArtifactList([]byte("["+good+", "+bad+"]"), false)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := e.srv.parseArtifactList([]byte("["+good+", "+bad+", 7]"), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(fast) != 2 || len(slow) != 3 {
		t.Fatalf("got %d and %d items, want 2 and 3", len(fast), len(slow))
	}
	for i := range 2 {
		if fast[i].art != slow[i].art || (fast[i].err == nil) != (slow[i].err == nil) {
			t.Errorf("item %d: fast path %+v, %v; fallback %+v, %v", i, fast[i].art, fast[i].err, slow[i].art, slow[i].err)
		}
	}
	if slow[2].err == nil || !strings.Contains(slow[2].err.Error(), "JSON object") {
		t.Errorf("item 2 (7): err = %v, want a JSON object error", slow[2].err)
	}
	if _, err := e.srv.parseArtifactList([]byte(`[1,`), false); err == nil {
		t.Errorf("broken list parsed without error")
	}
}
