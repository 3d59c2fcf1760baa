package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// NewNote is a validated note ready to insert.
type NewNote struct {
	ContainerID                          int64
	Title, Content, NoteType, NoteFormat string
}

// Note is a note as the REST API returns it.
type Note struct {
	ID         int64  `json:"id"`
	Container  int64  `json:"container"`
	Title      string `json:"title"`
	Content    string `json:"content"`
	NoteType   string `json:"note_type"`
	NoteFormat string `json:"note_format"`
	CreateTime string `json:"create_time"`
}

const noteColumns = `n.id, n.container_id, n.title, n.content, n.note_type, n.note_format, n.create_time`

func scanNote(row interface{ Scan(...any) error }) (Note, error) {
	var n Note
	err := row.Scan(&n.ID, &n.Container, &n.Title, &n.Content, &n.NoteType, &n.NoteFormat, &n.CreateTime)
	return n, err
}

// AddNote stores n and returns its id; found is false (and nothing is
// stored) when its container does not exist.
func (st *Store) AddNote(ctx context.Context, n NewNote) (id int64, found bool, err error) {
	err = st.Write(ctx, func(wt *Tx) error {
		if found, err = wt.ContainerExists(n.ContainerID); err != nil || !found {
			return err
		}
		res, err := wt.tx.ExecContext(wt.ctx, `INSERT INTO notes (container_id, title, content, note_type, note_format, create_time)
			VALUES (?, ?, ?, ?, ?, ?)`, n.ContainerID, n.Title, n.Content, n.NoteType, n.NoteFormat, wt.now)
		if err != nil {
			return fmt.Errorf("failed to insert note: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("failed to read inserted note id: %w", err)
		}
		return nil
	})
	return id, found, err
}

// Note returns note id; found is false when it does not exist.
func (st *Store) Note(ctx context.Context, id int64) (n Note, found bool, err error) {
	row := st.r.QueryRowContext(ctx, "SELECT "+noteColumns+" FROM notes n WHERE n.id = ?", id)
	n, err = scanNote(row)
	if errors.Is(err, sql.ErrNoRows) {
		return n, false, nil
	}
	if err != nil {
		return n, false, fmt.Errorf("failed to read note %d: %w", id, err)
	}
	return n, true, nil
}

// ListNotes returns how many notes match q and one page of them.
func (st *Store) ListNotes(ctx context.Context, q Query) (int64, []Note, error) {
	return list(ctx, st, q, Notes, noteColumns, scanNote)
}
