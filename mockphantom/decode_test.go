package mockphantom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

var sprintf = fmt.Sprintf

// FuzzDecodeArtifactIn checks that splitting an artifact object without
// decoding it gives the same fields as json.Unmarshal: the same raw value
// for each field, whatever the spacing, escapes, duplicates, letter case
// of the keys or nesting.
func FuzzDecodeArtifactIn(f *testing.F) {
	for _, s := range []string{
		`{"container_id": 1, "name": "a", "cef": {"k": "v", "n": [1, {"x": "}"}]}, "cef_types": {"k": ["x"]}}`,
		` { "NAME" : "upper" , "name":"lower", "Label": "l", "data": "s\"}]" , "tags" : [ ] } `,
		`{"n\u0061me": "escaped key", "severity": null, "run_automation": true, "start_time": 1.5e3}`,
		`{"source_data_identifier":"x","source_data_identifier":"y","unknown":{"a":[[[]]]},"end_time":false}`,
		`{"cef":{},"data":{"\u00e9":"é","\ud83d\ude00":"😀"},"type":"t\\"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if jsonKind(b) != '{' || !json.Valid(b) {
			return
		}
		var want artifactIn
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("json.Unmarshal: %v", err)
		}
		got := decodeArtifactIn(b)
		for _, name := range artifactInNames {
			if g, w := *got.field(name), *want.field(name); !bytes.Equal(g, w) {
				t.Fatalf("%s: split %q, json.Unmarshal %q\ninput %s", name, g, w, b)
			}
		}
	})
}

// forwarderBody is a request like the forwarder's: a case with n artifacts
// inline, each with its CEF, CEF types and the raw Falco event as data.
func forwarderBody(n int) []byte {
	raw := `{"uuid":"4a5b7f1e-2a49-4f8e-9a62-0d7f2c1e9b10","output":"09:12:05.118230448: Notice A shell was spawned in a container with an attached terminal | evt_type=execve user=root user_uid=0 user_loginuid=-1 process=sh proc_exepath=/bin/sh parent=containerd-shim command=sh -c echo bench; cat /etc/hostname terminal=34816 exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER container_id=0000c0000001 container_name=web container_image_repository=registry.example.com/shop/web container_image_tag=1.2 k8s_pod_name=web-7d9f8c6b5-00001 k8s_ns_name=shop","priority":"Notice","rule":"Terminal shell in container","time":"2026-11-27T09:12:05.118230448Z","output_fields":{"container.id":"0000c0000001","container.image.repository":"registry.example.com/shop/web","container.image.tag":"1.2","container.name":"web","evt.arg.flags":"EXE_WRITABLE|EXE_LOWER_LAYER","evt.time":1795770725118230448,"evt.type":"execve","k8s.ns.name":"shop","k8s.pod.name":"web-7d9f8c6b5-00001","proc.cmdline":"sh -c echo bench; cat /etc/hostname","proc.exepath":"/bin/sh","proc.name":"sh","proc.pname":"containerd-shim","proc.tty":34816,"user.loginuid":-1,"user.name":"root","user.uid":0},"source":"syscall","tags":["T1059","container","maturity_stable","mitre_execution","shell"],"hostname":"node-1"}`
	var b bytes.Buffer
	b.WriteString(`{"name":"Terminal shell in container","label":"events","description":"A shell was spawned","severity":"low","status":"new","source_data_identifier":"falco-case-1","start_time":"2026-11-27T09:12:05.118230Z","data":` + raw + `,"tags":["T1059","container"],"artifacts":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt := `{"name":"Terminal shell in container","label":"falco","severity":"low","type":"falco event","source_data_identifier":"falco-event-%032d","start_time":"2026-11-27T09:12:05.118230Z","cef":{"commandLine":"sh -c echo bench; cat /etc/hostname","containerId":"0000c0000001","containerImage":"registry.example.com/shop/web:1.2","containerName":"web","eventTime":"2026-11-27T09:12:05.118230Z","eventType":"execve","falcoEventId":"%032d","falcoOutput":"09:12:05.118230448: Notice A shell was spawned in a container with an attached terminal","falcoPriority":"Notice","falcoRule":"Terminal shell in container","falcoSource":"syscall","kubernetesNamespace":"shop","kubernetesPodName":"web-7d9f8c6b5-00001","parentProcessName":"containerd-shim","processName":"sh","processPath":"/bin/sh","sourceHostName":"node-1","terminal":"34816","userId":"0","userName":"root"},"cef_types":{"commandLine":["command line"],"containerId":["container id"],"containerImage":["container image"],"containerName":["container name"],"kubernetesNamespace":["k8s namespace"],"kubernetesPodName":["k8s pod name"],"parentProcessName":["process name"],"processName":["process name"],"processPath":["file path"],"sourceHostName":["host name"],"userName":["user name"]},"data":%s,"tags":["T1059","container","maturity_stable","mitre_execution","shell"],"run_automation":false}`
		b.WriteString(sprintf(fmt, i, i, raw))
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// BenchmarkParseContainer decodes a forwarder's container request with 100
// artifacts inline: what the mock does before it stores anything.
func BenchmarkParseContainer(b *testing.B) {
	s, err := New(b.Context(), Config{DBPath: b.TempDir() + "/bench.db", InsecureNoAuth: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := forwarderBody(100)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, items, err := s.parseContainer(body); err != nil || len(items) != 100 || items[99].err != nil {
			b.Fatalf("parse: %v, %d items", err, len(items))
		}
	}
}

// BenchmarkStoreArtifacts stores forwarder artifacts, 100 per transaction
// as in a forwarder's request, each with a new identifier: what the mock
// does after it decoded a request.
func BenchmarkStoreArtifacts(b *testing.B) {
	s, err := New(b.Context(), Config{DBPath: b.TempDir() + "/bench.db", InsecureNoAuth: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, items, err := s.parseContainer(forwarderBody(100))
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		err := s.store.Write(b.Context(), func(wt *store.Tx) error {
			c.SDI = sprintf("case-%d", n)
			id, _, err := wt.InsertContainer(c)
			if err != nil {
				return err
			}
			for _, it := range items {
				it.art.ContainerID, it.art.SDI = id, sprintf("ev-%d", n)
				n++
				if _, err := storeArtifact(wt, it, nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "artifacts/s")
}
