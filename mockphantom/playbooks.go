package mockphantom

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/playbook"
	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// playbookSlots is how many cases have their playbooks run at once; the
// others wait their turn.
const playbookSlots = 4

// interruptedRun is the message of runs a stopped mockphantom left
// running.
const interruptedRun = "interrupted: mockphantom stopped before the responder answered"

// playbooks runs the playbooks of Config.PlaybooksFile in the background,
// never in the request that created the case.
type playbooks struct {
	set    *playbook.Set
	engine *playbook.Engine
	st     *store.Store
	log    *slog.Logger

	ctx    context.Context // cancelled by stop
	cancel context.CancelFunc
	slots  chan struct{}

	mu      sync.Mutex // guards stopped and adding to running
	stopped bool
	running sync.WaitGroup
}

// readPlaybooks reads and checks the playbooks file, before anything else
// is opened; it returns nil when none is configured.
func readPlaybooks(cfg Config) (*playbook.Set, error) {
	if cfg.PlaybooksFile == "" {
		return nil, nil
	}
	set, err := playbook.Load(cfg.PlaybooksFile, playbook.Known{Labels: cfg.Labels, Severities: cfg.Severities})
	if err != nil {
		return nil, err
	}
	for _, name := range set.Insecure() {
		cfg.Logger.Warn("playbook does not verify the responder's certificate (insecure_skip_verify): anyone on the path can read its token",
			"playbook", name)
	}
	return set, nil
}

// newPlaybooks readies set to run on the cases of st; nil without a set.
func newPlaybooks(set *playbook.Set, st *store.Store, log *slog.Logger) *playbooks {
	if set == nil {
		return nil
	}
	// Runs live as long as the server, not as New's ctx (which is for
	// opening it): Close ends them through stop.
	ctx, cancel := context.WithCancel(context.Background())
	return &playbooks{
		set:    set,
		engine: playbook.NewEngine(set, runRecorder{st}, log),
		st:     st,
		log:    log,
		ctx:    ctx,
		cancel: cancel,
		slots:  make(chan struct{}, playbookSlots),
	}
}

// stop cancels the runs in flight and waits until they recorded their
// outcome; nothing starts afterwards.
func (p *playbooks) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.cancel()
	p.running.Wait()
	p.set.Close()
}

// afterContainer is called once a new container is stored with its inline
// artifacts (answers), before the answer is sent: the runs it starts are
// then known to Close, and to tests, when the client learns of the case.
func (s *Server) afterContainer(id int64, answers []artifactAnswer) {
	if s.playbooks == nil {
		return
	}
	var created []int64
	for _, a := range answers {
		if a.ID != 0 {
			created = append(created, a.ID)
		}
	}
	s.playbooks.caseGrew(id, created)
}

// afterArtifacts is called once posted artifacts are stored, before the
// answer is sent.
func (s *Server) afterArtifacts(items []artifactItem, outcomes []artifactOutcome) {
	if s.playbooks == nil {
		return
	}
	created := map[int64][]int64{}
	for i, o := range outcomes {
		if o.id != 0 {
			cid := items[i].art.ContainerID
			created[cid] = append(created[cid], o.id)
		}
	}
	for cid, ids := range created {
		s.playbooks.caseGrew(cid, ids)
	}
}

// caseGrew starts, in the background, the playbooks of container cid if
// created (artifacts a request just stored in it) holds its first
// artifact: a case is new to playbooks when it gets its first artifact,
// which is also what names the target. That happens once per case,
// whether the artifact came inline or later.
func (p *playbooks) caseGrew(cid int64, created []int64) {
	if len(created) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.running.Add(1)
	go func() {
		defer p.running.Done()
		if err := p.run(p.ctx, cid, created); err != nil {
			p.log.Error("playbooks failed", "case_id", cid, "err", err)
		}
	}()
}

func (p *playbooks) run(ctx context.Context, cid int64, created []int64) error {
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	case <-ctx.Done():
		return nil
	}
	c, isNew, err := newCase(ctx, p.st, cid, created)
	if err != nil || !isNew {
		return err
	}
	return p.engine.Run(ctx, c)
}

// newCase reads container cid as playbooks see it; isNew is false when its
// first artifact is not one of created.
func newCase(ctx context.Context, st *store.Store, cid int64, created []int64) (c playbook.Case, isNew bool, err error) {
	_, first, err := st.ListArtifacts(ctx, store.Query{Container: cid, PageSize: 1})
	if err != nil {
		return c, false, fmt.Errorf("failed to read the first artifact of case %d: %w", cid, err)
	}
	if len(first) == 0 || !slices.Contains(created, first[0].ID) {
		return c, false, nil
	}
	ct, found, err := st.Container(ctx, cid)
	if err != nil || !found {
		return c, false, err
	}
	// The CEF keys the forwarder fills in (pkg/forwarder/mapping.go).
	var cef map[string]any
	_ = json.Unmarshal(first[0].CEF, &cef) // stored CEF is a JSON object
	str := func(key string) string {
		v, _ := cef[key].(string)
		return v
	}
	return playbook.Case{
		ID: cid, Name: ct.Name, Label: ct.Label, Severity: ct.Severity,
		Rule:        str("falcoRule"),
		Namespace:   str("kubernetesNamespace"),
		Pod:         str("kubernetesPodName"),
		ContainerID: str("containerId"),
	}, true, nil
}

// runRecorder keeps action runs in the store.
type runRecorder struct{ st *store.Store }

func (r runRecorder) StartRun(ctx context.Context, s playbook.RunStart) (int64, bool, error) {
	return r.st.StartActionRun(ctx, store.NewActionRun{ContainerID: s.CaseID, Playbook: s.Playbook,
		Action: string(s.Action), Name: s.Name})
}

func (r runRecorder) FinishRun(ctx context.Context, id int64, res playbook.Result) error {
	return r.st.FinishActionRun(ctx, id, string(res.Status), res.Message, res.Answer)
}
