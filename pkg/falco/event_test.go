package falco

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file                   string
		wantRule               string
		wantPriority           Priority
		wantTime               string
		wantHost, wantSource   string
		wantContainer, wantPod string
		wantTags               int
		wantUUID               bool
	}{
		{
			file: "falco-0.40-terminal-shell.json", wantRule: "Terminal shell in container", wantPriority: PriorityNotice,
			wantTime: "2026-11-27T01:36:43.85492336Z", wantHost: "vm", wantSource: "syscall",
			wantContainer: "0c30aac0e6f0", wantPod: "", wantTags: 5,
		},
		{
			file: "sidekick-terminal-shell.json", wantRule: "Terminal shell in container", wantPriority: PriorityNotice,
			wantTime: "2026-11-27T09:12:05.118230448Z", wantHost: "worker-2", wantSource: "syscall",
			wantContainer: "5d1f0ab2c3e4", wantPod: "web-7c9f8d5b6-x2kqz", wantTags: 5, wantUUID: true,
		},
		{
			file: "falco-2018-terminal-shell.json", wantRule: "Terminal shell in container", wantPriority: PriorityNotice,
			wantTime: "2018-10-05T16:31:56.746609046Z", wantContainer: "8ba3f1b5c2d1", wantPod: "nginx-65899c769f-w6z4v",
		},
		{
			file: "falco-iso-prefix-write-below-etc.json", wantRule: "Write below etc", wantPriority: PriorityError,
			wantTime: "2026-11-27T01:40:02.000123456Z", wantHost: "node-a", wantSource: "syscall",
			wantContainer: "host", wantTags: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			ev, err := Parse(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.Rule != tt.wantRule || ev.Priority != tt.wantPriority {
				t.Errorf("rule, priority = %q, %v; want %q, %v", ev.Rule, ev.Priority, tt.wantRule, tt.wantPriority)
			}
			if got := ev.Time.UTC().Format(time.RFC3339Nano); got != tt.wantTime {
				t.Errorf("time = %s, want %s", got, tt.wantTime)
			}
			if ev.Hostname != tt.wantHost || ev.Source != tt.wantSource {
				t.Errorf("hostname, source = %q, %q; want %q, %q", ev.Hostname, ev.Source, tt.wantHost, tt.wantSource)
			}
			if got := ev.OutputFields.String("container.id"); got != tt.wantContainer {
				t.Errorf("container.id = %q, want %q", got, tt.wantContainer)
			}
			if got := ev.OutputFields.String("k8s.pod.name"); got != tt.wantPod {
				t.Errorf("k8s.pod.name = %q, want %q", got, tt.wantPod)
			}
			if len(ev.Tags) != tt.wantTags {
				t.Errorf("tags = %v, want %d of them", ev.Tags, tt.wantTags)
			}
			if (ev.UUID != "") != tt.wantUUID {
				t.Errorf("uuid = %q, want present=%v", ev.UUID, tt.wantUUID)
			}
		})
	}
}

func TestParseFieldTypes(t *testing.T) {
	t.Parallel()
	ev, err := Parse(readTestdata(t, "falco-0.40-terminal-shell.json"))
	if err != nil {
		t.Fatal(err)
	}
	// evt.time does not fit a float64: it must survive digit for digit.
	for key, want := range map[string]string{
		"evt.time":      "1795743403854923360",
		"user.loginuid": "-1",
		"proc.tty":      "34816",
		"proc.cmdline":  "sh -c echo falco-probe-456; sleep 1",
		"not.there":     "",
	} {
		if got := ev.OutputFields.String(key); got != want {
			t.Errorf("field %s = %q, want %q", key, got, want)
		}
	}
	if _, ok := ev.OutputFields["evt.time"].(json.Number); !ok {
		t.Errorf("evt.time has type %T, want json.Number", ev.OutputFields["evt.time"])
	}

	old, err := Parse(readTestdata(t, "falco-2018-terminal-shell.json"))
	if err != nil {
		t.Fatal(err)
	}
	if v, present := old.OutputFields["proc.pname"]; !present || v != nil {
		t.Errorf("proc.pname = %#v (present %v), want a present nil", v, present)
	}

	mixed, err := Parse([]byte(`{"rule":"r","priority":"debug","time":"2026-01-02T03:04:05Z",
		"output_fields":{"b":true,"l":[1, "x"],"o":{"k": null}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"b": "true", "l": `[1,"x"]`, "o": `{"k":null}`} {
		if got := mixed.OutputFields.String(key); got != want {
			t.Errorf("field %s = %q, want %q", key, got, want)
		}
	}
}

func TestParsePriorityFromPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		output string
		want   Priority
	}{
		{"16:31:56.746609046: Warning Sensitive file opened for reading (user=root)", PriorityWarning},
		{"2026-11-27T01:40:02.000123456+0000: Critical Something", PriorityCritical},
		{"01:02:03.000000001: Informational x", PriorityInformational},
	}
	for _, tt := range tests {
		in, _ := json.Marshal(map[string]any{"rule": "r", "time": "2018-10-05T16:31:56Z", "output": tt.output})
		ev, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(output %q): %v", tt.output, err)
			continue
		}
		if ev.Priority != tt.want {
			t.Errorf("priority from %q = %v, want %v", tt.output, ev.Priority, tt.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in  string
		wantField string
		wantIn    string
	}{
		{"empty", "", "", "empty input"},
		{"text line", "01:36:43.854923360: Notice A shell was spawned", "", "not a JSON object"},
		{"list", `[{"rule":"r"}]`, "", "not a JSON object"},
		{"truncated", `{"rule":"Terminal shell in container","priority":"Not`, "", "malformed JSON"},
		{"no rule", `{"priority":"Notice","time":"2026-01-01T00:00:00Z"}`, "rule", "missing"},
		{"blank rule", `{"rule":"  ","priority":"Notice","time":"2026-01-01T00:00:00Z"}`, "rule", "empty"},
		{"rule number", `{"rule":42,"priority":"Notice","time":"2026-01-01T00:00:00Z"}`, "rule", "got a number"},
		{"bad priority", `{"rule":"r","priority":"Urgent","time":"2026-01-01T00:00:00Z"}`, "priority", "unknown priority"},
		{"no priority", `{"rule":"r","time":"2026-01-01T00:00:00Z","output":"no prefix"}`, "priority", "missing"},
		{"no time", `{"rule":"r","priority":"Notice"}`, "time", "missing"},
		{"bad time", `{"rule":"r","priority":"Notice","time":"yesterday"}`, "time", "RFC 3339"},
		{"time number", `{"rule":"r","priority":"Notice","time":1700000000}`, "time", "got a number"},
		{"tags object", `{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","tags":{"a":1}}`, "tags", "list of strings"},
		{"fields list", `{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","output_fields":[1]}`, "output_fields", "want an object"},
		{"output bool", `{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","output":true}`, "output", "got a boolean"},
		// Times that parse but that no SOAR can store.
		{"year 0", `{"rule":"r","priority":"Notice","time":"0000-06-01T00:00:00Z"}`, "time", "outside the years 1 to 9999"},
		{"year 0 in UTC", `{"rule":"r","priority":"Notice","time":"0001-01-01T00:30:00+01:00"}`, "time", "outside the years 1 to 9999"},
		{"year 10000 in UTC", `{"rule":"r","priority":"Notice","time":"9999-12-31T23:30:00-01:00"}`, "time", "outside the years 1 to 9999"},
		// Nested deeper than a Falco event ever is, in a field the event
		// model ignores but the raw event would carry to SOAR.
		{"deep unknown field", `{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "", "nested deeper than 32 levels"},
		{"deep field", `{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","output_fields":{"x":` + strings.Repeat(`{"a":`, 31) + "1" + strings.Repeat("}", 31) + `}}`, "", "nested deeper than 32 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error = %v, want a *ParseError", tt.in, err)
			}
			if pe.Field != tt.wantField || !strings.Contains(pe.Error(), tt.wantIn) {
				t.Errorf("error = %q (field %q), want field %q and text %q", pe.Error(), pe.Field, tt.wantField, tt.wantIn)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	big := `{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","output":"` + strings.Repeat("A", MaxEventBytes) + `"}`
	_, err := Parse([]byte(big))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error = %v, want ErrTooLarge", err)
	}
}

func TestParseDeeplyNested(t *testing.T) {
	t.Parallel()
	nested := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
	in := `{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","output_fields":{"x":` + nested + `}}`
	if _, err := Parse([]byte(in)); err == nil {
		t.Fatal("Parse accepted 20000 levels of nesting, want an error")
	}
}

// Nesting is counted outside strings only: brackets and escaped quotes
// inside strings do not count.
func TestParseNestingLimit(t *testing.T) {
	t.Parallel()
	head := `{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","output_fields":{"s":"[[[[\\\"{{{{\\\\","x":`
	ok := head + strings.Repeat("[", MaxDepth-2) + strings.Repeat("]", MaxDepth-2) + `}}`
	if _, err := Parse([]byte(ok)); err != nil {
		t.Errorf("Parse of an event nested %d levels deep: %v", MaxDepth, err)
	}
	deep := head + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}}`
	if _, err := Parse([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("Parse of an event nested %d levels deep: %v, want it refused", MaxDepth+1, err)
	}
}

// Duplicate keys: the last one wins, as in encoding/json, Python's json
// module (SOAR) and JavaScript's JSON.parse, so that a field and the raw
// event read back agree.
func TestParseDuplicateKeysLastWins(t *testing.T) {
	t.Parallel()
	in := `{"rule":"first","rule":"Terminal shell in container","priority":"Notice","time":"2026-01-01T00:00:00Z",` +
		`"output_fields":{"proc.cmdline":"sh -c hidden","proc.cmdline":"sh -c shown"}}`
	ev, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Rule         string            `json:"rule"`
		OutputFields map[string]string `json:"output_fields"`
	}
	if err := json.Unmarshal([]byte(in), &raw); err != nil {
		t.Fatal(err)
	}
	if ev.Rule != "Terminal shell in container" || ev.OutputFields.String("proc.cmdline") != "sh -c shown" {
		t.Errorf("rule %q, proc.cmdline %q; want the last of each", ev.Rule, ev.OutputFields.String("proc.cmdline"))
	}
	if raw.Rule != ev.Rule || raw.OutputFields["proc.cmdline"] != ev.OutputFields.String("proc.cmdline") {
		t.Errorf("the raw event decodes to rule %q, proc.cmdline %q; Parse to %q, %q", raw.Rule, raw.OutputFields["proc.cmdline"], ev.Rule, ev.OutputFields.String("proc.cmdline"))
	}
}

func TestIDIgnoresSidekickUUID(t *testing.T) {
	t.Parallel()
	raw := readTestdata(t, "sidekick-terminal-shell.json")
	a, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	resent := strings.Replace(string(raw), a.UUID, "00000000-0000-4000-8000-000000000000", 1)
	b, err := Parse([]byte(resent))
	if err != nil {
		t.Fatal(err)
	}
	if a.UUID == b.UUID {
		t.Fatal("test input did not change the uuid")
	}
	if a.ID() != b.ID() {
		t.Errorf("ID changed with the uuid: %s vs %s", a.ID(), b.ID())
	}
	later := *b
	later.Time = later.Time.Add(time.Nanosecond)
	if later.ID() == a.ID() {
		t.Error("two events a nanosecond apart have the same ID")
	}
	otherCmd := *b
	otherCmd.OutputFields = Fields{}
	for k, v := range b.OutputFields {
		otherCmd.OutputFields[k] = v
	}
	otherCmd.OutputFields["proc.cmdline"] = "bash -i"
	if otherCmd.ID() == a.ID() {
		t.Error("events with different output fields have the same ID")
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"sidekick-terminal-shell.json", "falco-0.40-terminal-shell.json", "falco-2018-terminal-shell.json"} {
		a, err := Parse(readTestdata(t, file))
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("%s: Marshal: %v", file, err)
		}
		b, err := Parse(out)
		if err != nil {
			t.Fatalf("%s: Parse(Marshal): %v\n%s", file, err, out)
		}
		if a.ID() != b.ID() || a.UUID != b.UUID || len(a.Tags) != len(b.Tags) {
			t.Errorf("%s: round trip changed the event:\n%s", file, out)
		}
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Priority
		rule string
		want string
	}{
		{PriorityNotice, "Terminal shell in container", "falco.notice.terminal_shell_in_container"},
		{PriorityError, "Write below etc", "falco.error.write_below_etc"},
		{PriorityWarning, "Read sensitive file untrusted", "falco.warning.read_sensitive_file_untrusted"},
		{PriorityCritical, "  Launch Privileged Container!! ", "falco.critical.launch_privileged_container"},
		{PriorityInformational, "Contact K8S API Server From Container", "falco.informational.contact_k8s_api_server_from_container"},
		{PriorityDebug, "Netcat (nc) remote code-exec", "falco.debug.netcat_nc_remote_code_exec"},
		{PriorityAlert, "Übung ünd Ärger", "falco.alert.bung_nd_rger"},
		{PriorityEmergency, "___", "falco.emergency."},
	}
	for _, tt := range tests {
		if got := Subject(tt.p, tt.rule); got != tt.want {
			t.Errorf("Subject(%v, %q) = %q, want %q", tt.p, tt.rule, got, tt.want)
		}
	}
}

// sidekickSlug is falcosidekick's documented definition of the rule slug,
// written as a regular expression; slug must agree with it on every input.
var sidekickSlugRE = regexp.MustCompile("[^a-z0-9]+")

func sidekickSlug(rule string) string {
	return strings.Trim(sidekickSlugRE.ReplaceAllString(strings.ToLower(rule), "_"), "_")
}

func TestParsePriority(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Priority{
		"Emergency": PriorityEmergency, "ALERT": PriorityAlert, "critical": PriorityCritical, "Error": PriorityError,
		"warning": PriorityWarning, "warn": PriorityWarning, "Notice": PriorityNotice, "informational": PriorityInformational,
		"info": PriorityInformational, " Debug ": PriorityDebug,
	} {
		got, err := ParsePriority(in)
		if err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "urgent", "noticee", "5"} {
		if _, err := ParsePriority(bad); err == nil {
			t.Errorf("ParsePriority(%q) succeeded, want an error", bad)
		}
	}
	if got := len(Priorities()); got != 8 {
		t.Errorf("Priorities() has %d entries, want 8", got)
	}
	for i, p := range Priorities() {
		if i > 0 && p <= Priorities()[i-1] {
			t.Errorf("priorities not ordered at %v", p)
		}
	}
}

func TestShellEventParsesBack(t *testing.T) {
	t.Parallel()
	ev := ShellEvent(ShellSpec{Hostname: "node-1", ContainerID: "0c30aac0e6f0", ContainerName: "main", Namespace: "default",
		Pod: "shell-test", CommandLine: "sh -c echo marker-123", Image: "busybox", ImageTag: "1.36"})
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back.Subject() != "falco.notice.terminal_shell_in_container" || back.OutputFields.String("proc.name") != "sh" ||
		back.OutputFields.String("k8s.pod.name") != "shell-test" || !strings.Contains(back.Output, "marker-123") || back.UUID == "" {
		t.Errorf("shell event = %s", raw)
	}
	if _, p, _, ok := SplitOutput(back.Output); !ok || p != PriorityNotice {
		t.Errorf("output prefix not Falco's: %q", back.Output)
	}
	noK8s := ShellEvent(ShellSpec{ContainerID: "abc", CommandLine: "sh"})
	if _, ok := noK8s.OutputFields["k8s.pod.name"]; ok {
		t.Error("k8s fields present without a namespace")
	}
}

func BenchmarkParse(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "sidekick-terminal-shell.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSubjectCovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, filter string
		want            bool
	}{
		{"falco.>", "falco.*.*", true},
		{"falco.>", "falco.>", true},
		{"falco.>", "falco.notice.terminal_shell_in_container", true},
		{"falco.*.*", "falco.>", false},
		{"falco.*.*", "falco.notice.x", true},
		{"falco.*.*", "falco.notice", false},
		{"falco.>", "falco", false},
		{"falco.notice.>", "falco.*.x", false},
		{"other.>", "falco.>", false},
	}
	for _, tt := range tests {
		if got := SubjectCovers(tt.pattern, tt.filter); got != tt.want {
			t.Errorf("SubjectCovers(%q, %q) = %v, want %v", tt.pattern, tt.filter, got, tt.want)
		}
	}
}
