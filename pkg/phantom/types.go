package phantom

import (
	"encoding/json"
	"time"
)

// TimeFormat is how SOAR writes times; it also accepts it on input.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// FormatTime formats t in UTC the way SOAR does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// Container is a SOAR container (a case or event). The same type serves for
// creating one and for reading one back.
type Container struct {
	ID                   int64           `json:"id,omitempty"`
	Name                 string          `json:"name"`
	Label                string          `json:"label"`
	Description          string          `json:"description,omitempty"`
	Severity             string          `json:"severity,omitempty"`
	Sensitivity          string          `json:"sensitivity,omitempty"`
	Status               string          `json:"status,omitempty"`
	SourceDataIdentifier string          `json:"source_data_identifier,omitempty"`
	StartTime            string          `json:"start_time,omitempty"`
	EndTime              string          `json:"end_time,omitempty"`
	CreateTime           string          `json:"create_time,omitempty"`
	Data                 json.RawMessage `json:"data,omitempty"`
	Tags                 []string        `json:"tags,omitempty"`
	RunAutomation        *bool           `json:"run_automation,omitempty"`
	ArtifactCount        int             `json:"artifact_count,omitempty"`
	// Artifacts are created together with the container (POST only).
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

// Artifact is a SOAR artifact: one piece of evidence in a container.
type Artifact struct {
	ID int64 `json:"id,omitempty"`
	// ContainerID is where a new artifact goes (POST).
	ContainerID int64 `json:"container_id,omitempty"`
	// Container is the container of an artifact read back (GET).
	Container            int64               `json:"container,omitempty"`
	Name                 string              `json:"name,omitempty"`
	Label                string              `json:"label,omitempty"`
	Severity             string              `json:"severity,omitempty"`
	Type                 string              `json:"type,omitempty"`
	SourceDataIdentifier string              `json:"source_data_identifier,omitempty"`
	StartTime            string              `json:"start_time,omitempty"`
	EndTime              string              `json:"end_time,omitempty"`
	CreateTime           string              `json:"create_time,omitempty"`
	CEF                  map[string]any      `json:"cef,omitempty"`
	CEFTypes             map[string][]string `json:"cef_types,omitempty"`
	Data                 json.RawMessage     `json:"data,omitempty"`
	Tags                 []string            `json:"tags,omitempty"`
	// RunAutomation is sent always: SOAR's convention is false on every
	// artifact of a batch but the last, so playbooks run once per batch.
	RunAutomation bool `json:"run_automation"`
}

// ContainerResult is the answer to a container creation.
type ContainerResult struct {
	// ID of the container, new or already existing.
	ID int64
	// Existing is true when SOAR already had a container with the same
	// source_data_identifier; then no inline artifact was created.
	Existing bool
	// Artifacts holds one result per inline artifact, in order.
	Artifacts []ArtifactResult
}

// ArtifactResult is the outcome for one artifact of a request.
type ArtifactResult struct {
	ID       int64
	Existing bool
	// Err is set when SOAR refused this artifact; it is a *Error.
	Err error
}

// Page is one page of a listing.
type Page[T any] struct {
	Count    int `json:"count"`
	NumPages int `json:"num_pages"`
	Data     []T `json:"data"`
}

// Query selects a page of a listing. Filters map a field, optionally with
// an operator suffix such as "__gte", to a value; strings are quoted for
// SOAR, numbers and booleans are sent as they are.
type Query struct {
	Page     int
	PageSize int // 0 means everything
	Sort     string
	Order    string // "asc" or "desc"
	Filters  map[string]any
}

// response is the common shape of SOAR's answers to writes.
type response struct {
	Success             bool             `json:"success"`
	Failed              bool             `json:"failed"`
	Message             string           `json:"message"`
	ID                  int64            `json:"id"`
	ExistingContainerID int64            `json:"existing_container_id"`
	ExistingArtifactID  int64            `json:"existing_artifact_id"`
	Artifacts           []responseStatus `json:"artifacts"`
}

type responseStatus struct {
	Success            bool   `json:"success"`
	Failed             bool   `json:"failed"`
	Message            string `json:"message"`
	ID                 int64  `json:"id"`
	ExistingArtifactID int64  `json:"existing_artifact_id"`
}

// Note is a SOAR note on a container: what the responder writes into a
// case after acting, so the case shows what was done.
type Note struct {
	ID int64 `json:"id,omitempty"`
	// ContainerID is where a new note goes (POST).
	ContainerID int64 `json:"container_id,omitempty"`
	// Container is the container of a note read back (GET).
	Container int64  `json:"container,omitempty"`
	Title     string `json:"title"`
	Content   string `json:"content"`
	// NoteType is "general" for a note on a container (SOAR requires it).
	NoteType string `json:"note_type"`
	// NoteFormat is "markdown" (SOAR's default) or "html".
	NoteFormat string `json:"note_format,omitempty"`
	CreateTime string `json:"create_time,omitempty"`
}
