package main

// The baseline: one synchronous POST per alert, as the 2018 Kubeless
// function did. It takes the alerts from the same JetStream set-up one at
// a time, opens a SOAR container for each with what that function sent,
// waits for the answer, and only then acknowledges and takes the next.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// baselineResult is what a baseline run measured.
type baselineResult struct {
	alerts  int           // alerts stored, one container each
	elapsed time.Duration // from the first fetch to the last acknowledgement
	// stoppedBy is what ended the run: "alerts" or "time".
	stoppedBy           string
	writeReqs, restReqs int64
}

func (b baselineResult) rate() float64 {
	if b.elapsed <= 0 {
		return 0
	}
	return float64(b.alerts) / b.elapsed.Seconds()
}

// runBaseline stores the first n alerts of w in a fresh stream and posts
// them to a fresh mock SOAR that adds latency, one at a time, until all n
// are stored or maxTime has passed.
func runBaseline(ctx context.Context, dir string, latency time.Duration, w *workload, n int, maxTime time.Duration) (baselineResult, error) {
	var r baselineResult
	ns, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return r, err
	}
	defer ns.close()
	d := forwarder.Defaults().NATS
	w = w.head(n)
	if err := ns.preloadStream(ctx, d.Stream, d.StreamSubjects, w); err != nil {
		return r, err
	}
	cons, err := ns.js.CreateOrUpdateConsumer(ctx, d.Stream, jetstream.ConsumerConfig{
		Durable: "baseline", FilterSubject: d.Subject, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return r, err
	}
	soar, url, stopMock, err := startMock(ctx, filepath.Join(dir, "soar"), latency, nil)
	if err != nil {
		return r, err
	}
	defer stopMock()
	client, err := phantom.New(phantom.Config{BaseURL: url, MaxConns: 1,
		Credentials: phantom.StaticCredentials{User: soarUser, Password: soarPassword}})
	if err != nil {
		return r, err
	}
	if err := postEach(ctx, cons, client, len(w.events), maxTime, &r); err != nil {
		return r, err
	}
	st := soar.Stats()
	r.writeReqs, r.restReqs = writeRequests(st), restRequests(st)
	if st.ContainersCreated != int64(r.alerts) || st.ArtifactsCreated != 0 {
		return r, fmt.Errorf("the mock stored %d containers and %d artifacts for %d alerts, want a container each and no artifact",
			st.ContainersCreated, st.ArtifactsCreated, r.alerts)
	}
	return r, nil
}

// postEach takes alerts from cons one at a time and posts each as a
// container, waiting for SOAR's answer before it acknowledges the alert
// and takes the next, until n are stored or maxTime has passed. It notes
// in r how many it stored, in how long, and what stopped it.
func postEach(ctx context.Context, cons jetstream.Consumer, c *phantom.Client, n int, maxTime time.Duration, r *baselineResult) error {
	start := time.Now()
	defer func() { r.elapsed = time.Since(start) }()
	for r.stoppedBy = "alerts"; r.alerts < n; r.alerts++ {
		if time.Since(start) >= maxTime {
			r.stoppedBy = "time"
			return nil
		}
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			return fmt.Errorf("fetch alert %d: %w", r.alerts+1, err)
		}
		ct, err := legacyContainer(msg.Data())
		if err != nil {
			return err
		}
		if _, err := c.CreateContainer(ctx, ct); err != nil {
			return err
		}
		if err := msg.Ack(); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	return nil
}

// legacyEvent is what the 2018 function read of a Falco alert.
type legacyEvent struct {
	Rule         string         `json:"rule"`
	Output       string         `json:"output"`
	Priority     string         `json:"priority"`
	Time         time.Time      `json:"time"`
	OutputFields map[string]any `json:"output_fields"`
}

// legacyContainer is the container the 2018 function posted for one
// alert: named after the rule, described by its output, with the
// container and pod it came from as data, and no artifact.
func legacyContainer(raw []byte) (*phantom.Container, error) {
	var ev legacyEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("decode alert: %w", err)
	}
	data, err := json.Marshal(map[string]any{
		"container.id": ev.OutputFields["container.id"],
		"k8s.pod.name": ev.OutputFields["k8s.pod.name"],
	})
	if err != nil {
		return nil, err
	}
	return &phantom.Container{
		Name: ev.Rule, Description: ev.Output, StartTime: phantom.FormatTime(ev.Time),
		Severity: legacySeverity(ev.Priority), Label: "events", Status: "new", Data: data,
	}, nil
}

// legacySeverity maps a Falco priority name to a SOAR severity as the
// 2018 function did.
func legacySeverity(priority string) string {
	switch strings.ToLower(priority) {
	case "emergency", "alert", "critical":
		return "high"
	case "error", "warning":
		return "medium"
	}
	return "low"
}
