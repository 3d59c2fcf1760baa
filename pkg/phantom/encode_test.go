package phantom

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// sameJSON fails unless fast and encoding/json's encoding of in decode to
// the same value.
func sameJSON(t *testing.T, in any) {
	t.Helper()
	fast, err := encodeBody(in)
	if err != nil {
		t.Fatalf("encodeBody: %v", err)
	}
	std, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	var got, want any
	if err := json.Unmarshal(fast, &got); err != nil {
		t.Fatalf("hand encoding is not JSON: %v\n%s", err, fast)
	}
	if err := json.Unmarshal(std, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hand encoding differs from encoding/json:\n got %s\nwant %s", fast, std)
	}
}

func TestEncodeBodyMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	hostile := "<script>alert('x')</script> \"q\" \\ \x00\x01\x1f\x7f \t\r\n \u2028\u2029 \u202e é 😀 \xff\xfe\xc3"
	yes := true
	full := Artifact{
		ID: 7, ContainerID: 42, Container: 3, Name: hostile, Label: "falco", Severity: "low", Type: "falco event",
		SourceDataIdentifier: "falco-event-abc", StartTime: "2026-11-27T01:36:43.854923Z", EndTime: "x", CreateTime: "y",
		CEF: map[string]any{
			"commandLine": hostile, "b": "2", "a": "1", "number": 3.5, "int": 12, "bool": true, "nil": nil,
			"nested": map[string]any{"k": []any{1, "two", nil}}, "raw": json.RawMessage(`{"x": [1, 2]}`),
		},
		CEFTypes:      map[string][]string{"commandLine": {"command line"}, "z": nil, "a": {"x", hostile}},
		Data:          json.RawMessage(" {\"output\": \"<b>\\u0000</b>\",\n \"n\": 1e5} "),
		Tags:          []string{"T1059", hostile},
		RunAutomation: true,
	}
	cases := map[string]any{
		"empty artifact list":   []Artifact{},
		"artifact list":         []Artifact{full, {}, {Name: "only a name"}},
		"empty container":       &Container{},
		"container with inline": &Container{Name: hostile, Label: "events", Description: hostile, Severity: "high", Sensitivity: "amber", Status: "new", SourceDataIdentifier: "falco-case-1", StartTime: "s", EndTime: "e", CreateTime: "c", Data: json.RawMessage(`{"a":1}`), Tags: []string{"t"}, RunAutomation: &yes, ArtifactCount: 2, Artifacts: []Artifact{full, full}},
		"container without run": &Container{Name: "n", Label: "l", Artifacts: []Artifact{{}}},
		"other request":         map[string]int{"x": 1},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) { sameJSON(t, in) })
	}
}

func TestEncodeBodyRefusesInvalidData(t *testing.T) {
	t.Parallel()
	for _, in := range []any{
		[]Artifact{{Data: json.RawMessage(`{"a":`)}},
		&Container{Name: "n", Label: "l", Data: json.RawMessage(`nope`)},
		&Container{Name: "n", Label: "l", Artifacts: []Artifact{{Data: json.RawMessage(`[1,`)}}},
	} {
		if _, err := encodeBody(in); err == nil {
			t.Errorf("encodeBody(%+v) accepted invalid data", in)
		}
		if _, err := json.Marshal(in); err == nil {
			t.Errorf("encoding/json accepted %+v; the test case is wrong", in)
		}
	}
}

// Raw data with bytes that are not UTF-8 inside its strings is valid to
// encoding/json, not to a strict parser: every request body is valid UTF-8,
// with U+FFFD where the invalid bytes were.
func TestEncodeBodyIsValidUTF8(t *testing.T) {
	t.Parallel()
	raw := json.RawMessage("{\"proc.cmdline\":\"sh -c \xff\xfe echo \xc3\",\"k\xe9y\":[\"\x80\"]}")
	if !json.Valid(raw) || utf8.Valid(raw) {
		t.Fatal("the test data must be valid JSON to encoding/json and not UTF-8")
	}
	for name, in := range map[string]any{
		"artifacts": []Artifact{{Name: "a", Data: raw}},
		"container": &Container{Name: "n", Label: "l", Data: raw, Artifacts: []Artifact{{Data: raw}}},
	} {
		b, err := encodeBody(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !utf8.Valid(b) {
			t.Errorf("%s: the request body is not valid UTF-8: %q", name, b)
		}
		if !strings.Contains(string(b), "sh -c \uFFFD echo \uFFFD") || !strings.Contains(string(b), "\"k\uFFFDy\"") {
			t.Errorf("%s: invalid bytes not replaced by U+FFFD: %s", name, b)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%s: not JSON: %v", name, err)
		}
	}
}

// FuzzAppendString checks that every string, valid UTF-8 or not, encodes
// to a JSON string that decodes to what encoding/json's encoding decodes to.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\/\b\f\n\r\t", "\x00\x1f\x7f", "\u2028\u2029", "\xff", "é\xc3", "😀", strings.Repeat("<&>", 10)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Fatalf("appendString(%q) is not a JSON string: %v", s, err)
		}
		std, _ := json.Marshal(s)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json's to %q", s, got, want)
		}
	})
}

func BenchmarkEncodeArtifacts(b *testing.B) {
	raw := json.RawMessage(`{"uuid":"4a5b7f1e-2a49-4f8e-9a62-0d7f2c1e9b10","output":"09:12:05.118230448: Notice A shell was spawned in a container with an attached terminal | evt_type=execve user=root user_uid=0 user_loginuid=-1 process=bash proc_exepath=/usr/bin/bash parent=runc command=bash terminal=34816 exe_flags=EXE_WRITABLE container_id=5d1f0ab2c3e4 container_name=nginx","priority":"Notice","rule":"Terminal shell in container","time":"2026-11-27T09:12:05.118230448Z","output_fields":{"container.id":"5d1f0ab2c3e4","container.image.repository":"docker.io/library/nginx","container.image.tag":"1.27","container.name":"nginx","evt.time":1795770725118230448,"evt.type":"execve","k8s.ns.name":"shop","k8s.pod.name":"web-7c9f8d5b6-x2kqz","proc.cmdline":"bash","proc.exepath":"/usr/bin/bash","proc.name":"bash","proc.pname":"runc","proc.tty":34816,"user.loginuid":-1,"user.name":"root","user.uid":0},"source":"syscall","tags":["T1059","container","maturity_stable","mitre_execution","shell"],"hostname":"worker-2"}`)
	a := Artifact{
		ContainerID: 42, Name: "Terminal shell in container", Label: "falco", Severity: "low", Type: "falco event",
		SourceDataIdentifier: "falco-event-0123456789abcdef0123456789abcdef", StartTime: "2026-11-27T09:12:05.118230Z",
		CEF: map[string]any{
			"kubernetesNamespace": "shop", "kubernetesPodName": "web-7c9f8d5b6-x2kqz", "containerId": "5d1f0ab2c3e4",
			"containerName": "nginx", "processName": "bash", "parentProcessName": "runc", "processPath": "/usr/bin/bash",
			"commandLine": "bash", "terminal": "34816", "userName": "root", "userId": "0", "eventType": "execve",
			"sourceHostName": "worker-2", "falcoRule": "Terminal shell in container", "falcoPriority": "Notice",
			"falcoOutput":  "09:12:05.118230448: Notice A shell was spawned in a container with an attached terminal",
			"falcoEventId": "0123456789abcdef0123456789abcdef", "eventTime": "2026-11-27T09:12:05.118230Z", "falcoSource": "syscall",
			"containerImage": "docker.io/library/nginx:1.27",
		},
		CEFTypes: map[string][]string{"kubernetesNamespace": {"k8s namespace"}, "kubernetesPodName": {"k8s pod name"},
			"containerId": {"container id"}, "userName": {"user name"}, "sourceHostName": {"host name"}},
		Data: raw, Tags: []string{"T1059", "container", "maturity_stable", "mitre_execution", "shell"},
	}
	arts := make([]Artifact, 100)
	for i := range arts {
		arts[i] = a
	}
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeBody(arts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(arts); err != nil {
				b.Fatal(err)
			}
		}
	})
}
