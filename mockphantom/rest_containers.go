package mockphantom

import (
	"context"
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

// containerCreated is the answer to a successful POST /rest/container, and
// (without artifacts) to an update.
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

// decodeContainerIn checks that body is one JSON object and returns its
// fields, which refer into body.
func decodeContainerIn(body []byte) (containerIn, error) {
	var in containerIn
	if jsonKind(body) != '{' || !json.Valid(body) {
		return in, badInput("request body is not a valid JSON object")
	}
	eachMember(body, func(key string, val json.RawMessage) { setField(key, val, containerInNames, in.field) })
	return in, nil
}

// containerFields checks the fields of in that creation and update share,
// each the same way; absent and null fields stay nil. An empty severity,
// sensitivity, status or start_time is returned as "": a creation applies
// the default, an update refuses it.
func (s *Server) containerFields(in *containerIn) (store.ContainerUpdate, error) {
	var u store.ContainerUpdate
	text := func(field string) func(json.RawMessage) (string, error) {
		return func(raw json.RawMessage) (string, error) { return optString(field, raw) }
	}
	for _, f := range []struct {
		raw   json.RawMessage
		dst   **string
		check func(json.RawMessage) (string, error)
	}{
		{in.Name, &u.Name, checkName},
		{in.Label, &u.Label, s.checkLabel},
		{in.Severity, &u.Severity, s.severityField},
		{in.Sensitivity, &u.Sensitivity, enumField("sensitivity", containerSensitivity)},
		{in.Status, &u.Status, enumField("status", containerStatuses)},
		{in.Description, &u.Description, text("description")},
		{in.StartTime, &u.StartTime, func(raw json.RawMessage) (string, error) { return optTime("start_time", raw) }},
		{in.EndTime, &u.EndTime, func(raw json.RawMessage) (string, error) { return optTime("end_time", raw) }},
		{in.ExternalID, &u.ExternalID, text("external_id")},
		{in.Data, &u.Data, func(raw json.RawMessage) (string, error) { return optObject("data", raw, "{}") }},
		{in.Tags, &u.Tags, func(raw json.RawMessage) (string, error) { return optStringList("tags", raw) }},
		{in.OwnerID, &u.OwnerID, optOwner},
		{in.CustomFields, &u.CustomFields, func(raw json.RawMessage) (string, error) { return optObject("custom_fields", raw, "{}") }},
	} {
		if isNull(f.raw) {
			continue
		}
		v, err := f.check(f.raw)
		if err != nil {
			return u, err
		}
		*f.dst = &v
	}
	if !isNull(in.RunAutomation) {
		b, err := optBool("run_automation", in.RunAutomation)
		if err != nil {
			return u, err
		}
		u.RunAutomation = &b
	}
	return u, nil
}

func checkName(raw json.RawMessage) (string, error) {
	name, err := optString("name", raw)
	if err == nil && strings.TrimSpace(name) == "" {
		err = badInput("name must not be empty")
	}
	return name, err
}

func (s *Server) checkLabel(raw json.RawMessage) (string, error) {
	label, err := optString("label", raw)
	if err == nil && !slices.Contains(s.cfg.Labels, label) {
		err = badInput("%s is not a known label.", label)
	}
	return label, err
}

// severityField returns "" for an empty severity; see containerFields.
func (s *Server) severityField(raw json.RawMessage) (string, error) {
	sev, err := optString("severity", raw)
	if err != nil || sev == "" {
		return "", err
	}
	return s.checkSeverity(sev)
}

// enumField checks a string that must be one of allowed, or empty.
func enumField(field string, allowed []string) func(json.RawMessage) (string, error) {
	return func(raw json.RawMessage) (string, error) {
		v, err := optString(field, raw)
		if err == nil && v != "" && !slices.Contains(allowed, v) {
			err = badInput("%s %q is not valid; use one of %s", field, v, strings.Join(allowed, ", "))
		}
		return v, err
	}
}

// parseContainer validates a container object and returns it with its
// inline artifacts.
func (s *Server) parseContainer(body []byte) (store.NewContainer, []artifactItem, error) {
	var c store.NewContainer
	in, err := decodeContainerIn(body)
	if err != nil {
		return c, nil, err
	}
	if isNull(in.Name) {
		return c, nil, badInput("name is required")
	}
	if isNull(in.Label) {
		return c, nil, badInput("label is required")
	}
	u, err := s.containerFields(&in)
	if err != nil {
		return c, nil, err
	}
	c = store.NewContainer{
		Name: *u.Name, Label: *u.Label,
		Severity:      valueOr(u.Severity, "medium"),
		Sensitivity:   valueOr(u.Sensitivity, "amber"),
		Status:        valueOr(u.Status, "new"),
		Description:   valueOr(u.Description, ""),
		StartTime:     valueOr(u.StartTime, ""), // the store's default: now
		EndTime:       valueOr(u.EndTime, ""),
		ExternalID:    valueOr(u.ExternalID, ""),
		Data:          valueOr(u.Data, "{}"),
		Tags:          valueOr(u.Tags, "[]"),
		OwnerID:       valueOr(u.OwnerID, ""),
		CustomFields:  valueOr(u.CustomFields, "{}"),
		RunAutomation: u.RunAutomation != nil && *u.RunAutomation,
	}
	if c.SDI, err = optString("source_data_identifier", in.SDI); err != nil {
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

// parseContainerUpdate validates the body of POST /rest/container/N: any
// of the fields of a creation but source_data_identifier and artifacts,
// checked the same way. Absent and null fields stay as they are, but a
// null or empty owner_id, end_time or external_id clears it. Unknown
// fields are ignored, as at creation.
func (s *Server) parseContainerUpdate(body []byte) (store.ContainerUpdate, error) {
	in, err := decodeContainerIn(body)
	if err != nil {
		return store.ContainerUpdate{}, err
	}
	switch {
	case !isNull(in.SDI):
		return store.ContainerUpdate{}, badInput("source_data_identifier cannot be changed")
	case !isNull(in.Artifacts):
		return store.ContainerUpdate{}, badInput("artifacts cannot be added by updating a container; POST them to /rest/artifact")
	}
	u, err := s.containerFields(&in)
	if err != nil {
		return u, err
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"severity", u.Severity}, {"sensitivity", u.Sensitivity}, {"status", u.Status}, {"start_time", u.StartTime}} {
		if f.v != nil && *f.v == "" {
			return u, badInput("%s must not be empty", f.name)
		}
	}
	if string(in.OwnerID) == "null" || (u.OwnerID != nil && *u.OwnerID == `""`) {
		u.OwnerID = new(string)
	}
	return u, nil
}

// applyUpdate checks an update of container id (the body of POST
// /rest/container/N) and applies it; a client's mistake is an inputError.
// It reports whether the container exists.
func (s *Server) applyUpdate(ctx context.Context, id int64, body []byte) (found bool, err error) {
	u, err := s.parseContainerUpdate(body)
	if err != nil {
		return false, err
	}
	return s.store.UpdateContainer(ctx, id, u)
}

// valueOr returns *p, or def when p is nil or points to "".
func valueOr(p *string, def string) string {
	if p == nil || *p == "" {
		return def
	}
	return *p
}

// createContainer handles POST /rest/container: the container and its
// inline artifacts are written in one transaction.
func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) {
	body, release, ok := s.readObject(w, r, "request body must be a JSON object describing one container")
	if !ok {
		return
	}
	defer release()
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
	s.afterContainer(id, answers)
	writeJSON(w, http.StatusOK, containerCreated{Success: true, ID: id, Artifacts: answers})
}

// getContainer handles GET /rest/container/N.
func (s *Server) getContainer(w http.ResponseWriter, r *http.Request) {
	id, ok := restID(w, r, "container")
	if !ok {
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

// updateContainer handles POST /rest/container/N: it changes the fields
// the body names and answers {"success": true, "id": N}, as SOAR does.
func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request) {
	id, ok := restID(w, r, "container")
	if !ok {
		return
	}
	body, release, ok := s.readObject(w, r, "request body must be a JSON object with the fields to change")
	if !ok {
		return
	}
	defer release()
	found, err := s.applyUpdate(r.Context(), id, body)
	switch {
	case err != nil:
		s.writeInputError(w, r, "update container", err)
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %d does not exist", id))
	default:
		writeJSON(w, http.StatusOK, containerCreated{Success: true, ID: id})
	}
}

// deleteContainer handles DELETE /rest/container/N (user credentials only,
// see authed).
func (s *Server) deleteContainer(w http.ResponseWriter, r *http.Request) {
	id, ok := restID(w, r, "container")
	if !ok {
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
