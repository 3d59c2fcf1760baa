package mockphantom

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// artifactIn holds the fields of one artifact as raw JSON; see containerIn.
type artifactIn struct {
	ContainerID   json.RawMessage `json:"container_id"`
	Name          json.RawMessage `json:"name"`
	Label         json.RawMessage `json:"label"`
	Severity      json.RawMessage `json:"severity"`
	CEF           json.RawMessage `json:"cef"`
	CEFTypes      json.RawMessage `json:"cef_types"`
	Data          json.RawMessage `json:"data"`
	SDI           json.RawMessage `json:"source_data_identifier"`
	Type          json.RawMessage `json:"type"`
	Tags          json.RawMessage `json:"tags"`
	RunAutomation json.RawMessage `json:"run_automation"`
	StartTime     json.RawMessage `json:"start_time"`
	EndTime       json.RawMessage `json:"end_time"`
}

var artifactInNames = []string{"container_id", "name", "label", "severity", "cef", "cef_types", "data",
	"source_data_identifier", "type", "tags", "run_automation", "start_time", "end_time"}

// field returns the field named key exactly, or nil.
func (in *artifactIn) field(key string) *json.RawMessage {
	switch key {
	case "container_id":
		return &in.ContainerID
	case "name":
		return &in.Name
	case "label":
		return &in.Label
	case "severity":
		return &in.Severity
	case "cef":
		return &in.CEF
	case "cef_types":
		return &in.CEFTypes
	case "data":
		return &in.Data
	case "source_data_identifier":
		return &in.SDI
	case "type":
		return &in.Type
	case "tags":
		return &in.Tags
	case "run_automation":
		return &in.RunAutomation
	case "start_time":
		return &in.StartTime
	case "end_time":
		return &in.EndTime
	}
	return nil
}

// decodeArtifactIn fills in from the valid JSON object b. Unlike
// json.Unmarshal it neither checks nor copies b again; the fields refer
// into b.
func decodeArtifactIn(b []byte) artifactIn {
	var in artifactIn
	eachMember(b, func(key string, val json.RawMessage) { setField(key, val, artifactInNames, in.field) })
	return in
}

// artifactItem is one posted artifact: valid (err nil) or not.
type artifactItem struct {
	art store.NewArtifact
	err error
}

// artifactAnswer is one entry of an artifact answer. Which fields are set
// depends on the outcome and on where the artifact was posted.
type artifactAnswer struct {
	Success            bool   `json:"success,omitempty"`
	Failed             bool   `json:"failed,omitempty"`
	Message            string `json:"message,omitempty"`
	ID                 int64  `json:"id,omitempty"`
	ExistingArtifactID int64  `json:"existing_artifact_id,omitempty"`
}

// artifactOutcome is what happened to one artifact.
type artifactOutcome struct {
	id       int64 // created
	existing int64 // duplicate of this artifact
	status   int   // failure: the status a single-object answer gets
	message  string
}

func (o artifactOutcome) created() int64 {
	if o.id != 0 {
		return 1
	}
	return 0
}

func (o artifactOutcome) duplicate() int64 {
	if o.existing != 0 {
		return 1
	}
	return 0
}

// inlineAnswer is the entry for an artifact posted inside a container.
func (o artifactOutcome) inlineAnswer() artifactAnswer {
	switch {
	case o.id != 0:
		return artifactAnswer{ID: o.id}
	case o.existing != 0:
		return artifactAnswer{ExistingArtifactID: o.existing}
	default:
		return artifactAnswer{Failed: true, Message: o.message}
	}
}

// answer is the entry for an artifact posted to /rest/artifact.
func (o artifactOutcome) answer() artifactAnswer {
	switch {
	case o.id != 0:
		return artifactAnswer{Success: true, ID: o.id}
	case o.existing != 0:
		return artifactAnswer{Failed: true, Message: "artifact already exists", ExistingArtifactID: o.existing}
	default:
		return artifactAnswer{Failed: true, Message: o.message}
	}
}

// parseArtifactList parses a JSON list of artifacts; it fails only when
// raw is not a JSON list. Items that are not valid artifacts come back
// with their error.
func (s *Server) parseArtifactList(raw []byte, inline bool) ([]artifactItem, error) {
	if !json.Valid(raw) {
		return nil, errors.New("not valid JSON")
	}
	return s.parseValidArtifactList(raw, inline)
}

// parseValidArtifactList is parseArtifactList for raw known to be valid
// JSON, such as the inline artifacts of a checked container.
func (s *Server) parseValidArtifactList(raw []byte, inline bool) ([]artifactItem, error) {
	if jsonKind(raw) != '[' {
		return nil, errors.New("not a JSON list")
	}
	items := make([]artifactItem, 0, 64)
	eachElement(raw, func(el json.RawMessage) {
		var it artifactItem
		if jsonKind(el) != '{' {
			it.err = badInput("an artifact must be a JSON object")
		} else {
			in := decodeArtifactIn(el)
			it.art, it.err = s.checkArtifact(&in, inline)
		}
		items = append(items, it)
	})
	return items, nil
}

// parseArtifact validates one artifact object.
func (s *Server) parseArtifact(raw json.RawMessage, inline bool) (store.NewArtifact, error) {
	if jsonKind(raw) != '{' || !json.Valid(raw) {
		return store.NewArtifact{}, badInput("an artifact must be a JSON object")
	}
	in := decodeArtifactIn(raw)
	return s.checkArtifact(&in, inline)
}

// checkArtifact validates the fields of one artifact. Inline artifacts take
// their container from the enclosing container, so container_id is not
// read.
func (s *Server) checkArtifact(in *artifactIn, inline bool) (store.NewArtifact, error) {
	var (
		a   store.NewArtifact
		err error
	)
	if !inline {
		id, given, err := optInt("container_id", in.ContainerID)
		if err != nil {
			return a, err
		}
		if !given {
			return a, badInput("container_id is required")
		}
		a.ContainerID = id
	}
	if a.Name, err = optString("name", in.Name); err != nil {
		return a, err
	}
	if a.Label, err = optString("label", in.Label); err != nil {
		return a, err
	}
	if a.Label == "" {
		a.Label = "artifact"
	}
	sev, err := optString("severity", in.Severity)
	if err != nil {
		return a, err
	}
	if a.Severity, err = s.checkSeverity(sev); err != nil {
		return a, err
	}
	if a.CEF, err = optObject("cef", in.CEF, "{}"); err != nil {
		return a, err
	}
	if a.CEFTypes, err = optCEFTypes(in.CEFTypes); err != nil {
		return a, err
	}
	a.Data = optAny(in.Data, "{}")
	if a.SDI, err = optString("source_data_identifier", in.SDI); err != nil {
		return a, err
	}
	if a.Type, err = optString("type", in.Type); err != nil {
		return a, err
	}
	if a.Tags, err = optStringList("tags", in.Tags); err != nil {
		return a, err
	}
	if a.RunAutomation, err = optBool("run_automation", in.RunAutomation); err != nil {
		return a, err
	}
	if a.StartTime, err = optTime("start_time", in.StartTime); err != nil {
		return a, err
	}
	if a.EndTime, err = optTime("end_time", in.EndTime); err != nil {
		return a, err
	}
	return a, nil
}

// storeArtifact stores one parsed artifact in wt. known caches container
// lookups within a request; nil means the container is known to exist.
// Only storage failures are returned as errors.
func storeArtifact(wt *store.Tx, it artifactItem, known map[int64]bool) (artifactOutcome, error) {
	if it.err != nil {
		return artifactOutcome{status: http.StatusBadRequest, message: it.err.Error()}, nil
	}
	cid := it.art.ContainerID
	if known != nil {
		exists, cached := known[cid]
		if !cached {
			var err error
			if exists, err = wt.ContainerExists(cid); err != nil {
				return artifactOutcome{}, err
			}
			known[cid] = exists
		}
		if !exists {
			return artifactOutcome{status: http.StatusNotFound, message: fmt.Sprintf("container %d does not exist", cid)}, nil
		}
	}
	id, existing, err := wt.InsertArtifact(it.art)
	if err != nil {
		return artifactOutcome{}, err
	}
	return artifactOutcome{id: id, existing: existing}, nil
}

// createArtifacts handles POST /rest/artifact with one object or a list.
// Every item of a list stands on its own; all are written in one
// transaction.
func (s *Server) createArtifacts(w http.ResponseWriter, r *http.Request) {
	body, release, ok := s.readBody(w, r)
	if !ok {
		return
	}
	defer release()
	var items []artifactItem
	kind := jsonKind(body)
	switch kind {
	case '{':
		items = make([]artifactItem, 1)
		items[0].art, items[0].err = s.parseArtifact(body, false)
	case '[':
		var err error
		if items, err = s.parseArtifactList(body, false); err != nil {
			writeError(w, http.StatusBadRequest, "request body is not a valid JSON list of artifacts")
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "request body must be a JSON artifact object or a list of them")
		return
	}
	if kind == '{' && items[0].err != nil {
		s.writeInputError(w, r, "create artifact", items[0].err)
		return
	}

	outcomes := make([]artifactOutcome, len(items))
	err := s.store.Write(r.Context(), func(wt *store.Tx) error {
		known := make(map[int64]bool)
		for i, it := range items {
			var err error
			if outcomes[i], err = storeArtifact(wt, it, known); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.internalError(w, r, "create artifacts", err)
		return
	}
	var created, dups int64
	answers := make([]artifactAnswer, len(outcomes))
	for i, o := range outcomes {
		created, dups = created+o.created(), dups+o.duplicate()
		answers[i] = o.answer()
	}
	s.stats.stored(0, created, dups)
	s.afterArtifacts(items, outcomes)

	if kind == '[' {
		writeJSON(w, http.StatusOK, answers)
		return
	}
	status := http.StatusOK
	switch o := outcomes[0]; {
	case o.existing != 0:
		status = s.cfg.DuplicateStatus
	case o.id == 0:
		status = o.status
	}
	writeJSON(w, status, answers[0])
}

// getArtifact handles GET /rest/artifact/N.
func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request) {
	id, ok := restID(w, r, "artifact")
	if !ok {
		return
	}
	a, found, err := s.store.Artifact(r.Context(), id)
	switch {
	case err != nil:
		s.internalError(w, r, "get artifact", err)
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("artifact %d does not exist", id))
	default:
		writeJSON(w, http.StatusOK, a)
	}
}

// listArtifacts handles GET /rest/artifact.
func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request) {
	q, err := store.ParseQuery(r.URL.Query(), store.Artifacts)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.writeArtifactListing(w, r, q)
}

// listContainerArtifacts handles GET /rest/container/N/artifacts: the
// artifact listing restricted to one (existing) container.
func (s *Server) listContainerArtifacts(w http.ResponseWriter, r *http.Request) {
	id, ok := restID(w, r, "container")
	if !ok {
		return
	}
	q, err := store.ParseQuery(r.URL.Query(), store.Artifacts)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	_, found, err := s.store.Container(r.Context(), id)
	if err != nil {
		s.internalError(w, r, "list container artifacts", err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %d does not exist", id))
		return
	}
	q.Container = id
	s.writeArtifactListing(w, r, q)
}

func (s *Server) writeArtifactListing(w http.ResponseWriter, r *http.Request, q store.Query) {
	count, data, err := s.store.ListArtifacts(r.Context(), q)
	if err != nil {
		s.internalError(w, r, "list artifacts", err)
		return
	}
	writeJSON(w, http.StatusOK, listing[store.Artifact]{Count: count, NumPages: q.NumPages(count), Data: data})
}
