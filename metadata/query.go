package metadata

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mlpipe/mlpipe/contract"
)

// QueryRuns returns one page of runs, newest first, that match the
// pipeline and the recorded state (an empty filter matches any), and how
// many runs match in all. It reads only the rows of the page (LIMIT and
// OFFSET), so that a history of many thousand runs lists quickly.
func (s *Store) QueryRuns(ctx context.Context, pipeline, state string, limit, offset int) ([]*contract.RunRecord, int, error) {
	where, args := ``, []any{}
	if pipeline != "" {
		where += ` AND pipeline=?`
		args = append(args, pipeline)
	}
	if state != "" {
		where += ` AND state=?`
		args = append(args, state)
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE 1=1`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count runs: %w", err)
	}
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+runCols+` FROM runs WHERE 1=1`+where+` ORDER BY started_at DESC, id LIMIT ? OFFSET ?`,
		append(args, limit, max(offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []*contract.RunRecord
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	return out, total, rows.Err()
}

// Pipelines lists the names of the pipelines the history has runs of, in
// order.
func (s *Store) Pipelines(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT pipeline FROM runs ORDER BY pipeline`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// FindArtifact returns the artifact a run recorded at exactly uri, or an
// error matching ErrNotFound.
func (s *Store) FindArtifact(ctx context.Context, uri string) (*Artifact, error) {
	a := &Artifact{URI: uri}
	var typ, digest, md sql.NullString
	var size sql.NullInt64
	var dir sql.NullBool
	err := s.db.QueryRowContext(ctx, `SELECT run_id, task_path, name, type, digest, size, dir, metadata FROM artifacts WHERE uri=?`, uri).
		Scan(&a.RunID, &a.TaskPath, &a.Name, &typ, &digest, &size, &dir, &md)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("artifact %s: %w", uri, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	a.Type, a.Digest, a.Size, a.Dir = typ.String, digest.String, size.Int64, dir.Bool
	rec := record{RunID: a.RunID, Task: a.TaskPath, Artifact: uri}
	if err := rec.decode("artifacts.metadata", md.String, &a.Metadata); err != nil {
		return nil, err
	}
	return a, nil
}

// Input is an artifact a task read.
type Input struct {
	Name   string
	URI    string
	Digest string
}

// TaskInputs lists the artifacts a task of a run read, by input name.
func (s *Store) TaskInputs(ctx context.Context, runID, path string) ([]Input, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, uri, digest FROM lineage WHERE run_id=? AND task_path=? AND direction='input' ORDER BY name, uri`, runID, path)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Input
	for rows.Next() {
		var in Input
		var digest sql.NullString
		if err := rows.Scan(&in.Name, &in.URI, &digest); err != nil {
			return nil, err
		}
		in.Digest = digest.String
		out = append(out, in)
	}
	return out, rows.Err()
}
