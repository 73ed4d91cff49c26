package metadata

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/mlpipe/mlpipe/contract"
)

// ErrNotFound is returned for a run that is not in the history.
var ErrNotFound = errors.New("not found")

// Store is the SQLite run history.
type Store struct {
	db *sql.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // prepared once: parsing SQL costs more than running it
	want  map[string]bool      // seen inside a transaction, to prepare before the next one
}

// prepareWanted prepares the statements that transactions have asked for. It
// must run outside a transaction: the pool holds one connection, and
// preparing while a transaction holds it would wait forever.
func (s *Store) prepareWanted(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for q := range s.want {
		st, err := s.db.PrepareContext(ctx, q)
		if err != nil {
			continue // the statement runs unprepared; its error surfaces there
		}
		if s.stmts == nil {
			s.stmts = map[string]*sql.Stmt{}
		}
		s.stmts[q] = st
		delete(s.want, q)
	}
}

// stmt returns the prepared statement for a query run outside a
// transaction. It must not be called by a goroutine holding a transaction:
// preparing waits for the pool's one connection.
func (s *Store) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	s.mu.Lock()
	st := s.stmts[q]
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, q) // without s.mu: it may wait for a transaction
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.stmts[q]; old != nil {
		st.Close()
		return old, nil
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[q] = st
	return st, nil
}

// txExec runs statements of a transaction through the prepared cache.
type txExec struct {
	s  *Store
	tx *sql.Tx
}

func (e txExec) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	e.s.mu.Lock()
	st, ok := e.s.stmts[q]
	if !ok {
		if e.s.want == nil {
			e.s.want = map[string]bool{}
		}
		e.s.want[q] = true
	}
	e.s.mu.Unlock()
	if !ok {
		return e.tx.ExecContext(ctx, q, args...)
	}
	return e.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

var _ contract.History = (*Store)(nil)

// Open opens (creating if needed) the history database at path, migrating
// it to SchemaVersion. A database written by a newer mlpipe is refused
// (ErrNewerSchema) and left as it is.
func Open(path string) (*Store, error) {
	db, _, err := openDB(path, migrations)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// openDB opens the database at path and brings it to the newest version of
// steps; it returns how many version bumps it committed.
func openDB(path string, steps []migration) (*sql.DB, int, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, 0, fmt.Errorf("create state directory: %w", err)
	}
	// journal_mode is set once the database is known to be a run history
	// this binary can use: switching a newer or foreign database's journal
	// mode would modify it.
	dsn := "file:" + path + "?_pragma=busy_timeout(15000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, 0, fmt.Errorf("open run history %s: %w", path, err)
	}
	// One connection per process: SQLite serialises writers anyway, and
	// busy_timeout handles the other mlpipe processes.
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	n, err := migrate(ctx, db, path, steps)
	if err != nil {
		db.Close()
		return nil, 0, err
	}
	// WAL is a property of the file: it outlives this connection.
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode=WAL`); err != nil {
		db.Close()
		return nil, 0, fmt.Errorf("open run history %s: %w", path, err)
	}
	return db, n, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.mu.Unlock()
	return s.db.Close()
}

func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func js(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// CreateRun implements contract.History.
func (s *Store) CreateRun(ctx context.Context, r *contract.RunRecord) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO runs (id, pipeline, state, started_at, finished_at, params, source, ir_path, pipeline_root, executor, pid, host, error, outputs)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.Pipeline, string(r.State), ts(r.StartedAt), ts(r.FinishedAt), js(r.Params), r.Source, r.IRPath, r.PipelineRoot, r.Executor, r.PID, r.Host, r.Error, js(r.Outputs))
	if err != nil {
		return fmt.Errorf("record run %s: %w", r.ID, err)
	}
	return nil
}

// UpdateRun implements contract.History.
func (s *Store) UpdateRun(ctx context.Context, r *contract.RunRecord) error {
	_, err := s.db.ExecContext(ctx, `UPDATE runs SET pipeline=?, state=?, started_at=?, finished_at=?, params=?, source=?, ir_path=?, pipeline_root=?, executor=?, pid=?, host=?, error=?, outputs=? WHERE id=?`,
		r.Pipeline, string(r.State), ts(r.StartedAt), ts(r.FinishedAt), js(r.Params), r.Source, r.IRPath, r.PipelineRoot, r.Executor, r.PID, r.Host, r.Error, js(r.Outputs), r.ID)
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.ID, err)
	}
	return nil
}

const runCols = `id, pipeline, state, started_at, finished_at, params, source, ir_path, pipeline_root, executor, pid, host, error, outputs`

func scanRun(sc interface{ Scan(...any) error }) (*contract.RunRecord, error) {
	r := &contract.RunRecord{}
	var state string
	var started, finished int64
	var params, source, irPath, root, executor, host, errMsg, outputs sql.NullString
	var pid sql.NullInt64
	if err := sc.Scan(&r.ID, &r.Pipeline, &state, &started, &finished, &params, &source, &irPath, &root, &executor, &pid, &host, &errMsg, &outputs); err != nil {
		return nil, err
	}
	r.State = contract.State(state)
	r.StartedAt, r.FinishedAt = fromTS(started), fromTS(finished)
	rec := record{RunID: r.ID}
	if err := rec.decode("runs.params", params.String, &r.Params); err != nil {
		return nil, err
	}
	if err := rec.decode("runs.outputs", outputs.String, &r.Outputs); err != nil {
		return nil, err
	}
	r.Source, r.IRPath, r.PipelineRoot, r.Executor, r.Host, r.Error = source.String, irPath.String, root.String, executor.String, host.String, errMsg.String
	r.PID = int(pid.Int64)
	return r, nil
}

// Run implements contract.History.
func (s *Store) Run(ctx context.Context, id string) (*contract.RunRecord, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return r, err
}

// ResolveRun finds a run by id, unique id prefix, or "latest".
func (s *Store) ResolveRun(ctx context.Context, ref string) (*contract.RunRecord, error) {
	if ref == "latest" || ref == "last" {
		r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs ORDER BY started_at DESC LIMIT 1`))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("no runs yet: %w", ErrNotFound)
		}
		return r, err
	}
	if r, err := s.Run(ctx, ref); !errors.Is(err, ErrNotFound) {
		return r, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+runCols+` FROM runs WHERE id LIKE ? ESCAPE '\' ORDER BY started_at DESC LIMIT 3`,
		likePrefix(ref))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var found []*contract.RunRecord
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		found = append(found, r)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("run %s: %w", ref, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("run %s is ambiguous (%s, %s, ...)", ref, found[0].ID, found[1].ID)
}

// ListRuns returns the most recent runs first.
func (s *Store) ListRuns(ctx context.Context, limit int) ([]*contract.RunRecord, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+runCols+` FROM runs ORDER BY started_at DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*contract.RunRecord
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SaveTask implements contract.History: it upserts the task, its output
// artifacts and its lineage in one transaction.
func (s *Store) SaveTask(ctx context.Context, t *contract.TaskRecord) error {
	return s.SaveBatch(ctx, []*contract.TaskRecord{t}, nil)
}

// SaveBatch implements contract.BatchSaver: tasks and attempts in one
// transaction.
func (s *Store) SaveBatch(ctx context.Context, tasks []*contract.TaskRecord, attempts []*contract.AttemptRecord) error {
	s.prepareWanted(ctx)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ex := txExec{s, tx}
	for _, a := range attempts {
		if err := saveAttempt(ctx, ex, a); err != nil {
			return err
		}
	}
	for _, t := range tasks {
		if err := saveTask(ctx, ex, t); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func saveTask(ctx context.Context, tx execer, t *contract.TaskRecord) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO tasks (run_id, path, name, component, kind, state, attempts, started_at, finished_at, cache_key, cached_from, outputs, gpus, error, exit_code)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(run_id, path) DO UPDATE SET name=excluded.name, component=excluded.component, kind=excluded.kind, state=excluded.state,
			attempts=excluded.attempts,
			started_at=CASE WHEN excluded.started_at=0 THEN tasks.started_at ELSE excluded.started_at END,
			finished_at=excluded.finished_at, cache_key=excluded.cache_key,
			cached_from=excluded.cached_from, outputs=excluded.outputs, gpus=excluded.gpus, error=excluded.error, exit_code=excluded.exit_code`,
		t.RunID, t.Path, t.Name, t.Component, t.Kind, string(t.State), t.Attempts, ts(t.StartedAt), ts(t.FinishedAt), t.CacheKey, t.CachedFrom,
		js(t.Outputs), js(t.GPUs), t.Error, t.ExitCode)
	if err != nil {
		return fmt.Errorf("record task %s: %w", t.Path, err)
	}
	now := time.Now().UnixNano()
	if t.State == contract.Succeeded {
		for name, arts := range t.Outputs.Artifacts {
			for _, a := range arts {
				if _, err := tx.ExecContext(ctx, `INSERT INTO artifacts (uri, run_id, task_path, name, type, digest, size, dir, metadata, created_at)
					VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(uri) DO UPDATE SET run_id=excluded.run_id, task_path=excluded.task_path, name=excluded.name,
					type=excluded.type, digest=excluded.digest, size=excluded.size, dir=excluded.dir, metadata=excluded.metadata, created_at=excluded.created_at`,
					a.URI, t.RunID, t.Path, name, a.Type, a.Digest, a.Size, a.Dir, js(a.Metadata), now); err != nil {
					return fmt.Errorf("record artifact %s: %w", a.URI, err)
				}
				if err := lineage(ctx, tx, t.RunID, t.Path, "output", name, a); err != nil {
					return err
				}
			}
		}
	}
	if t.Attempt != nil {
		if err := saveAttempt(ctx, tx, t.Attempt); err != nil {
			return err
		}
	}
	if t.Cache != nil {
		if err := storeCache(ctx, tx, t.Cache); err != nil {
			return err
		}
	}
	if t.State.Final() && t.State != contract.Skipped {
		for name, arts := range t.Inputs {
			for _, a := range arts {
				if err := lineage(ctx, tx, t.RunID, t.Path, "input", name, a); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func lineage(ctx context.Context, tx execer, run, task, dir, name string, a contract.ArtifactRecord) error {
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO lineage (run_id, task_path, direction, name, uri, digest) VALUES (?,?,?,?,?,?)`,
		run, task, dir, name, a.URI, a.Digest)
	if err != nil {
		return fmt.Errorf("record lineage of %s: %w", task, err)
	}
	return nil
}

// Tasks implements contract.History.
func (s *Store) Tasks(ctx context.Context, runID string) ([]*contract.TaskRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT path, name, component, kind, state, attempts, started_at, finished_at, cache_key, cached_from, outputs, gpus, error, exit_code
		FROM tasks WHERE run_id=? ORDER BY started_at, path`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*contract.TaskRecord
	for rows.Next() {
		t := &contract.TaskRecord{RunID: runID}
		var name, comp, kind, cacheKey, cachedFrom, outputs, gpus, errMsg sql.NullString
		var state string
		var started, finished int64
		if err := rows.Scan(&t.Path, &name, &comp, &kind, &state, &t.Attempts, &started, &finished, &cacheKey, &cachedFrom, &outputs, &gpus, &errMsg, &t.ExitCode); err != nil {
			return nil, err
		}
		t.Name, t.Component, t.Kind, t.CacheKey, t.CachedFrom, t.Error = name.String, comp.String, kind.String, cacheKey.String, cachedFrom.String, errMsg.String
		t.State = contract.State(state)
		t.StartedAt, t.FinishedAt = fromTS(started), fromTS(finished)
		rec := record{RunID: runID, Task: t.Path}
		if err := rec.decode("tasks.outputs", outputs.String, &t.Outputs); err != nil {
			return nil, err
		}
		if err := rec.decode("tasks.gpus", gpus.String, &t.GPUs); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// SaveAttempt implements contract.History.
func (s *Store) SaveAttempt(ctx context.Context, a *contract.AttemptRecord) error {
	return saveAttempt(ctx, s.db, a)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func saveAttempt(ctx context.Context, db execer, a *contract.AttemptRecord) error {
	_, err := db.ExecContext(ctx, `INSERT OR REPLACE INTO attempts (run_id, task_path, attempt, started_at, finished_at, exit_code, oom_killed, error, executor, image, image_digest, gpus, phases, gpu_samples, log_path)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		a.RunID, a.TaskPath, a.Attempt, ts(a.StartedAt), ts(a.FinishedAt), a.ExitCode, a.OOMKilled, a.Error, a.Executor, a.Image, a.ImageDigest,
		js(a.GPUs), js(a.Phases), js(a.GPUSamples), a.LogPath)
	if err != nil {
		return fmt.Errorf("record attempt %d of %s: %w", a.Attempt, a.TaskPath, err)
	}
	return nil
}

// Attempts returns the attempts of a run's tasks (all tasks when path is
// empty), in order.
func (s *Store) Attempts(ctx context.Context, runID, path string) ([]*contract.AttemptRecord, error) {
	q := `SELECT task_path, attempt, started_at, finished_at, exit_code, oom_killed, error, executor, image, image_digest, gpus, phases, gpu_samples, log_path FROM attempts WHERE run_id=?`
	args := []any{runID}
	if path != "" {
		q += ` AND task_path=?`
		args = append(args, path)
	}
	q += ` ORDER BY started_at, task_path, attempt`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*contract.AttemptRecord
	for rows.Next() {
		a := &contract.AttemptRecord{RunID: runID}
		var started, finished sql.NullInt64
		var errMsg, executor, image, digest, gpus, phases, samples, logPath sql.NullString
		var oom sql.NullBool
		if err := rows.Scan(&a.TaskPath, &a.Attempt, &started, &finished, &a.ExitCode, &oom, &errMsg, &executor, &image, &digest, &gpus, &phases, &samples, &logPath); err != nil {
			return nil, err
		}
		a.StartedAt, a.FinishedAt = fromTS(started.Int64), fromTS(finished.Int64)
		a.OOMKilled = oom.Bool
		a.Error, a.Executor, a.Image, a.ImageDigest, a.LogPath = errMsg.String, executor.String, image.String, digest.String, logPath.String
		rec := record{RunID: runID, Task: a.TaskPath, Attempt: a.Attempt}
		if err := rec.decode("attempts.gpus", gpus.String, &a.GPUs); err != nil {
			return nil, err
		}
		if err := rec.decode("attempts.phases", phases.String, &a.Phases); err != nil {
			return nil, err
		}
		if err := rec.decode("attempts.gpu_samples", samples.String, &a.GPUSamples); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// LookupCache implements contract.History: nil, nil on a miss.
func (s *Store) LookupCache(ctx context.Context, key string) (*contract.CacheEntry, error) {
	e := &contract.CacheEntry{Key: key}
	var outputs string
	var created int64
	st, err := s.stmt(ctx, `SELECT run_id, task_path, outputs, created_at FROM cache WHERE key=?`)
	if err != nil {
		return nil, err
	}
	err = st.QueryRowContext(ctx, key).Scan(&e.RunID, &e.TaskPath, &outputs, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec := record{RunID: e.RunID, Task: e.TaskPath, CacheKey: key}
	if err := rec.decode("cache.outputs", outputs, &e.Outputs); err != nil {
		return nil, err
	}
	e.CreatedAt = fromTS(created)
	return e, nil
}

// StoreCache records a cache entry (the newest entry wins).
func (s *Store) StoreCache(ctx context.Context, e *contract.CacheEntry) error {
	return storeCache(ctx, s.db, e)
}

func storeCache(ctx context.Context, db execer, e *contract.CacheEntry) error {
	_, err := db.ExecContext(ctx, `INSERT OR REPLACE INTO cache (key, run_id, task_path, outputs, created_at) VALUES (?,?,?,?,?)`,
		e.Key, e.RunID, e.TaskPath, js(e.Outputs), ts(e.CreatedAt))
	return err
}

// Artifact is a stored artifact with its producer.
type Artifact struct {
	URI      string
	RunID    string
	TaskPath string
	Name     string
	Type     string
	Digest   string
	Size     int64
	Dir      bool
	Metadata map[string]any
}

// RunArtifacts lists the artifacts a run produced.
func (s *Store) RunArtifacts(ctx context.Context, runID string) ([]Artifact, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT uri, task_path, name, type, digest, size, dir, metadata FROM artifacts WHERE run_id=? ORDER BY task_path, name`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		a := Artifact{RunID: runID}
		var typ, digest, md sql.NullString
		if err := rows.Scan(&a.URI, &a.TaskPath, &a.Name, &typ, &digest, &a.Size, &a.Dir, &md); err != nil {
			return nil, err
		}
		a.Type, a.Digest = typ.String, digest.String
		rec := record{RunID: runID, Task: a.TaskPath, Artifact: a.URI}
		if err := rec.decode("artifacts.metadata", md.String, &a.Metadata); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Lineage returns the tasks that read (direction "input") or wrote
// ("output") an artifact.
func (s *Store) Lineage(ctx context.Context, uri string) ([][3]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT run_id, task_path, direction FROM lineage WHERE uri=? ORDER BY run_id, task_path`, uri)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][3]string
	for rows.Next() {
		var r [3]string
		if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// likePrefix is a LIKE pattern (ESCAPE '\') matching strings that start
// with p.
func likePrefix(p string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(p) + "%"
}

// Queries of RunDependents: the runs with tasks cached from a run, and the
// runs that read artifacts under a root. Prefixes are matched as ranges
// (prefix <= x < prefixEnd) so that the indexes tasks_cached_from and
// lineage_uri serve them.
const (
	qCachedFrom = `SELECT run_id FROM tasks WHERE cached_from >= ? AND cached_from < ? AND run_id != ?`
	qReadUnder  = `SELECT run_id FROM lineage WHERE uri >= ? AND uri < ? AND run_id != ?`
)

// prefixEnd is the least string greater than every string that starts with
// p, for a p that ends with "/".
func prefixEnd(p string) string {
	return strings.TrimSuffix(p, "/") + "0" // '0' follows '/'
}

// RunDependents lists the other runs that use a run's artifacts: runs with
// tasks cached from it, and runs whose tasks read artifacts under its root.
// Removing the run would leave their records pointing at nothing. Run ids
// and URIs are compared exactly (case included).
func (s *Store) RunDependents(ctx context.Context, runID, root string) ([]string, error) {
	p := runID + "/"
	q := qCachedFrom
	args := []any{p, prefixEnd(p), runID}
	if root != "" {
		p := strings.TrimSuffix(root, "/") + "/"
		q += ` UNION ` + qReadUnder
		args = append(args, p, prefixEnd(p), runID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY run_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("find runs using run %s: %w", runID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// DeleteRun removes a run and everything recorded about it, cache entries
// included (their artifacts go with the run).
func (s *Store) DeleteRun(ctx context.Context, runID string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM runs WHERE id=?`, `DELETE FROM tasks WHERE run_id=?`, `DELETE FROM attempts WHERE run_id=?`,
		`DELETE FROM artifacts WHERE run_id=?`, `DELETE FROM lineage WHERE run_id=?`, `DELETE FROM cache WHERE run_id=?`,
	} {
		if _, err := tx.ExecContext(ctx, q, runID); err != nil {
			return fmt.Errorf("delete run %s: %w", runID, err)
		}
	}
	return tx.Commit()
}

// DropCacheFor implements contract.CacheDropper: it removes the cache entries
// whose outputs hold uri, and returns how many.
func (s *Store) DropCacheFor(ctx context.Context, uri string) (int, error) {
	quoted, err := json.Marshal(uri) // as the outputs column holds it
	if err != nil {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM cache WHERE instr(outputs, ?) > 0`, string(quoted))
	if err != nil {
		return 0, fmt.Errorf("drop cache entries for %s: %w", uri, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
