package forwarder_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/forwarder"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/internal/testkit"
	"github.com/falco-phantom/kubectl-falco-phantom/pkg/phantom"
)

// After SOAR lost its data and hands out the same container ids again,
// alerts of incidents whose case ids the forwarder cached must not go into
// the containers that now hold those ids: every container holds the alerts
// of one incident, under its own source_data_identifier.
func TestCachedCaseIDsAfterSOARLostItsData(t *testing.T) {
	t.Parallel()
	for name, takeIDs := range map[string]func(t *testing.T, nc publisher, c *phantom.Client){
		// The forwarder itself opens new cases, which get ids 1 to 5 again.
		"new incidents": func(t *testing.T, nc publisher, c *phantom.Client) {
			for i := range 5 {
				nc.publish(t, shell(fmt.Sprintf("bbbbbbbb%04d", i), fmt.Sprintf("new-%d", i), time.Now().UTC()))
			}
			waitCount(t, c, 5, 20*time.Second)
		},
		// Another source creates containers in SOAR, which get ids 1 to 5.
		"another source": func(t *testing.T, _ publisher, c *phantom.Client) {
			for i := range 5 {
				if _, err := c.CreateContainer(context.Background(), &phantom.Container{
					Name: "from another app", Label: "events", SourceDataIdentifier: fmt.Sprintf("other-app-%d", i),
				}); err != nil {
					t.Fatal(err)
				}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := testkit.StartNATS(t)
			soar := testkit.StartPhantom(t, mockphantom.Config{})
			fw, err := forwarder.New(baseConfig(n.URL(), soar.URL), nil)
			if err != nil {
				t.Fatal(err)
			}
			// No time passes in this test: SOAR's word on an id is never
			// trusted without asking again (the interval is unit-tested).
			forwarder.SetCaseCheckInterval(fw, 0)
			runForwarder(t, fw)
			nc := publisher{connect(t, n.URL())}
			c := soarClient(t, soar.URL)
			old := func(i int, marker string) *falco.Event {
				return shell(fmt.Sprintf("aaaaaaaa%04d", i), marker, time.Now().UTC())
			}
			for i := range 5 {
				nc.publish(t, old(i, fmt.Sprintf("old-%d", i)))
			}
			waitCount(t, c, 5, 20*time.Second)

			soar.RestartEmpty()
			takeIDs(t, nc, c)
			before, err := countStored(c)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				nc.publish(t, old(i, fmt.Sprintf("later-%d", i)))
			}
			var arts []phantom.Artifact
			testkit.WaitFor(t, 20*time.Second, func() error {
				page, err := c.Artifacts(context.Background(), phantom.Query{PageSize: 0})
				if err != nil {
					return err
				}
				if arts = page.Data; len(arts) < before+5 {
					return fmt.Errorf("SOAR holds %d artifacts, want %d", len(arts), before+5)
				}
				return nil
			})
			containers, err := c.Containers(context.Background(), phantom.Query{PageSize: 0})
			if err != nil {
				t.Fatal(err)
			}
			sdi := map[int64]string{}
			for _, ct := range containers.Data {
				sdi[ct.ID] = ct.SourceDataIdentifier
			}
			incidentOf := map[int64]string{}
			for _, a := range arts {
				inc, _ := a.CEF["containerId"].(string)
				if prev, ok := incidentOf[a.Container]; ok && prev != inc {
					t.Errorf("case %d holds alerts of containers %s and %s", a.Container, prev, inc)
				}
				incidentOf[a.Container] = inc
				if s := sdi[a.Container]; len(s) < len("falco-case-") || s[:len("falco-case-")] != "falco-case-" {
					t.Errorf("alert of container %s went into case %d, source_data_identifier %q: not a case of the forwarder", inc, a.Container, s)
				}
			}
		})
	}
}

// publisher publishes events as falcosidekick does.
type publisher struct {
	nc interface{ Publish(string, []byte) error }
}

func (p publisher) publish(t *testing.T, ev *falco.Event) {
	t.Helper()
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.nc.Publish(ev.Subject(), b); err != nil {
		t.Fatal(err)
	}
}

// runForwarder runs fw until the test ends and waits until it consumes.
func runForwarder(t *testing.T, fw *forwarder.Forwarder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forwarder: %v", err)
		}
	})
	testkit.WaitFor(t, 10*time.Second, func() error {
		if !fw.Consuming() {
			return fmt.Errorf("forwarder not consuming yet")
		}
		return nil
	})
}
