package mockphantom

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// containerIn holds the fields of POST /rest/container as raw JSON so that
// each one can be type-checked with a message naming it. Unknown fields are
// ignored.
type containerIn struct {
	Name          json.RawMessage `json:"name"`
	Label         json.RawMessage `json:"label"`
	Description   json.RawMessage `json:"description"`
	Severity      json.RawMessage `json:"severity"`
	Sensitivity   json.RawMessage `json:"sensitivity"`
	Status        json.RawMessage `json:"status"`
	SDI           json.RawMessage `json:"source_data_identifier"`
	StartTime     json.RawMessage `json:"start_time"`
	EndTime       json.RawMessage `json:"end_time"`
	Data          json.RawMessage `json:"data"`
	Tags          json.RawMessage `json:"tags"`
	OwnerID       json.RawMessage `json:"owner_id"`
	RunAutomation json.RawMessage `json:"run_automation"`
	CustomFields  json.RawMessage `json:"custom_fields"`
	ExternalID    json.RawMessage `json:"external_id"`
	Artifacts     json.RawMessage `json:"artifacts"`
}

var containerInNames = []string{"name", "label", "description", "severity", "sensitivity", "status",
	"source_data_identifier", "start_time", "end_time", "data", "tags", "owner_id", "run_automation",
	"custom_fields", "external_id", "artifacts"}

// field returns the field named key exactly, or nil.
func (in *containerIn) field(key string) *json.RawMessage {
	switch key {
	case "name":
		return &in.Name
	case "label":
		return &in.Label
	case "description":
		return &in.Description
	case "severity":
		return &in.Severity
	case "sensitivity":
		return &in.Sensitivity
	case "status":
		return &in.Status
	case "source_data_identifier":
		return &in.SDI
	case "start_time":
		return &in.StartTime
	case "end_time":
		return &in.EndTime
	case "data":
		return &in.Data
	case "tags":
		return &in.Tags
	case "owner_id":
		return &in.OwnerID
	case "run_automation":
		return &in.RunAutomation
	case "custom_fields":
		return &in.CustomFields
	case "external_id":
		return &in.ExternalID
	case "artifacts":
		return &in.Artifacts
	}
	return nil
}

// containerCreated is the answer to a successful POST /rest/container.
type containerCreated struct {
	Success   bool             `json:"success"`
	ID        int64            `json:"id"`
	Artifacts []artifactAnswer `json:"artifacts,omitempty"`
}

// containerDuplicate is the answer when the source_data_identifier exists.
// Clients (Splunk's SDK among them) look for existing_container_id first.
type containerDuplicate struct {
	Failed              bool   `json:"failed"`
	Message             string `json:"message"`
	ExistingContainerID int64  `json:"existing_container_id"`
}

// parseContainer validates a container object and returns it with its
// inline artifacts.
func (s *Server) parseContainer(body []byte) (store.NewContainer, []artifactItem, error) {
	var (
		in  containerIn
		c   store.NewContainer
		err error
	)
	// One check of the whole body; the fields then refer into it.
	if jsonKind(body) != '{' || !json.Valid(body) {
		return c, nil, badInput("request body is not a valid JSON object")
	}
	eachMember(body, func(key string, val json.RawMessage) { setField(key, val, containerInNames, in.field) })
	if isNull(in.Name) {
		return c, nil, badInput("name is required")
	}
	if c.Name, err = optString("name", in.Name); err != nil {
		return c, nil, err
	}
	if strings.TrimSpace(c.Name) == "" {
		return c, nil, badInput("name must not be empty")
	}
	if isNull(in.Label) {
		return c, nil, badInput("label is required")
	}
	if c.Label, err = optString("label", in.Label); err != nil {
		return c, nil, err
	}
	if !slices.Contains(s.cfg.Labels, c.Label) {
		return c, nil, badInput("%s is not a known label.", c.Label)
	}
	sev, err := optString("severity", in.Severity)
	if err != nil {
		return c, nil, err
	}
	if c.Severity, err = s.checkSeverity(sev); err != nil {
		return c, nil, err
	}
	if c.Sensitivity, err = oneOf("sensitivity", in.Sensitivity, "amber", containerSensitivity); err != nil {
		return c, nil, err
	}
	if c.Status, err = oneOf("status", in.Status, "new", containerStatuses); err != nil {
		return c, nil, err
	}
	if c.Description, err = optString("description", in.Description); err != nil {
		return c, nil, err
	}
	if c.SDI, err = optString("source_data_identifier", in.SDI); err != nil {
		return c, nil, err
	}
	if c.StartTime, err = optTime("start_time", in.StartTime); err != nil {
		return c, nil, err
	}
	if c.EndTime, err = optTime("end_time", in.EndTime); err != nil {
		return c, nil, err
	}
	if c.Data, err = optObject("data", in.Data, "{}"); err != nil {
		return c, nil, err
	}
	if c.Tags, err = optStringList("tags", in.Tags); err != nil {
		return c, nil, err
	}
	if c.OwnerID, err = optOwner(in.OwnerID); err != nil {
		return c, nil, err
	}
	if c.RunAutomation, err = optBool("run_automation", in.RunAutomation); err != nil {
		return c, nil, err
	}
	if c.CustomFields, err = optObject("custom_fields", in.CustomFields, "{}"); err != nil {
		return c, nil, err
	}
	if c.ExternalID, err = optString("external_id", in.ExternalID); err != nil {
		return c, nil, err
	}
	var inline []artifactItem
	if !isNull(in.Artifacts) {
		if in.Artifacts[0] != '[' {
			return c, nil, badInput("artifacts must be a list of artifact objects")
		}
		if inline, err = s.parseValidArtifactList(in.Artifacts, true); err != nil {
			return c, nil, badInput("artifacts must be a list of artifact objects")
		}
	}
	return c, inline, nil
}

// oneOf reads an optional string that must be one of allowed.
func oneOf(field string, raw json.RawMessage, def string, allowed []string) (string, error) {
	v, err := optString(field, raw)
	if err != nil {
		return "", err
	}
	if v == "" {
		return def, nil
	}
	if !slices.Contains(allowed, v) {
		return "", badInput("%s %q is not valid; use one of %s", field, v, strings.Join(allowed, ", "))
	}
	return v, nil
}

// createContainer handles POST /rest/container: the container and its
// inline artifacts are written in one transaction.
func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) {
	body, release, ok := s.readBody(w, r)
	if !ok {
		return
	}
	defer release()
	if jsonKind(body) != '{' {
		writeError(w, http.StatusBadRequest, "request body must be a JSON object describing one container")
		return
	}
	c, items, err := s.parseContainer(body)
	if err != nil {
		s.writeInputError(w, r, "create container", err)
		return
	}

	var id, existing int64
	var answers []artifactAnswer
	var created, dups int64
	err = s.store.Write(r.Context(), func(wt *store.Tx) error {
		var err error
		if id, existing, err = wt.InsertContainer(c); err != nil || existing != 0 {
			return err
		}
		answers = make([]artifactAnswer, len(items))
		created, dups = 0, 0
		for i := range items {
			items[i].art.ContainerID = id
			out, err := storeArtifact(wt, items[i], nil)
			if err != nil {
				return err
			}
			answers[i] = out.inlineAnswer()
			created, dups = created+out.created(), dups+out.duplicate()
		}
		return nil
	})
	if err != nil {
		s.internalError(w, r, "create container", err)
		return
	}
	if existing != 0 {
		s.stats.stored(0, 0, 1)
		writeJSON(w, s.cfg.DuplicateStatus, containerDuplicate{
			Failed:              true,
			Message:             fmt.Sprintf("duplicate with container id %d", existing),
			ExistingContainerID: existing,
		})
		return
	}
	s.stats.stored(1, created, dups)
	writeJSON(w, http.StatusOK, containerCreated{Success: true, ID: id, Artifacts: answers})
}

// getContainer handles GET /rest/container/N.
func (s *Server) getContainer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %q does not exist", r.PathValue("id")))
		return
	}
	c, found, err := s.store.Container(r.Context(), id)
	switch {
	case err != nil:
		s.internalError(w, r, "get container", err)
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %d does not exist", id))
	default:
		writeJSON(w, http.StatusOK, c)
	}
}

// deleteContainer handles DELETE /rest/container/N (user credentials only,
// see authed).
func (s *Server) deleteContainer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %q does not exist", r.PathValue("id")))
		return
	}
	deleted, err := s.store.DeleteContainer(r.Context(), id)
	switch {
	case err != nil:
		s.internalError(w, r, "delete container", err)
	case !deleted:
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %d does not exist", id))
	default:
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	}
}

// listing is the answer of every listing endpoint.
type listing[T any] struct {
	Count    int64 `json:"count"`
	NumPages int64 `json:"num_pages"`
	Data     []T   `json:"data"`
}

// listContainers handles GET /rest/container.
func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) {
	q, err := store.ParseQuery(r.URL.Query(), store.Containers)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	count, data, err := s.store.ListContainers(r.Context(), q)
	if err != nil {
		s.internalError(w, r, "list containers", err)
		return
	}
	writeJSON(w, http.StatusOK, listing[store.Container]{Count: count, NumPages: q.NumPages(count), Data: data})
}
