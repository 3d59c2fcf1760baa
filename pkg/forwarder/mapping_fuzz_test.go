package forwarder

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// cutMarker is the most bound adds to a value it cuts: "…[N bytes cut]".
const cutMarker = len("…[") + 20 + len(" bytes cut]")

// FuzzArtifact checks the mapping of every event Parse accepts: whatever
// the event holds, what goes to SOAR stays within its bounds, keeps valid
// text valid, is deterministic and can be sent as JSON.
func FuzzArtifact(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "falco", "testdata", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := falco.Parse(data)
		if err != nil {
			return
		}
		a := Artifact(ev, data)
		c := Container(ev, data, "events", "falco-case-x")

		if a.SourceDataIdentifier != "falco-event-"+ev.ID() {
			t.Fatalf("source_data_identifier %q, want falco-event-%s", a.SourceDataIdentifier, ev.ID())
		}
		for _, sev := range []string{a.Severity, c.Severity} {
			if sev != "high" && sev != "medium" && sev != "low" {
				t.Fatalf("severity %q", sev)
			}
		}
		checkBound(t, "artifact name", a.Name, maxNameLen)
		checkBound(t, "case name", c.Name, maxNameLen)
		checkBound(t, "case description", c.Description, maxDescriptionLen)
		for k, v := range a.CEF {
			s, ok := v.(string)
			if !ok {
				t.Fatalf("cef[%s] is a %T, want a string", k, v)
			}
			checkBound(t, "cef["+k+"]", s, maxCEFValueLen, cefSource(ev, k))
		}
		for name, tags := range map[string][]string{"artifact": a.Tags, "case": c.Tags} {
			if len(tags) > maxTags {
				t.Fatalf("%s has %d tags, want at most %d", name, len(tags), maxTags)
			}
			for _, tag := range tags {
				checkBound(t, name+" tag", tag, maxTagLen)
			}
		}
		for name, raw := range map[string]json.RawMessage{"artifact": a.Data, "case": c.Data} {
			if !json.Valid(raw) || bytes.TrimSpace(raw)[0] != '{' {
				t.Fatalf("%s data is not a JSON object: %.200q", name, raw)
			}
			if len(raw) > maxRawData {
				t.Fatalf("%s data is %d bytes, want at most %d", name, len(raw), maxRawData)
			}
		}
		if len(data) <= maxRawData && !bytes.Equal(a.Data, data) {
			t.Fatal("artifact data is not the raw event, which fits")
		}

		first, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("cannot send the artifact as JSON: %v", err)
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("cannot send the case as JSON: %v", err)
		}
		again, _ := falco.Parse(data)
		if second, _ := json.Marshal(Artifact(again, data)); !bytes.Equal(first, second) {
			t.Fatal("the same event maps to two different artifacts")
		}
		var back phantom.Artifact
		if err := json.Unmarshal(first, &back); err != nil || back.SourceDataIdentifier != a.SourceDataIdentifier {
			t.Fatalf("the artifact does not survive a JSON round trip: %v", err)
		}
	})
}

// checkBound fails when s is longer than limit plus a cut marker. Parse
// gives valid UTF-8 for every string field (lists and objects are kept as
// they came), so s must be valid text unless raw says otherwise.
func checkBound(t *testing.T, what, s string, limit int, raw ...string) {
	t.Helper()
	if len(s) > limit+cutMarker {
		t.Fatalf("%s is %d bytes, want at most %d", what, len(s), limit+cutMarker)
	}
	if len(s) > limit && !strings.HasSuffix(s, " bytes cut]") {
		t.Fatalf("%s is %d bytes without a cut marker", what, len(s))
	}
	if (len(raw) == 0 || utf8.ValidString(raw[0])) && !utf8.ValidString(s) {
		t.Fatalf("%s is not valid UTF-8 (cut inside a character?): %.100q", what, s)
	}
}

// cefSource returns the event value CEF key k was made from, for the
// output fields; "" (valid text) for the others.
func cefSource(ev *falco.Event, k string) string {
	for _, f := range cefFields {
		if f.cef == k {
			return ev.OutputFields.String(f.falco)
		}
	}
	if k == "containerImage" {
		return imageOf(ev)
	}
	return ""
}
