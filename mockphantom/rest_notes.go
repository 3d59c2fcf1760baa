package mockphantom

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/falco-phantom/kubectl-falco-phantom/mockphantom/internal/store"
)

// noteIn holds the fields of POST /rest/note as raw JSON, so that each is
// checked with a message naming it. Other fields (attachments ...) are
// ignored.
type noteIn struct {
	ContainerID json.RawMessage `json:"container_id"`
	Title       json.RawMessage `json:"title"`
	Content     json.RawMessage `json:"content"`
	NoteType    json.RawMessage `json:"note_type"`
	NoteFormat  json.RawMessage `json:"note_format"`
}

const noteObjectMessage = "request body must be a JSON object describing one note"

// noteFormats are the formats SOAR renders; the first is the default.
var noteFormats = []string{"markdown", "html"}

// noteCreated is the answer to a successful POST /rest/note.
type noteCreated struct {
	Success bool  `json:"success"`
	ID      int64 `json:"id"`
}

// parseNote validates a note object (body starts with '{').
func parseNote(body []byte) (store.NewNote, error) {
	var (
		in  noteIn
		n   store.NewNote
		err error
	)
	if json.Unmarshal(body, &in) != nil {
		return n, badInput(noteObjectMessage)
	}
	id, given, err := optInt("container_id", in.ContainerID)
	switch {
	case err != nil:
		return n, err
	case !given:
		return n, badInput("container_id is required: the container the note is about")
	case id <= 0:
		return n, badInput("container_id must be a positive container id, not %d", id)
	}
	n.ContainerID = id
	if n.Title, err = optString("title", in.Title); err != nil {
		return n, err
	}
	if n.Content, err = optString("content", in.Content); err != nil {
		return n, err
	}
	if n.NoteType, err = optString("note_type", in.NoteType); err != nil {
		return n, err
	}
	switch n.NoteType {
	case "":
		return n, badInput(`note_type is required; use "general" for a note on a container`)
	case "general":
	default:
		return n, badInput(`note_type %q is not supported by this mock; use "general" (a note on a container)`, n.NoteType)
	}
	if n.NoteFormat, err = enumField("note_format", noteFormats)(in.NoteFormat); err != nil {
		return n, err
	}
	if n.NoteFormat == "" {
		n.NoteFormat = noteFormats[0]
	}
	return n, nil
}

// createNote handles POST /rest/note.
func (s *Server) createNote(w http.ResponseWriter, r *http.Request) {
	body, release, ok := s.readObject(w, r, noteObjectMessage)
	if !ok {
		return
	}
	defer release()
	n, err := parseNote(body)
	if err != nil {
		s.writeInputError(w, r, "create note", err)
		return
	}
	id, found, err := s.store.AddNote(r.Context(), n)
	switch {
	case err != nil:
		s.internalError(w, r, "create note", err)
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %d does not exist", n.ContainerID))
	default:
		writeJSON(w, http.StatusOK, noteCreated{Success: true, ID: id})
	}
}

// getNote handles GET /rest/note/N.
func (s *Server) getNote(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, "note", s.store.Note)
}

// listNotes handles GET /rest/note (_filter_container=N for one case).
func (s *Server) listNotes(w http.ResponseWriter, r *http.Request) {
	listAll(s, w, r, store.Notes, s.store.ListNotes)
}
