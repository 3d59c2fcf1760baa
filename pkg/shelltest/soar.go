package shelltest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/install"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// SOAR is read access to the SOAR the pipeline writes to.
type SOAR struct {
	// URL is shown to people.
	URL    string
	Client *phantom.Client
	// baseline is the newest artifact id before the shell opened: the
	// alert is among the artifacts after it (whatever the clocks say).
	baseline int64
}

var errUnreachable = errors.New("SOAR unreachable")

// Check asks SOAR for its version and notes the newest artifact.
func (s *SOAR) Check(ctx context.Context) error {
	if _, err := s.Client.Version(ctx); err != nil {
		return fmt.Errorf("%w: %v", errUnreachable, err)
	}
	page, err := s.Client.Artifacts(ctx, phantom.Query{PageSize: 1, Sort: "id", Order: "desc"})
	if err != nil {
		return fmt.Errorf("%w: list artifacts: %v", errUnreachable, err)
	}
	if len(page.Data) > 0 {
		s.baseline = page.Data[0].ID
	}
	return nil
}

// match is the artifact of the shell's alert.
type match struct {
	caseID, artifactID int64
	caseName           string
	eventTime, stored  *time.Time
}

// waitFor polls SOAR until an artifact newer than the baseline carries the
// marker in its command line and names the target (by pod, or by container
// id: Falco 0.40 with rules 3.2.0 sends no pod name for this rule).
func (s *SOAR) waitFor(ctx context.Context, marker string, tg target, since time.Time, timeout time.Duration, p progress) (*match, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	failures, lastReport := 0, time.Now()
	for {
		m, err := s.look(ctx, marker, tg)
		switch {
		case err == nil && m != nil:
			return m, nil
		case err != nil && ctx.Err() == nil:
			failures++
			if failures >= 5 {
				return nil, fmt.Errorf("%w: %v", errUnreachable, err)
			}
		case err == nil:
			failures = 0
		}
		if time.Since(lastReport) >= 10*time.Second {
			p.step("still waiting for the alert in SOAR [%s]", time.Since(since).Round(time.Second))
			lastReport = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no alert with marker %s reached SOAR within %s", marker, timeout)
		case <-tick.C:
		}
	}
}

func (s *SOAR) look(ctx context.Context, marker string, tg target) (*match, error) {
	page, err := s.Client.Artifacts(ctx, phantom.Query{
		PageSize: 200, Sort: "id", Order: "desc", Filters: map[string]any{"id__gt": s.baseline},
	})
	if err != nil {
		return nil, err
	}
	for _, a := range page.Data {
		cmd, _ := a.CEF["commandLine"].(string)
		if !strings.Contains(cmd, marker) {
			continue
		}
		pod, _ := a.CEF["kubernetesPodName"].(string)
		cid, _ := a.CEF["containerId"].(string)
		if pod != tg.pod && (cid == "" || !strings.HasPrefix(tg.containerID, cid)) {
			continue
		}
		m := &match{caseID: a.Container, artifactID: a.ID, eventTime: parseTime(a.StartTime), stored: parseTime(a.CreateTime)}
		if ct, err := s.Client.Container(ctx, a.Container); err == nil {
			m.caseName = ct.Name
		}
		return m, nil
	}
	return nil, nil
}

func parseTime(s string) *time.Time {
	for _, layout := range []string{phantom.TimeFormat, time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t
		}
	}
	return nil
}

// FindSOAR builds read access to the SOAR that install configured in
// namespace (see install.SOARClient).
func FindSOAR(ctx context.Context, kube kubernetes.Interface, cfg *rest.Config, namespace string) (*SOAR, error) {
	url, client, err := install.SOARClient(ctx, kube, cfg, namespace)
	if err != nil {
		return nil, err
	}
	return &SOAR{URL: url, Client: client}, nil
}
