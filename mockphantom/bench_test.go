package mockphantom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
)

// benchArtifactTail is the part of a forwarded Falco artifact after its
// container_id and source_data_identifier: the CEF keys the forwarder
// sends and the raw event as data.
func benchArtifactTail(b *testing.B) []byte {
	b.Helper()
	tail, err := json.Marshal(map[string]any{
		"name": "Terminal shell in container", "label": "event", "severity": "low", "type": "falco",
		"start_time": "2026-11-27T01:36:43.854923Z", "run_automation": false,
		"cef": map[string]any{
			"sourceHostName": "kind-worker", "kubernetesNamespace": "shop", "kubernetesPodName": "web-7d9f8c6b5-x2x4k",
			"containerId": "0c30aac0e6f0", "containerName": "main", "containerImage": "docker.io/library/nginx:1.27",
			"processName": "sh", "parentProcessName": "containerd-shim", "commandLine": "sh -c echo falco-probe-456; sleep 1",
			"userName": "root", "falcoRule": "Terminal shell in container", "falcoPriority": "Notice",
		},
		"cef_types": map[string][]string{"containerId": {"docker container id"}, "kubernetesPodName": {"kubernetes pod"}},
		"data": map[string]any{
			"output":   "01:36:43.854923360: Notice A shell was spawned in a container with an attached terminal (evt_type=execve user=root process=sh command=sh -c echo falco-probe-456; sleep 1 container_id=0c30aac0e6f0 container_name=main)",
			"priority": "Notice", "rule": "Terminal shell in container", "source": "syscall",
			"tags":          []string{"T1059", "container", "maturity_stable", "mitre_execution", "shell"},
			"output_fields": map[string]any{"container.id": "0c30aac0e6f0", "proc.cmdline": "sh -c echo falco-probe-456; sleep 1", "proc.tty": 34816},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	return tail[1:] // without "{": it follows the two leading fields
}

// BenchmarkArtifactListPost posts lists of artifacts, each with a new
// source_data_identifier, over real HTTP into SQLite on disk, as the
// forwarder does, and reports stored artifacts per second. "serial" has one
// request in flight at a time; "parallel" has several, as a forwarder with
// a few workers would, so that decoding overlaps with the single writer.
func BenchmarkArtifactListPost(b *testing.B) {
	for _, bc := range []struct {
		name     string
		batch    int
		parallel bool
	}{
		{"serial/batch=100", 100, false},
		{"serial/batch=500", 500, false},
		{"parallel/batch=500", 500, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(b.Context(), Config{DBPath: filepath.Join(b.TempDir(), "bench.db"), InsecureNoAuth: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			run, err := Serve(b.Context(), s, "127.0.0.1:0", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer run.Close()
			res, err := http.Post(run.URL+"/rest/container", "application/json",
				bytes.NewReader([]byte(`{"name": "bench", "label": "events"}`)))
			if err != nil {
				b.Fatal(err)
			}
			var created struct{ ID int64 }
			if err := json.NewDecoder(res.Body).Decode(&created); err != nil {
				b.Fatal(err)
			}
			res.Body.Close()

			p := &benchPoster{
				url:  run.URL + "/rest/artifact",
				head: []byte(`{"container_id": ` + strconv.FormatInt(created.ID, 10) + `, "source_data_identifier": "ev-`),
				tail: benchArtifactTail(b),
			}
			b.SetBytes(int64(bc.batch * (len(p.head) + len(p.tail) + 10)))
			if bc.parallel {
				b.SetParallelism(2) // 2 x GOMAXPROCS requests in flight
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var body []byte
					for pb.Next() {
						if err := p.post(&body, bc.batch); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				var body []byte
				for b.Loop() {
					if err := p.post(&body, bc.batch); err != nil {
						b.Fatal(err)
					}
				}
			}
			stored := s.Stats().ArtifactsCreated
			b.ReportMetric(float64(stored)/b.Elapsed().Seconds(), "artifacts/s")
			if want := p.seq.Load(); stored != want {
				b.Fatalf("stored %d artifacts, want %d", stored, want)
			}
		})
	}
}

// benchPoster posts artifact lists with fresh identifiers.
type benchPoster struct {
	url        string
	head, tail []byte
	seq        atomic.Int64
}

func (p *benchPoster) post(body *[]byte, batch int) error {
	last := p.seq.Add(int64(batch))
	buf := append((*body)[:0], '[')
	for n := last - int64(batch) + 1; n <= last; n++ {
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = append(buf, p.head...)
		buf = strconv.AppendInt(buf, n, 10)
		buf = append(buf, `", `...)
		buf = append(buf, p.tail...)
	}
	buf = append(buf, ']')
	*body = buf
	res, err := http.Post(p.url, "application/json", bytes.NewReader(buf))
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || bytes.Contains(answer, []byte(`"failed"`)) {
		return fmt.Errorf("status %d, answer %.300s", res.StatusCode, answer)
	}
	return nil
}
