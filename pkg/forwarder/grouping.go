package forwarder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/falco-phantom/kubectl-falco-phantom/pkg/falco"
)

// Incident grouping.
//
// Alerts of one rule in one container (on one node) form an incident. The
// first alert of an incident sets its anchor, the alert's time; an alert
// belongs to the incident with the latest anchor a such that
// a <= t < a + window, and when there is none it anchors a new incident.
// The case's source_data_identifier is derived from the incident key and
// its anchor, so every replica, and every redelivery of the same alert,
// arrives at the same case.
//
// Why this rule: once an alert has been assigned, no anchor created later
// can change the assignment (a new anchor in (a, t] would itself lie inside
// a's window and therefore never be created), so a redelivered alert always
// lands in the case it landed in before. Anchors live in a store shared by
// the replicas (a JetStream key-value bucket), changed only by
// compare-and-set; in core mode they live in memory.

// anchorHistory bounds the anchors kept per incident key. Redeliveries of
// alerts older than the oldest kept anchor may open a new case.
const (
	anchorHistory = 256
	anchorMaxAge  = 48 * time.Hour
)

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

// pick returns the anchor an alert at t belongs to, from sorted anchors.
func pick(anchors []int64, t int64, window time.Duration) (int64, bool) {
	i, found := slices.BinarySearch(anchors, t)
	if found {
		return t, true
	}
	if i > 0 && t < anchors[i-1]+int64(window) {
		return anchors[i-1], true
	}
	return 0, false
}

// withAnchor adds t to sorted anchors and drops those beyond the history.
func withAnchor(anchors []int64, t int64) []int64 {
	out := append(slices.Clone(anchors), t)
	slices.Sort(out)
	newest := out[len(out)-1]
	cut := 0
	for cut < len(out)-1 && (len(out)-cut > anchorHistory || out[cut] < newest-int64(anchorMaxAge)) {
		cut++
	}
	return out[cut:]
}

// anchorStore is where the incident anchors of all replicas are kept.
type anchorStore interface {
	// load returns the anchors of key and a revision for compareAndSet.
	load(ctx context.Context, key string) (anchors []int64, rev uint64, err error)
	// compareAndSet stores anchors if key is still at rev. ok is false when
	// another writer came first.
	compareAndSet(ctx context.Context, key string, anchors []int64, rev uint64) (ok bool, err error)
}

// grouper assigns alerts to incidents. It caches each key's anchors as last
// read from the store: by the rule above, an alert that falls in a cached
// anchor's window is assigned correctly without asking the store.
type grouper struct {
	window time.Duration
	store  anchorStore

	mu    sync.Mutex
	cache map[string][]int64
}

func newGrouper(window time.Duration, store anchorStore) *grouper {
	return &grouper{window: window, store: store, cache: map[string][]int64{}}
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
	anchor, ok := pick(g.cache[key], t, g.window)
	g.mu.Unlock()
	if ok {
		return caseID(key, anchor), nil
	}
	for attempt := 0; attempt < 20; attempt++ {
		anchors, rev, err := g.store.load(ctx, key)
		if err != nil {
			return "", fmt.Errorf("load incident anchors: %w", err)
		}
		if a, ok := pick(anchors, t, g.window); ok {
			g.remember(key, anchors)
			return caseID(key, a), nil
		}
		next := withAnchor(anchors, t)
		stored, err := g.store.compareAndSet(ctx, key, next, rev)
		if err != nil {
			return "", fmt.Errorf("store incident anchor: %w", err)
		}
		if stored {
			g.remember(key, next)
			return caseID(key, t), nil
		}
	}
	return "", errors.New("store incident anchor: too much contention")
}

func (g *grouper) remember(key string, anchors []int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.cache) >= maxCachedKeys {
		g.cache = map[string][]int64{}
	}
	g.cache[key] = anchors
}

// memoryAnchors keeps anchors in this process only (core mode).
type memoryAnchors struct {
	mu sync.Mutex
	m  map[string]memoryEntry
}

type memoryEntry struct {
	anchors []int64
	rev     uint64
}

func newMemoryAnchors() *memoryAnchors { return &memoryAnchors{m: map[string]memoryEntry{}} }

func (s *memoryAnchors) load(_ context.Context, key string) ([]int64, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	return e.anchors, e.rev, nil
}

func (s *memoryAnchors) compareAndSet(_ context.Context, key string, anchors []int64, rev uint64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[key].rev != rev {
		return false, nil
	}
	if len(s.m) >= maxCachedKeys {
		s.m = map[string]memoryEntry{}
	}
	s.m[key] = memoryEntry{anchors: anchors, rev: rev + 1}
	return true, nil
}

// kvAnchors keeps anchors in a JetStream key-value bucket shared by all
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

func (s *kvAnchors) load(ctx context.Context, key string) ([]int64, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var anchors []int64
	if err := json.Unmarshal(e.Value(), &anchors); err != nil {
		// A broken value cannot be trusted; start afresh rather than stall.
		return nil, e.Revision(), nil
	}
	slices.Sort(anchors)
	return anchors, e.Revision(), nil
}

func (s *kvAnchors) compareAndSet(ctx context.Context, key string, anchors []int64, rev uint64) (bool, error) {
	b, err := json.Marshal(anchors)
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
