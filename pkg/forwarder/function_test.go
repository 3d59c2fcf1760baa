package forwarder_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// trigger sends body as Kubeless's NATS trigger does: POST / with the
// event-* headers and the raw NATS message as the body.
func trigger(t *testing.T, addr string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	req.Header.Set("event-id", fmt.Sprintf("%d", time.Now().UnixNano()))
	req.Header.Set("event-time", time.Now().UTC().String())
	req.Header.Set("event-namespace", "natstriggers.kubeless.io")
	req.Header.Set("event-type", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST to the function: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var answer map[string]any
	_ = json.Unmarshal(b, &answer)
	return resp.StatusCode, answer
}

func TestFunctionModeServesTheKubelessContract(t *testing.T) {
	t.Parallel()
	soar := testkit.StartPhantom(t, mockphantom.Config{})
	cfg := baseConfig("nats://127.0.0.1:1", soar.URL) // no NATS in function mode
	cfg.NATS.Mode = forwarder.ModeFunction
	cfg.Listen = freeAddr(t)
	cfg.FunctionTimeout = 2 * time.Second
	startForwarder(t, cfg)

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/nope": 404} {
		resp, err := http.Get("http://" + cfg.Listen + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}

	ev := shell("777777777777", "f1", time.Now().UTC())
	body, _ := json.Marshal(ev)
	if code, answer := trigger(t, cfg.Listen, body); code != 200 || answer["stored"] != true {
		t.Fatalf("event: %d %v, want 200 stored", code, answer)
	}
	// Stored before the answer: it is in SOAR right away.
	c := soarClient(t, soar.URL)
	if got, err := stored(t, c); err != nil || len(got) != 1 {
		t.Fatalf("SOAR holds %d events (%v) right after the 200, want 1", len(got), err)
	}
	// The same event again (a resend): 200, and still stored once.
	ev.UUID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	body, _ = json.Marshal(ev)
	if code, _ := trigger(t, cfg.Listen, body); code != 200 {
		t.Errorf("resend answered %d", code)
	}
	waitStored(t, c, []string{"f1"}, 5*time.Second)

	if code, answer := trigger(t, cfg.Listen, []byte("not json")); code != 400 || answer["reason"] != "invalid_event" {
		t.Errorf("invalid event: %d %v, want 400 invalid_event", code, answer)
	}
	big := []byte(`{"rule":"r","priority":"Notice","time":"2026-01-01T00:00:00Z","output":"` + strings.Repeat("A", falco.MaxEventBytes) + `"}`)
	if code, answer := trigger(t, cfg.Listen, big); code != 413 || answer["reason"] != "too_large" {
		t.Errorf("oversized event: %d %v, want 413", code, answer)
	}

	// SOAR down: not 200, so the trigger logs the failure.
	soar.SetFaults(mockphantom.Faults{DownUntil: time.Now().Add(time.Hour)})
	body, _ = json.Marshal(shell("777777777777", "f2", time.Now().UTC()))
	if code, answer := trigger(t, cfg.Listen, body); code != 503 || !strings.Contains(fmt.Sprint(answer["error"]), "not stored") {
		t.Errorf("SOAR down: %d %v, want 503 saying it is not stored", code, answer)
	}
	// Once SOAR is back, the caller's resends are stored once. The first
	// resend may still find the forwarder in its back-off after the
	// outage (up to a few seconds), and answer 503 again; a trigger
	// resends until 200.
	soar.SetFaults(mockphantom.Faults{})
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := trigger(t, cfg.Listen, body)
		if code == 200 {
			break
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("after SOAR came back: %d", code)
		}
	}
	waitStored(t, c, []string{"f1", "f2"}, 10*time.Second)
}
