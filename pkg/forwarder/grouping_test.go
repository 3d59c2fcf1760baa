package forwarder

import (
	"context"
	"math/rand/v2"
	"slices"
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
		// And a case holds alerts that follow each other closer than the
		// window, and one case per incident when they all came in order
		// is checked in TestGroupingBurstSharesACase.
		byCase := map[string][]time.Time{}
		for ev, c := range first {
			byCase[c] = append(byCase[c], ev.Time)
		}
		for c, times := range byCase {
			slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
			for i := 1; i < len(times); i++ {
				if gap := times[i].Sub(times[i-1]); gap >= window {
					t.Fatalf("seed %d: case %s has a gap of %s, window %s", seed, c, gap, window)
				}
			}
		}
	}
}

// An alert that arrives after a later alert of its incident (a
// redelivery after a crash, another replica) still joins its case.
func TestGroupingOutOfOrderJoinsTheIncident(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newMemoryAnchors()
	a, b := newGrouper(time.Minute, store), newGrouper(time.Minute, store)
	base := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	late, _ := a.caseFor(ctx, shellEvent("abc", base.Add(2*time.Second)))
	early, _ := b.caseFor(ctx, shellEvent("abc", base))
	earlier, _ := a.caseFor(ctx, shellEvent("abc", base.Add(-30*time.Second)))
	if early != late || earlier != late {
		t.Errorf("cases %s, %s, %s; want one case for alerts 32 s apart in a 1 m window, whatever their order", earlier, early, late)
	}
	again, _ := b.caseFor(ctx, shellEvent("abc", base))
	if again != late {
		t.Errorf("redelivery went to %s, want %s", again, late)
	}
	apart, _ := a.caseFor(ctx, shellEvent("abc", base.Add(-5*time.Minute)))
	if apart == late {
		t.Error("an alert minutes before the incident joined it")
	}
}

func TestWithPointBoundsHistory(t *testing.T) {
	t.Parallel()
	var points []point
	for i := int64(0); i < pointHistory+50; i++ {
		at := i * int64(time.Minute)
		points = withPoint(points, point{At: at, Case: at}, time.Now())
	}
	if len(points) != pointHistory {
		t.Fatalf("kept %d points, want %d", len(points), pointHistory)
	}
	old := withPoint([]point{{0, 0}}, point{At: int64(anchorMaxAge) + 1, Case: int64(anchorMaxAge) + 1}, time.Now())
	if len(old) != 1 {
		t.Errorf("a point older than %s was kept: %v", anchorMaxAge, old)
	}
	mixed := withPoint([]point{{10, 10}, {30, 10}}, point{At: 20, Case: 10}, time.Now())
	if mixed[1].At != 20 {
		t.Errorf("points not kept sorted: %v", mixed)
	}
}

// An alert stamped far ahead of the forwarder's clock (a node clock days
// off) is an outlier: it gets a case of its own, and the incident's real
// points stay, so that a later resend of an old alert goes to the case it
// went to before and later alerts still join the incident.
func TestGroupingFutureAlertIsAnOutlier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	g := newGrouper(time.Minute, newMemoryAnchors())
	g.now = func() time.Time { return now }
	at := func(d time.Duration) *falco.Event { return shellEvent("abc", now.Add(d)) }
	var first []string
	for _, d := range []time.Duration{-30 * time.Second, -20 * time.Second, -10 * time.Second} {
		c, err := g.caseFor(ctx, at(d))
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, c)
	}
	future, err := g.caseFor(ctx, at(72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if future == first[0] {
		t.Error("the alert three days ahead joined the incident")
	}
	// Another replica (no cache) gets the resend of the second alert, and
	// the next alert of the incident.
	other := newGrouper(time.Minute, g.store)
	other.now = g.now
	resend, err := other.caseFor(ctx, at(-20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	next, err := other.caseFor(ctx, at(0))
	if err != nil {
		t.Fatal(err)
	}
	if first[0] != first[1] || first[1] != first[2] || resend != first[0] || next != first[0] {
		t.Errorf("cases %v, resend %s, next %s; want one case for all of them", first, resend, next)
	}
	// Points older than the history before the newest trusted point still go.
	points, _, _ := g.store.load(ctx, groupKey(at(0)))
	points = withPoint(points, point{At: now.Add(50 * time.Hour).UnixNano(), Case: now.Add(50 * time.Hour).UnixNano()}, now.Add(50*time.Hour))
	for _, p := range points {
		if p.At < now.Add(2*time.Hour).UnixNano() {
			t.Errorf("point %s kept, more than %s before the newest trusted one", time.Unix(0, p.At).UTC(), anchorMaxAge)
		}
	}
}
