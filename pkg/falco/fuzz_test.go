package falco

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that whatever it accepts is a
// valid event, and that an accepted event survives a round trip through
// MarshalJSON with the same ID.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"rule":"r","time":"2018-10-05T16:31:56Z","output":"16:31:56.746609046: Warning x"}`))
	f.Add([]byte(`{"rule":"r","priority":"info","time":"2026-01-01T00:00:00Z","output_fields":{"a":[{"b":null}],"n":-1e309}}`))
	f.Add([]byte(`{"rule":"\u0000<script>","priority":"Notice","time":"2026-01-01T00:00:00+02:00","tags":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Parse(data)
		if err != nil {
			return
		}
		if ev.Rule == "" || !ev.Priority.Valid() {
			t.Fatalf("accepted an invalid event: %+v", ev)
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("cannot marshal an accepted event: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("cannot parse own output: %v\n%s", err, out)
		}
		if again.ID() != ev.ID() {
			t.Fatalf("ID changed in a round trip:\n in: %s\nout: %s", data, out)
		}
	})
}

// FuzzSubject checks the subject slug against falcosidekick's definition.
func FuzzSubject(f *testing.F) {
	for _, s := range []string{"Terminal shell in container", "  a--b  ", "Übung", "\xff\xfe", "K", "x_y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rule string) {
		if got, want := slug(rule), sidekickSlug(rule); got != want {
			t.Fatalf("slug(%q) = %q, falcosidekick gives %q", rule, got, want)
		}
	})
}
