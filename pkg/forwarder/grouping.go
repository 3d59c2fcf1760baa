package forwarder

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// Incident grouping.
//
// Alerts of one rule in one container (on one node) form an incident. Its
// first alert opens its case; the case's source_data_identifier is derived
// from the incident key and that alert's time (the anchor), so every
// replica, and every redelivery of the same alert, arrives at the same case.
//
// Each incident key keeps a list of points: times known to belong to a
// case. An alert at t joins
//  1. the case of the latest point p with p <= t < p + window; else
//  2. the case of the earliest point p with t < p < t + window (an alert
//     that arrives after a later one of its incident: a redelivery, another
//     replica), and t is added as a point of that case; else
//  3. a new case anchored at t, and t is added as its point.
//
// Why this is stable: an assignment by rule 1 cannot change, because a
// point in (p, t] would itself be covered by p and is never added; an
// assignment by rule 2 adds t itself as a point, so a redelivery finds it
// by rule 1. Points live in a store shared by the replicas (a JetStream
// key-value bucket), changed only by compare-and-set; in core mode they
// live in memory. A replica may answer rule 1 from the points it last
// read (no point can appear later in (p, t]); rules 2 and 3 always go
// through the store.

// pointHistory bounds the points kept per incident key. Redeliveries of
// alerts older than the oldest kept point may open a new case.
//
// Points older than anchorMaxAge before the newest point are forgotten.
// The newest point is the newest the forwarder's own clock can vouch for:
// one stamped more than maxClockSkew ahead of it (a node whose clock is
// wrong, or a publisher that is not Falco) is an outlier, and must not push
// the real points out; it stays a point of its own case.
const (
	pointHistory = 256
	anchorMaxAge = 48 * time.Hour
	maxClockSkew = time.Hour
)

// point is a time known to belong to the case anchored at Case.
type point struct{ At, Case int64 }

// groupKey identifies the source of an incident: rule, node and container
// (by id, or by namespace, pod and container name when the id is missing).
func groupKey(ev *falco.Event) string {
	f := ev.OutputFields
	where := f.String("container.id")
	if where == "" {
		where = f.String("k8s.ns.name") + "/" + f.String("k8s.pod.name") + "/" + f.String("container.name")
	}
	return hashParts(ev.Rule, ev.Hostname, where)
}

func hashParts(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// caseID is the source_data_identifier of the case for an incident.
func caseID(key string, anchor int64) string {
	return "falco-case-" + hashParts(key, strconv.FormatInt(anchor, 10))
}

// pick applies the rules above to sorted points: the case's anchor, and
// whether t must be added as a point (rule 2). ok is false for rule 3.
func pick(points []point, t int64, window time.Duration) (anchor int64, add bool, ok bool) {
	i := sort.Search(len(points), func(i int) bool { return points[i].At > t })
	if i > 0 && t < points[i-1].At+int64(window) {
		return points[i-1].Case, false, true
	}
	if i < len(points) && points[i].At < t+int64(window) {
		return points[i].Case, true, true
	}
	return 0, false, false
}

// withPoint adds p to sorted points and drops those beyond the history;
// now is the forwarder's clock.
func withPoint(points []point, p point, now time.Time) []point {
	i := sort.Search(len(points), func(i int) bool { return points[i].At > p.At })
	out := slices.Insert(slices.Clone(points), i, p)
	trusted := now.Add(maxClockSkew).UnixNano()
	newest := int64(math.MinInt64)
	for j := len(out) - 1; j >= 0; j-- {
		if out[j].At <= trusted {
			newest = out[j].At
			break
		}
	}
	cut := 0
	for cut < len(out)-1 && (len(out)-cut > pointHistory || (newest != math.MinInt64 && out[cut].At < newest-int64(anchorMaxAge))) {
		cut++
	}
	return out[cut:]
}

// anchorStore is where the incident anchors of all replicas are kept.
type anchorStore interface {
	// load returns the points of key and a revision for compareAndSet.
	load(ctx context.Context, key string) (points []point, rev uint64, err error)
	// compareAndSet stores points if key is still at rev. ok is false when
	// another writer came first.
	compareAndSet(ctx context.Context, key string, points []point, rev uint64) (ok bool, err error)
}

// grouper assigns alerts to incidents. It caches each key's points as last
// read from the store, for rule 1.
type grouper struct {
	window time.Duration
	store  anchorStore
	now    func() time.Time

	mu    sync.Mutex
	cache map[string][]point
}

func newGrouper(window time.Duration, store anchorStore) *grouper {
	return &grouper{window: window, store: store, now: time.Now, cache: map[string][]point{}}
}

// maxCachedKeys bounds the grouper's memory; the cache is dropped when full.
const maxCachedKeys = 100_000

// caseFor returns the case identifier of the alert's incident.
func (g *grouper) caseFor(ctx context.Context, ev *falco.Event) (string, error) {
	if g.window <= 0 {
		return "falco-case-" + ev.ID(), nil
	}
	key, t := groupKey(ev), ev.Time.UnixNano()
	g.mu.Lock()
	anchor, add, ok := pick(g.cache[key], t, g.window)
	g.mu.Unlock()
	if ok && !add {
		return caseID(key, anchor), nil
	}
	for attempt := 0; attempt < 20; attempt++ {
		points, rev, err := g.store.load(ctx, key)
		if err != nil {
			return "", fmt.Errorf("load incident points: %w", err)
		}
		anchor, add, ok := pick(points, t, g.window)
		if ok && !add {
			g.remember(key, points)
			return caseID(key, anchor), nil
		}
		if !ok {
			anchor = t
		}
		next := withPoint(points, point{At: t, Case: anchor}, g.now())
		stored, err := g.store.compareAndSet(ctx, key, next, rev)
		if err != nil {
			return "", fmt.Errorf("store incident point: %w", err)
		}
		if stored {
			g.remember(key, next)
			return caseID(key, anchor), nil
		}
	}
	return "", errors.New("store incident point: too much contention")
}

func (g *grouper) remember(key string, points []point) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.cache) >= maxCachedKeys {
		g.cache = map[string][]point{}
	}
	g.cache[key] = points
}

// memoryAnchors keeps points in this process only (core mode).
type memoryAnchors struct {
	mu sync.Mutex
	m  map[string]memoryEntry
}

type memoryEntry struct {
	points []point
	rev    uint64
}

func newMemoryAnchors() *memoryAnchors { return &memoryAnchors{m: map[string]memoryEntry{}} }

func (s *memoryAnchors) load(_ context.Context, key string) ([]point, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	return e.points, e.rev, nil
}

func (s *memoryAnchors) compareAndSet(_ context.Context, key string, points []point, rev uint64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[key].rev != rev {
		return false, nil
	}
	if len(s.m) >= maxCachedKeys {
		s.m = map[string]memoryEntry{}
	}
	s.m[key] = memoryEntry{points: points, rev: rev + 1}
	return true, nil
}

// kvAnchors keeps points in a JetStream key-value bucket shared by all
// replicas. Keys expire when an incident key has been quiet for the
// bucket's TTL.
type kvAnchors struct{ kv jetstream.KeyValue }

func openKVAnchors(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*kvAnchors, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "falco-phantom incident anchors (case grouping shared by forwarder replicas)",
		TTL:         anchorMaxAge,
		History:     1,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("open key-value bucket %q: %w", bucket, err)
	}
	return &kvAnchors{kv: kv}, nil
}

// The value of a key is JSON: [[at, case], ...], sorted by at.
func (s *kvAnchors) load(ctx context.Context, key string) ([]point, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var pairs [][2]int64
	if err := json.Unmarshal(e.Value(), &pairs); err != nil {
		// A broken value cannot be trusted; start afresh rather than stall.
		return nil, e.Revision(), nil
	}
	points := make([]point, len(pairs))
	for i, p := range pairs {
		points[i] = point{At: p[0], Case: p[1]}
	}
	slices.SortFunc(points, func(a, b point) int { return cmp.Compare(a.At, b.At) })
	return points, e.Revision(), nil
}

func (s *kvAnchors) compareAndSet(ctx context.Context, key string, points []point, rev uint64) (bool, error) {
	pairs := make([][2]int64, len(points))
	for i, p := range points {
		pairs[i] = [2]int64{p.At, p.Case}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return false, err
	}
	if rev == 0 {
		_, err = s.kv.Create(ctx, key, b)
	} else {
		_, err = s.kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
		return false, nil
	}
	return err == nil, err
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
