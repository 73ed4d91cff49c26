package metadata

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The run history's layout is versioned with SQLite's PRAGMA user_version.
// Version 1 is the layout every release before versioning created (they
// left user_version at 0); each migration below moves the database one
// version forward, in one write transaction with the version bump. Open
// applies the missing ones, creates an empty database at the newest version
// directly, and refuses a database newer than this binary knows.

// schemaV1 is the version 1 layout, exactly as the releases before
// versioning created it. It is frozen: never edit it, add a migration.
const schemaV1 = `
CREATE TABLE IF NOT EXISTS runs (
	id TEXT PRIMARY KEY,
	pipeline TEXT NOT NULL,
	state TEXT NOT NULL,
	started_at INTEGER NOT NULL,
	finished_at INTEGER NOT NULL DEFAULT 0,
	params TEXT, source TEXT, ir_path TEXT, pipeline_root TEXT, executor TEXT,
	pid INTEGER, host TEXT, error TEXT, outputs TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE TABLE IF NOT EXISTS tasks (
	run_id TEXT NOT NULL,
	path TEXT NOT NULL,
	name TEXT, component TEXT, kind TEXT,
	state TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	started_at INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0,
	cache_key TEXT, cached_from TEXT, outputs TEXT, gpus TEXT, error TEXT,
	exit_code INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, path)
);
CREATE TABLE IF NOT EXISTS attempts (
	run_id TEXT NOT NULL,
	task_path TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	started_at INTEGER, finished_at INTEGER, exit_code INTEGER, oom_killed INTEGER,
	error TEXT, executor TEXT, image TEXT, image_digest TEXT, gpus TEXT, phases TEXT, gpu_samples TEXT, log_path TEXT,
	PRIMARY KEY (run_id, task_path, attempt)
);
CREATE TABLE IF NOT EXISTS artifacts (
	uri TEXT PRIMARY KEY,
	run_id TEXT NOT NULL,
	task_path TEXT NOT NULL,
	name TEXT NOT NULL,
	type TEXT, digest TEXT, size INTEGER, dir INTEGER, metadata TEXT,
	created_at INTEGER
);
CREATE INDEX IF NOT EXISTS artifacts_run ON artifacts(run_id);
CREATE TABLE IF NOT EXISTS lineage (
	run_id TEXT NOT NULL,
	task_path TEXT NOT NULL,
	direction TEXT NOT NULL,
	name TEXT NOT NULL,
	uri TEXT NOT NULL,
	digest TEXT,
	PRIMARY KEY (run_id, task_path, direction, name, uri)
);
CREATE INDEX IF NOT EXISTS lineage_uri ON lineage(uri);
CREATE TABLE IF NOT EXISTS cache (
	key TEXT PRIMARY KEY,
	run_id TEXT NOT NULL,
	task_path TEXT NOT NULL,
	outputs TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_run ON cache(run_id);
`

// v1Columns are the columns of schemaV1's tables: an unversioned database
// is taken for version 1 when its tables have them all.
var v1Columns = map[string][]string{
	"runs":      {"id", "pipeline", "state", "started_at", "finished_at", "params", "source", "ir_path", "pipeline_root", "executor", "pid", "host", "error", "outputs"},
	"tasks":     {"run_id", "path", "name", "component", "kind", "state", "attempts", "started_at", "finished_at", "cache_key", "cached_from", "outputs", "gpus", "error", "exit_code"},
	"attempts":  {"run_id", "task_path", "attempt", "started_at", "finished_at", "exit_code", "oom_killed", "error", "executor", "image", "image_digest", "gpus", "phases", "gpu_samples", "log_path"},
	"artifacts": {"uri", "run_id", "task_path", "name", "type", "digest", "size", "dir", "metadata", "created_at"},
	"lineage":   {"run_id", "task_path", "direction", "name", "uri", "digest"},
	"cache":     {"key", "run_id", "task_path", "outputs", "created_at"},
}

// migration moves the database from version to-1 to version to. up runs
// inside the write transaction that then sets user_version to to.
type migration struct {
	to   int
	what string
	up   func(ctx context.Context, tx *sql.Tx) error
}

// execSQL is a migration step made of SQL statements.
func execSQL(q string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q)
		return err
	}
}

// migrations are the steps after version 1, in order: migrations[i] moves
// version i+1 to i+2. Append only; never edit or reorder a released step.
var migrations = []migration{
	{to: 2, what: "index tasks by cached_from (runs rm looks for the runs cached from the one it removes)",
		up: execSQL(`CREATE INDEX tasks_cached_from ON tasks(cached_from)`)},
}

// SchemaVersion is the newest run history layout this binary knows:
// 1 + len(migrations).
const SchemaVersion = 2

func newest(steps []migration) int { return 1 + len(steps) }

// ErrNewerSchema is returned by Open for a run history written by a newer
// mlpipe; the database is left untouched.
var ErrNewerSchema = errors.New("run history written by a newer mlpipe")

type newerError struct {
	path        string
	have, knows int
}

func (e *newerError) Error() string {
	return fmt.Sprintf("the run history at %s was written by a newer mlpipe (schema %d, this one knows up to %d): upgrade mlpipe", e.path, e.have, e.knows)
}

func (e *newerError) Unwrap() error { return ErrNewerSchema }

type queryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func userVersion(ctx context.Context, db queryer) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
	return v, err
}

// checkVersion reads the database's version without writing anything, and
// refuses a newer one.
func checkVersion(ctx context.Context, db *sql.DB, path string, steps []migration) (int, error) {
	v, err := userVersion(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("open run history %s: %w", path, err)
	}
	if v > newest(steps) {
		return v, &newerError{path, v, newest(steps)}
	}
	return v, nil
}

// migrate brings the database at path to the newest version of steps and
// returns how many version bumps it committed (creating an empty database
// counts as one). Each step runs in a write transaction (BEGIN IMMEDIATE,
// from the DSN's _txlock) that first reads the version again: a second
// process opening the same old database waits for the first one's step and
// then sees the version it left, so no step runs twice. The pool's one
// connection is the transaction's until it ends.
func migrate(ctx context.Context, db *sql.DB, path string, steps []migration) (int, error) {
	v, err := checkVersion(ctx, db, path, steps)
	if err != nil {
		return 0, err
	}
	n := 0
	for v < newest(steps) {
		var bumped bool
		v, bumped, err = migrateStep(ctx, db, path, steps)
		if err != nil {
			return n, err
		}
		if bumped {
			n++
		}
	}
	return n, nil
}

// migrateStep runs the next step in one write transaction and returns the
// version it committed (bumped true). Another process may have brought the
// database to the newest version meanwhile: then it changes nothing and
// returns that version.
func migrateStep(ctx context.Context, db *sql.DB, path string, steps []migration) (v int, bumped bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("migrate run history %s: %w", path, err)
	}
	defer tx.Rollback()
	v, err = userVersion(ctx, tx)
	if err != nil {
		return 0, false, fmt.Errorf("migrate run history %s: %w", path, err)
	}
	to := v
	switch {
	case v > newest(steps):
		return v, false, &newerError{path, v, newest(steps)}
	case v == newest(steps):
		return v, false, tx.Commit() // another process did it
	case v == 0:
		fresh, err := adoptUnversioned(ctx, tx, path)
		if err != nil {
			return 0, false, err
		}
		if _, err := tx.ExecContext(ctx, schemaV1); err != nil {
			return 0, false, fmt.Errorf("create run history %s: %w", path, err)
		}
		to = 1
		if fresh { // straight to the newest version, in this transaction
			for _, m := range steps {
				if err := m.up(ctx, tx); err != nil {
					return 0, false, fmt.Errorf("create run history %s: schema %d (%s): %w", path, m.to, m.what, err)
				}
			}
			to = newest(steps)
		}
	default:
		m := steps[v-1]
		if err := m.up(ctx, tx); err != nil {
			return 0, false, fmt.Errorf("migrate run history %s from schema %d to %d (%s): %w", path, v, m.to, m.what, err)
		}
		to = m.to
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, to)); err != nil {
		return 0, false, fmt.Errorf("migrate run history %s to schema %d: %w", path, to, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("migrate run history %s to schema %d: %w", path, to, err)
	}
	return to, true, nil
}

// adoptUnversioned looks at a database whose user_version is 0: empty (fresh
// is true), or made by a release before versioning, whose layout is version
// 1's (tables a first open left uncreated are created with the version 1
// schema). Anything else is refused.
func adoptUnversioned(ctx context.Context, tx *sql.Tx, path string) (fresh bool, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return false, fmt.Errorf("open run history %s: %w", path, err)
	}
	var tables, ours []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return false, fmt.Errorf("open run history %s: %w", path, err)
		}
		tables = append(tables, name)
		if v1Columns[name] != nil {
			ours = append(ours, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("open run history %s: %w", path, err)
	}
	if len(tables) == 0 {
		return true, nil
	}
	if len(ours) == 0 {
		return false, fmt.Errorf("%s is not an mlpipe run history (its tables are %s): move it away or point mlpipe at another state directory", path, strings.Join(tables, ", "))
	}
	for _, table := range ours {
		have, err := columns(ctx, tx, table)
		if err != nil {
			return false, fmt.Errorf("open run history %s: %w", path, err)
		}
		var missing []string
		for _, c := range v1Columns[table] {
			if !slices.Contains(have, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return false, fmt.Errorf("the run history at %s has a layout no mlpipe release wrote: table %s lacks column %s", path, table, strings.Join(missing, ", "))
		}
	}
	return false, nil
}

// columns lists a table's columns (PRAGMA table_info).
func columns(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
