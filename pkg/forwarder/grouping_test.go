package forwarder

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

func shellEvent(container string, t time.Time) *falco.Event {
	return &falco.Event{
		Time: t, Rule: "Terminal shell in container", Priority: falco.PriorityNotice, Hostname: "node-1",
		Output:       "A shell was spawned",
		OutputFields: falco.Fields{"container.id": container, "proc.cmdline": "sh"},
	}
}

func TestGroupingBurstSharesACase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrouper(time.Minute, newMemoryAnchors())
	base := time.Date(2026, 11, 27, 10, 0, 59, 900_000_000, time.UTC)
	// One kubectl exec -it: several alerts within a second, across a minute boundary.
	var cases []string
	for _, d := range []time.Duration{0, 20 * time.Millisecond, 150 * time.Millisecond, 900 * time.Millisecond} {
		c, err := g.caseFor(ctx, shellEvent("abc", base.Add(d)))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	for i, c := range cases {
		if c != cases[0] {
			t.Errorf("alert %d went to case %s, want %s like the first", i, c, cases[0])
		}
	}
	other, _ := g.caseFor(ctx, shellEvent("def", base))
	if other == cases[0] {
		t.Error("another container shares the case")
	}
	later, _ := g.caseFor(ctx, shellEvent("abc", base.Add(time.Minute)))
	if later == cases[0] {
		t.Error("an alert a window later shares the case")
	}
	otherRule := shellEvent("abc", base)
	otherRule.Rule = "Write below etc"
	if c, _ := g.caseFor(ctx, otherRule); c == cases[0] {
		t.Error("another rule shares the case")
	}
}

func TestGroupingWithoutContainerID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGrouper(time.Minute, newMemoryAnchors())
	now := time.Now()
	ev := func(pod string) *falco.Event {
		e := shellEvent("", now)
		e.OutputFields = falco.Fields{"k8s.ns.name": "shop", "k8s.pod.name": pod, "container.name": "web"}
		return e
	}
	a, _ := g.caseFor(ctx, ev("web-1"))
	b, _ := g.caseFor(ctx, ev("web-1"))
	c, _ := g.caseFor(ctx, ev("web-2"))
	if a != b || a == c {
		t.Errorf("cases by pod: web-1 %s and %s, web-2 %s; want web-1 twice the same and web-2 different", a, b, c)
	}
}

func TestGroupingOffGivesACasePerAlert(t *testing.T) {
	t.Parallel()
	g := newGrouper(0, newMemoryAnchors())
	now := time.Now()
	a, _ := g.caseFor(context.Background(), shellEvent("abc", now))
	b, _ := g.caseFor(context.Background(), shellEvent("abc", now.Add(time.Millisecond)))
	again, _ := g.caseFor(context.Background(), shellEvent("abc", now))
	if a == b || a != again {
		t.Errorf("window 0: cases %s, %s, again %s; want a case per alert, stable on redelivery", a, b, again)
	}
}

// TestGroupingIsStable is the property redelivery depends on: however
// alerts arrive (out of order, at several replicas that share the anchor
// store but not their caches), an alert is always assigned the case it was
// assigned the first time.
func TestGroupingIsStable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		store := newMemoryAnchors()
		window := time.Duration(1+rng.IntN(20)) * time.Second
		replicas := []*grouper{newGrouper(window, store), newGrouper(window, store), newGrouper(window, store)}
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var events []*falco.Event
		for i := 0; i < 300; i++ {
			events = append(events, shellEvent("c"+string(rune('a'+rng.IntN(3))), base.Add(time.Duration(rng.IntN(120_000))*time.Millisecond)))
		}
		first := map[*falco.Event]string{}
		// Deliver everything twice, in random orders, to random replicas.
		for round := 0; round < 2; round++ {
			rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
			for _, ev := range events {
				c, err := replicas[rng.IntN(len(replicas))].caseFor(ctx, ev)
				if err != nil {
					t.Fatal(err)
				}
				if prev, ok := first[ev]; ok && prev != c {
					t.Fatalf("seed %d: alert at %s moved from case %s to %s", seed, ev.Time.Format(time.StampMilli), prev, c)
				}
				first[ev] = c
			}
		}
		// And every case spans less than one window from its first alert.
		span := map[string][2]time.Time{}
		for ev, c := range first {
			s, ok := span[c]
			if !ok || ev.Time.Before(s[0]) {
				s[0] = ev.Time
			}
			if !ok || ev.Time.After(s[1]) {
				s[1] = ev.Time
			}
			span[c] = s
		}
		for c, s := range span {
			if s[1].Sub(s[0]) >= window {
				t.Fatalf("seed %d: case %s spans %s, window %s", seed, c, s[1].Sub(s[0]), window)
			}
		}
	}
}

func TestWithAnchorBoundsHistory(t *testing.T) {
	t.Parallel()
	var anchors []int64
	for i := int64(0); i < anchorHistory+50; i++ {
		anchors = withAnchor(anchors, i*int64(time.Minute))
	}
	if len(anchors) != anchorHistory {
		t.Fatalf("kept %d anchors, want %d", len(anchors), anchorHistory)
	}
	old := withAnchor([]int64{0}, int64(anchorMaxAge)+1)
	if len(old) != 1 {
		t.Errorf("an anchor older than %s was kept: %v", anchorMaxAge, old)
	}
}
