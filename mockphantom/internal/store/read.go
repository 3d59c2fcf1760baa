package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Container is a container as the REST API returns it.
type Container struct {
	ID                   int64           `json:"id"`
	Name                 string          `json:"name"`
	Label                string          `json:"label"`
	Severity             string          `json:"severity"`
	Sensitivity          string          `json:"sensitivity"`
	Status               string          `json:"status"`
	Description          string          `json:"description"`
	SourceDataIdentifier *string         `json:"source_data_identifier"`
	StartTime            *string         `json:"start_time"`
	EndTime              *string         `json:"end_time"`
	CreateTime           string          `json:"create_time"`
	Data                 json.RawMessage `json:"data"`
	Tags                 json.RawMessage `json:"tags"`
	OwnerID              json.RawMessage `json:"owner_id"`
	ExternalID           *string         `json:"external_id"`
	CustomFields         json.RawMessage `json:"custom_fields"`
	ArtifactCount        int64           `json:"artifact_count"`
	ContainerType        string          `json:"container_type"`
}

const containerColumns = `c.id, c.name, c.label, c.severity, c.sensitivity, c.status, c.description,
	c.source_data_identifier, c.start_time, c.end_time, c.create_time, c.data, c.tags, c.owner_id,
	c.external_id, c.custom_fields,
	(SELECT COUNT(*) FROM artifacts a WHERE a.container_id = c.id)`

func scanContainer(row interface{ Scan(...any) error }) (Container, error) {
	var (
		c                         Container
		sdi, start, end, ext, own sql.NullString
		data, tags, custom        string
	)
	err := row.Scan(&c.ID, &c.Name, &c.Label, &c.Severity, &c.Sensitivity, &c.Status, &c.Description,
		&sdi, &start, &end, &c.CreateTime, &data, &tags, &own, &ext, &custom, &c.ArtifactCount)
	if err != nil {
		return c, err
	}
	c.SourceDataIdentifier, c.StartTime, c.EndTime, c.ExternalID = strPtr(sdi), strPtr(start), strPtr(end), strPtr(ext)
	c.Data, c.Tags, c.CustomFields = json.RawMessage(data), json.RawMessage(tags), json.RawMessage(custom)
	if own.Valid {
		c.OwnerID = json.RawMessage(own.String)
	}
	c.ContainerType = "default"
	return c, nil
}

// Artifact is an artifact as the REST API returns it.
type Artifact struct {
	ID                   int64           `json:"id"`
	Container            int64           `json:"container"`
	Name                 string          `json:"name"`
	Label                string          `json:"label"`
	Severity             string          `json:"severity"`
	CEF                  json.RawMessage `json:"cef"`
	CEFTypes             json.RawMessage `json:"cef_types"`
	Data                 json.RawMessage `json:"data"`
	SourceDataIdentifier *string         `json:"source_data_identifier"`
	Type                 *string         `json:"type"`
	Tags                 json.RawMessage `json:"tags"`
	StartTime            *string         `json:"start_time"`
	EndTime              *string         `json:"end_time"`
	CreateTime           string          `json:"create_time"`
	RunAutomation        bool            `json:"run_automation"`
}

const artifactColumns = `a.id, a.container_id, a.name, a.label, a.severity, a.cef, a.cef_types, a.data,
	a.source_data_identifier, a.type, a.tags, a.start_time, a.end_time, a.create_time, a.run_automation`

func scanArtifact(row interface{ Scan(...any) error }) (Artifact, error) {
	var (
		a                      Artifact
		sdi, typ, start, end   sql.NullString
		cef, cefTypes, d, tags string
	)
	err := row.Scan(&a.ID, &a.Container, &a.Name, &a.Label, &a.Severity, &cef, &cefTypes, &d,
		&sdi, &typ, &tags, &start, &end, &a.CreateTime, &a.RunAutomation)
	if err != nil {
		return a, err
	}
	a.SourceDataIdentifier, a.Type, a.StartTime, a.EndTime = strPtr(sdi), strPtr(typ), strPtr(start), strPtr(end)
	a.CEF, a.CEFTypes, a.Data, a.Tags = json.RawMessage(cef), json.RawMessage(cefTypes), json.RawMessage(d), json.RawMessage(tags)
	return a, nil
}

// Container returns container id; found is false when it does not exist.
func (st *Store) Container(ctx context.Context, id int64) (c Container, found bool, err error) {
	row := st.r.QueryRowContext(ctx, "SELECT "+containerColumns+" FROM containers c WHERE c.id = ?", id)
	c, err = scanContainer(row)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("failed to read container %d: %w", id, err)
	}
	return c, true, nil
}

// Artifact returns artifact id; found is false when it does not exist.
func (st *Store) Artifact(ctx context.Context, id int64) (a Artifact, found bool, err error) {
	row := st.r.QueryRowContext(ctx, "SELECT "+artifactColumns+" FROM artifacts a WHERE a.id = ?", id)
	a, err = scanArtifact(row)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("failed to read artifact %d: %w", id, err)
	}
	return a, true, nil
}

// ListContainers returns how many containers match q and one page of them.
func (st *Store) ListContainers(ctx context.Context, q Query) (int64, []Container, error) {
	return list(ctx, st, q, Containers, containerColumns, scanContainer)
}

// ListArtifacts returns how many artifacts match q and one page of them.
func (st *Store) ListArtifacts(ctx context.Context, q Query) (int64, []Artifact, error) {
	return list(ctx, st, q, Artifacts, artifactColumns, scanArtifact)
}

// list runs the count and the page query of q in one read transaction, so
// that both see the same snapshot. columns are constants of this package;
// everything from the request is in q's parameters.
func list[T any](ctx context.Context, st *Store, q Query, t Table, columns string,
	scan func(interface{ Scan(...any) error }) (T, error)) (int64, []T, error) {
	where, orderBy, args, err := q.sql(t)
	if err != nil {
		return 0, nil, err
	}
	table := t.from()
	tx, err := st.r.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("failed to begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var count int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table+where, args...).Scan(&count); err != nil {
		return 0, nil, fmt.Errorf("failed to count %s: %w", t, err)
	}
	query := "SELECT " + columns + " FROM " + table + where + orderBy
	if q.PageSize > 0 {
		query += " LIMIT ? OFFSET ?"
		args = append(args[:len(args):len(args)], q.PageSize, q.Page*q.PageSize)
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("failed to list %s: %w", t, err)
	}
	defer func() { _ = rows.Close() }()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return 0, nil, fmt.Errorf("failed to read %s: %w", t, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("failed to list %s: %w", t, err)
	}
	return count, out, nil
}

func strPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}
