package metadata

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mlpipe/mlpipe/runner"
)

var update = flag.Bool("update", false, "rewrite "+fixturePath+" (the release 1 fixture) before testing with it")

// fixturePath is a run history as the releases before schema versioning
// wrote it: release1Schema, user_version 0, the rows of fixture below.
// Regenerate it with
//
//	go test ./metadata -run TestMigrateFromVersion1 -update
//
// only to change what it holds: it stands for the databases users have.
const fixturePath = "testdata/history-v1.db"

// release1Schema is the schema the releases before versioning created
// (metadata/store.go up to commit 0b6d87f), verbatim.
const release1Schema = `
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

type lineageRow struct{ run, task, dir, name, uri, digest string }

// history is what a run history holds, as Store reads it back.
type history struct {
	runs      []*runner.RunRecord // most recent first
	tasks     []*runner.TaskRecord
	attempts  []*runner.AttemptRecord
	artifacts []Artifact
	lineage   []lineageRow
	cache     []*runner.CacheEntry
	nullTasks map[string]bool // run/path of tasks stored with NULL JSON columns
}

const (
	runA  = "20260301-100000-a1b2c3"
	runB  = "20260302-090000-d4e5f6"
	rootA = "/home/u/.mlpipe/artifacts/train/" + runA
	rootB = "/home/u/.mlpipe/artifacts/train/" + runB
)

// fixture is the content of fixturePath: run A trained a model (the train
// task OOM-killed once, then retried), run B took A's prepare from the
// cache and failed.
func fixture() history {
	t0 := time.Unix(1772359200, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	t1 := at(23 * 3600)
	data := runner.ArtifactRecord{URI: rootA + "/prepare/data", Type: "system.Dataset", Digest: "sha256:d1", Size: 2048, Metadata: map[string]any{"rows": 1000.0}}
	model := runner.ArtifactRecord{URI: rootA + "/train/model", Type: "system.Model", Digest: "sha256:d2", Size: 4096, Dir: true, Metadata: map[string]any{"framework": "torch"}}
	prepOut := runner.OutputsRecord{Parameters: map[string]any{"rows": 1000.0}, Artifacts: map[string][]runner.ArtifactRecord{"data": {data}}}
	trainOut := runner.OutputsRecord{Parameters: map[string]any{"accuracy": 0.93}, Artifacts: map[string][]runner.ArtifactRecord{"model": {model}}}
	gpu := "GPU-0a1b2c3d"
	sample := func(s, util float64) runner.GPUSample {
		return runner.GPUSample{Time: at(s), UUID: gpu, Util: util, MemUsed: 3 << 30, PowerWatts: 250.5, EnergyJ: 1000 * s}
	}
	return history{
		runs: []*runner.RunRecord{
			{ID: runB, Pipeline: "train", State: runner.Failed, StartedAt: t1, FinishedAt: t1.Add(30 * time.Second),
				Params: map[string]any{"epochs": 5.0, "lr": 0.01}, Source: "pipelines/train/pipeline.yaml", IRPath: "/home/u/.mlpipe/runs/" + runB + "/ir.json",
				PipelineRoot: rootB, Executor: "process", PID: 5151, Host: "ws1", Error: "task train failed: exit code 1"},
			{ID: runA, Pipeline: "train", State: runner.Succeeded, StartedAt: t0, FinishedAt: at(90),
				Params: map[string]any{"epochs": 3.0, "lr": 0.01}, Source: "pipelines/train/pipeline.yaml", IRPath: "/home/u/.mlpipe/runs/" + runA + "/ir.json",
				PipelineRoot: rootA, Executor: "docker", PID: 4242, Host: "ws1", Outputs: map[string]any{"accuracy": 0.93}},
		},
		tasks: []*runner.TaskRecord{
			{RunID: runA, Path: "prepare", Name: "prepare", Component: "comp-prepare", Kind: "container", State: runner.Succeeded, Attempts: 1,
				StartedAt: at(1), FinishedAt: at(11), CacheKey: "sha256:c1", Outputs: prepOut},
			{RunID: runA, Path: "train", Name: "train", Component: "comp-train", Kind: "container", State: runner.Succeeded, Attempts: 2,
				StartedAt: at(12), FinishedAt: at(88), CacheKey: "sha256:c2", Outputs: trainOut, GPUs: []string{gpu}},
			// report was skipped; its JSON columns are NULL.
			{RunID: runB, Path: "report", Name: "report", Component: "comp-report", Kind: "container", State: runner.Skipped},
			{RunID: runB, Path: "prepare", Name: "prepare", Component: "comp-prepare", Kind: "container", State: runner.Cached,
				StartedAt: t1.Add(time.Second), FinishedAt: t1.Add(time.Second), CacheKey: "sha256:c1", CachedFrom: runA + "/prepare", Outputs: prepOut},
			{RunID: runB, Path: "train", Name: "train", Component: "comp-train", Kind: "container", State: runner.Failed, Attempts: 1,
				StartedAt: t1.Add(2 * time.Second), FinishedAt: t1.Add(29 * time.Second), Error: "exit code 1", ExitCode: 1},
		},
		nullTasks: map[string]bool{runB + "/report": true},
		attempts: []*runner.AttemptRecord{
			{RunID: runA, TaskPath: "prepare", Attempt: 1, StartedAt: at(1), FinishedAt: at(11), Executor: "docker",
				Image: "mlpipe/prepare:latest", ImageDigest: "sha256:i1", LogPath: "/home/u/.mlpipe/runs/" + runA + "/prepare/attempt-1.log",
				Phases: []runner.Phase{{Name: "stage-in", Start: at(1), End: at(2)}, {Name: "execute", Start: at(2), End: at(10.5)}, {Name: "stage-out", Start: at(10.5), End: at(11)}}},
			{RunID: runA, TaskPath: "train", Attempt: 1, StartedAt: at(12), FinishedAt: at(40), ExitCode: 137, OOMKilled: true,
				Error: "killed: out of memory", Executor: "docker", Image: "mlpipe/train:latest", ImageDigest: "sha256:i2", GPUs: []string{gpu},
				Phases:     []runner.Phase{{Name: "execute", Start: at(12), End: at(40)}},
				GPUSamples: []runner.GPUSample{sample(20, 85), sample(30, 97.5)}, LogPath: "/home/u/.mlpipe/runs/" + runA + "/train/attempt-1.log"},
			{RunID: runA, TaskPath: "train", Attempt: 2, StartedAt: at(45), FinishedAt: at(88), Executor: "docker",
				Image: "mlpipe/train:latest", ImageDigest: "sha256:i2", GPUs: []string{gpu},
				Phases:     []runner.Phase{{Name: "execute", Start: at(45), End: at(87)}, {Name: "stage-out", Start: at(87), End: at(88)}},
				GPUSamples: []runner.GPUSample{sample(50, 60), sample(60, -1)}, LogPath: "/home/u/.mlpipe/runs/" + runA + "/train/attempt-2.log"},
			{RunID: runB, TaskPath: "train", Attempt: 1, StartedAt: t1.Add(2 * time.Second), FinishedAt: t1.Add(29 * time.Second), ExitCode: 1,
				Error: "exit code 1", Executor: "process", LogPath: "/home/u/.mlpipe/runs/" + runB + "/train/attempt-1.log",
				Phases: []runner.Phase{{Name: "execute", Start: t1.Add(2 * time.Second), End: t1.Add(29 * time.Second)}}},
		},
		artifacts: []Artifact{
			{URI: data.URI, RunID: runA, TaskPath: "prepare", Name: "data", Type: data.Type, Digest: data.Digest, Size: data.Size, Metadata: data.Metadata},
			{URI: model.URI, RunID: runA, TaskPath: "train", Name: "model", Type: model.Type, Digest: model.Digest, Size: model.Size, Dir: true, Metadata: model.Metadata},
		},
		lineage: []lineageRow{
			{runA, "prepare", "output", "data", data.URI, data.Digest},
			{runA, "train", "input", "data", data.URI, data.Digest},
			{runA, "train", "output", "model", model.URI, model.Digest},
			{runB, "train", "input", "data", data.URI, data.Digest},
		},
		cache: []*runner.CacheEntry{
			{Key: "sha256:c1", RunID: runA, TaskPath: "prepare", Outputs: prepOut, CreatedAt: at(11)},
			{Key: "sha256:c2", RunID: runA, TaskPath: "train", Outputs: trainOut, CreatedAt: at(88)},
		},
	}
}

// writeFixture writes h to a new database at path with release1Schema and
// the INSERTs of the releases before versioning (1 KiB pages, to keep the
// file small).
func writeFixture(t *testing.T, path string, h history) {
	t.Helper()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	db := rawDB(t, path)
	ctx := t.Context()
	run := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	run(`PRAGMA page_size=1024`)
	run(`PRAGMA journal_mode=WAL`)
	run(release1Schema)
	for _, r := range h.runs {
		run(`INSERT INTO runs (id, pipeline, state, started_at, finished_at, params, source, ir_path, pipeline_root, executor, pid, host, error, outputs)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			r.ID, r.Pipeline, string(r.State), ts(r.StartedAt), ts(r.FinishedAt), js(r.Params), r.Source, r.IRPath, r.PipelineRoot, r.Executor, r.PID, r.Host, r.Error, js(r.Outputs))
	}
	for _, tk := range h.tasks {
		var outputs, gpus any = js(tk.Outputs), js(tk.GPUs)
		if h.nullTasks[tk.RunID+"/"+tk.Path] {
			outputs, gpus = nil, nil
		}
		run(`INSERT INTO tasks (run_id, path, name, component, kind, state, attempts, started_at, finished_at, cache_key, cached_from, outputs, gpus, error, exit_code)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			tk.RunID, tk.Path, tk.Name, tk.Component, tk.Kind, string(tk.State), tk.Attempts, ts(tk.StartedAt), ts(tk.FinishedAt), tk.CacheKey, tk.CachedFrom,
			outputs, gpus, tk.Error, tk.ExitCode)
	}
	for _, a := range h.attempts {
		run(`INSERT OR REPLACE INTO attempts (run_id, task_path, attempt, started_at, finished_at, exit_code, oom_killed, error, executor, image, image_digest, gpus, phases, gpu_samples, log_path)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			a.RunID, a.TaskPath, a.Attempt, ts(a.StartedAt), ts(a.FinishedAt), a.ExitCode, a.OOMKilled, a.Error, a.Executor, a.Image, a.ImageDigest,
			js(a.GPUs), js(a.Phases), js(a.GPUSamples), a.LogPath)
	}
	for _, a := range h.artifacts {
		run(`INSERT INTO artifacts (uri, run_id, task_path, name, type, digest, size, dir, metadata, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)`,
			a.URI, a.RunID, a.TaskPath, a.Name, a.Type, a.Digest, a.Size, a.Dir, js(a.Metadata), ts(h.runs[1].FinishedAt))
	}
	for _, l := range h.lineage {
		run(`INSERT OR REPLACE INTO lineage (run_id, task_path, direction, name, uri, digest) VALUES (?,?,?,?,?,?)`, l.run, l.task, l.dir, l.name, l.uri, l.digest)
	}
	for _, e := range h.cache {
		run(`INSERT OR REPLACE INTO cache (key, run_id, task_path, outputs, created_at) VALUES (?,?,?,?,?)`, e.Key, e.RunID, e.TaskPath, js(e.Outputs), ts(e.CreatedAt))
	}
	run(`VACUUM`)
	run(`PRAGMA wal_checkpoint(TRUNCATE)`)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatalf("%s-wal left behind", path)
	}
}

// rawDB opens a database without Open's migrations.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(15000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func execRaw(t *testing.T, path string, qs ...string) {
	t.Helper()
	db := rawDB(t, path)
	for _, q := range qs {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyFixture copies the release 1 fixture into a temporary directory.
func copyFixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mlpipe.db")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func versionOf(t *testing.T, path string) int {
	t.Helper()
	db := rawDB(t, path)
	v, err := userVersion(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return v
}

// layout is a database's schema: every table and index with its SQL.
func layout(t *testing.T, path string) []string {
	t.Helper()
	db := rawDB(t, path)
	rows, err := db.QueryContext(t.Context(), `SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// checkHistory compares everything s holds with h.
func checkHistory(t *testing.T, s *Store, h history) {
	t.Helper()
	ctx := t.Context()
	runs, err := s.ListRuns(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h.runs, runs); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
	var tasks []*runner.TaskRecord
	var attempts []*runner.AttemptRecord
	var artifacts []Artifact
	for i := len(h.runs) - 1; i >= 0; i-- { // oldest first, as h lists them
		id := h.runs[i].ID
		if r, err := s.ResolveRun(ctx, id[:12]); err != nil || r.ID != id {
			t.Errorf("ResolveRun(%q) = %v, %v", id[:12], r, err)
		}
		tks, err := s.Tasks(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, tks...)
		as, err := s.Attempts(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, as...)
		arts, err := s.RunArtifacts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		artifacts = append(artifacts, arts...)
	}
	if diff := cmp.Diff(h.tasks, tasks); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(h.attempts, attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(h.artifacts, artifacts); diff != "" {
		t.Errorf("artifacts (-want +got):\n%s", diff)
	}
	uris := map[string][][3]string{}
	for _, l := range h.lineage {
		uris[l.uri] = append(uris[l.uri], [3]string{l.run, l.task, l.dir})
	}
	for uri, want := range uris {
		got, err := s.Lineage(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("lineage of %s (-want +got):\n%s", uri, diff)
		}
	}
	for _, want := range h.cache {
		got, err := s.LookupCache(ctx, want.Key)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cache entry %s (-want +got):\n%s", want.Key, diff)
		}
	}
}

// TestMigrateFromVersion1 opens copies of a database the releases before
// versioning wrote: every run, task, attempt, artifact, lineage row and
// cache entry is still there and readable, and the database is at the
// newest version and usable.
func TestMigrateFromVersion1(t *testing.T) {
	if *update {
		if err := os.MkdirAll(filepath.Dir(fixturePath), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFixture(t, fixturePath, fixture())
	}
	if v := versionOf(t, copyFixture(t)); v != 0 {
		t.Fatalf("the fixture is at version %d, want 0 (unversioned)", v)
	}
	for _, tc := range []struct {
		name   string
		before []string // raw SQL on the copy before Open
		steps  int      // version bumps Open commits
	}{
		{name: "unversioned, as the releases before versioning left it", steps: 2},
		{name: "stamped version 1", before: []string{`PRAGMA user_version = 1`}, steps: 1},
		{name: "unversioned, indexes missing (its first open was interrupted)",
			before: []string{`DROP INDEX lineage_uri`, `DROP INDEX cache_run`}, steps: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := copyFixture(t)
			execRaw(t, path, tc.before...)
			db, n, err := openDB(path, migrations)
			if err != nil {
				t.Fatal(err)
			}
			s := &Store{db: db}
			defer s.Close()
			if n != tc.steps {
				t.Errorf("Open committed %d version bumps, want %d", n, tc.steps)
			}
			if v := versionOf(t, path); v != SchemaVersion {
				t.Errorf("version after Open = %d, want %d", v, SchemaVersion)
			}
			checkHistory(t, s, fixture())

			// The migrated history takes new runs, and the new index
			// answers runs rm's question.
			ctx := t.Context()
			if err := s.CreateRun(ctx, &runner.RunRecord{ID: "20260303-080000-777777", Pipeline: "train", State: runner.Running, StartedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveTask(ctx, &runner.TaskRecord{RunID: "20260303-080000-777777", Path: "train", State: runner.Cached, CachedFrom: runA + "/train"}); err != nil {
				t.Fatal(err)
			}
			deps, err := s.RunDependents(ctx, runA, rootA)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{runB, "20260303-080000-777777"}, deps); diff != "" {
				t.Errorf("dependents of %s (-want +got):\n%s", runA, diff)
			}
		})
	}
}

// TestFreshLayoutMatchesMigrated: an empty database is created at the
// newest version with the layout the migrations give an old one.
func TestFreshLayoutMatchesMigrated(t *testing.T) {
	_, fresh := open(t)
	old := copyFixture(t)
	s, err := Open(old)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if v := versionOf(t, fresh); v != SchemaVersion {
		t.Errorf("fresh database at version %d, want %d", v, SchemaVersion)
	}
	if diff := cmp.Diff(layout(t, old), layout(t, fresh)); diff != "" {
		t.Errorf("layout (-migrated +fresh):\n%s", diff)
	}
}

// TestMigrationList checks the invariants of the migration list.
func TestMigrationList(t *testing.T) {
	if schemaV1 != release1Schema {
		t.Error("schemaV1 changed: it is the layout users have, frozen; add a migration instead")
	}
	for i, m := range migrations {
		if m.to != i+2 || m.what == "" || m.up == nil {
			t.Errorf("migrations[%d] = {to: %d, what: %q}: want to = %d, a description and a step", i, m.to, m.what, i+2)
		}
	}
	if SchemaVersion != newest(migrations) {
		t.Errorf("SchemaVersion = %d, the migrations reach %d", SchemaVersion, newest(migrations))
	}
	// v1Columns are schemaV1's columns.
	path := filepath.Join(t.TempDir(), "v1.db")
	execRaw(t, path, schemaV1)
	db := rawDB(t, path)
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	got := map[string][]string{}
	for table := range v1Columns {
		if got[table], err = columns(t.Context(), tx, table); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(v1Columns, got); diff != "" {
		t.Errorf("v1Columns (-listed +schemaV1):\n%s", diff)
	}
}

// TestOpenUnversioned: a database with user_version 0 is created, taken
// for version 1 when its tables have version 1's columns, or refused and
// left as it is.
func TestOpenUnversioned(t *testing.T) {
	var withoutCachedFrom []string
	for _, q := range strings.Split(release1Schema, ";") {
		withoutCachedFrom = append(withoutCachedFrom, strings.Replace(q, "cache_key TEXT, cached_from TEXT,", "cache_key TEXT,", 1))
	}
	for _, tc := range []struct {
		name    string
		setup   []string
		wantErr string // "" to open
	}{
		{name: "empty file"},
		{name: "release 1 layout without data", setup: []string{release1Schema}},
		{name: "only some release 1 tables", setup: []string{`CREATE TABLE runs (id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, state TEXT NOT NULL,
			started_at INTEGER NOT NULL, finished_at INTEGER NOT NULL DEFAULT 0, params TEXT, source TEXT, ir_path TEXT, pipeline_root TEXT, executor TEXT,
			pid INTEGER, host TEXT, error TEXT, outputs TEXT)`}},
		{name: "a column missing", setup: []string{strings.Join(withoutCachedFrom, ";")},
			wantErr: "has a layout no mlpipe release wrote: table tasks lacks column cached_from"},
		{name: "another program's database", setup: []string{`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)`, `CREATE TABLE tags (name TEXT)`},
			wantErr: "is not an mlpipe run history (its tables are notes, tags)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mlpipe.db")
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			execRaw(t, path, tc.setup...)
			before := layout(t, path)
			s, err := Open(path)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				if v := versionOf(t, path); v != SchemaVersion {
					t.Errorf("version %d, want %d", v, SchemaVersion)
				}
				// The tables and indexes of a fresh database (the tables'
				// SQL is theirs).
				names := func(path string) (out []string) {
					for _, s := range layout(t, path) {
						name, _, _ := strings.Cut(s, ":")
						out = append(out, name)
					}
					return out
				}
				_, fresh := open(t)
				if diff := cmp.Diff(names(fresh), names(path)); diff != "" {
					t.Errorf("tables and indexes (-fresh +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want the path and %q", err, tc.wantErr)
			}
			if v := versionOf(t, path); v != 0 {
				t.Errorf("refused database stamped version %d", v)
			}
			if diff := cmp.Diff(before, layout(t, path)); diff != "" {
				t.Errorf("refused database changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestRefuseNewerSchema: a database from a newer mlpipe is refused with an
// error that says what to do, and not modified at all.
func TestRefuseNewerSchema(t *testing.T) {
	_, path := open(t)
	newer := SchemaVersion + 1
	// A newer mlpipe might not use WAL: switching it would be a change.
	execRaw(t, path, `PRAGMA journal_mode=DELETE`, fmt.Sprintf(`PRAGMA user_version = %d`, newer))
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("a newer database opened")
	}
	want := fmt.Sprintf("the run history at %s was written by a newer mlpipe (schema %d, this one knows up to %d): upgrade mlpipe", path, newer, SchemaVersion)
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	if !errors.Is(err, ErrNewerSchema) {
		t.Errorf("%v is not ErrNewerSchema", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("Open modified a newer database")
	}
	for _, suffix := range []string{"-wal", "-journal"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("Open left %s%s", path, suffix)
		}
	}
}

// TestConcurrentMigration: several mlpipe processes opening one old (or
// new) database at once all succeed, and each migration step runs once.
func TestConcurrentMigration(t *testing.T) {
	if path := os.Getenv("MLPIPE_TEST_MIGRATE_DB"); path != "" {
		migrateChild(t, path)
		return
	}
	for _, tc := range []struct {
		name      string
		fixture   bool
		wantSteps int
	}{
		{name: "empty database", wantSteps: 1},
		{name: "release 1 database", fixture: true, wantSteps: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mlpipe.db")
			if tc.fixture {
				path = copyFixture(t)
			}
			at := strconv.FormatInt(time.Now().Add(time.Second).UnixNano(), 10)
			const procs = 4
			var cmds []*exec.Cmd
			var outs []*bytes.Buffer
			for range procs {
				cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentMigration$", "-test.v")
				cmd.Env = append(os.Environ(), "MLPIPE_TEST_MIGRATE_DB="+path, "MLPIPE_TEST_MIGRATE_AT="+at)
				out := &bytes.Buffer{}
				cmd.Stdout, cmd.Stderr = out, out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds, outs = append(cmds, cmd), append(outs, out)
			}
			steps := 0
			for i, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Errorf("process %d: %v\n%s", i, err, outs[i])
					continue
				}
				_, n, ok := strings.Cut(outs[i].String(), "migrate-steps ")
				n, _, _ = strings.Cut(n, "\n")
				k, err := strconv.Atoi(n)
				if !ok || err != nil {
					t.Errorf("process %d said:\n%s", i, outs[i])
				}
				steps += k
			}
			if steps != tc.wantSteps {
				t.Errorf("%d processes committed %d version bumps together, want %d", procs, steps, tc.wantSteps)
			}
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if v := versionOf(t, path); v != SchemaVersion {
				t.Errorf("version %d, want %d", v, SchemaVersion)
			}
			if tc.fixture {
				checkHistory(t, s, fixture())
			}
		})
	}
}

// migrateChild is one of TestConcurrentMigration's processes: at the agreed
// time, it opens the database with slowed down migrations and says how many
// version bumps it committed.
func migrateChild(t *testing.T, path string) {
	at, err := strconv.ParseInt(os.Getenv("MLPIPE_TEST_MIGRATE_AT"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Unix(0, at)))
	var slow []migration
	for _, m := range migrations {
		up := m.up
		m.up = func(ctx context.Context, tx *sql.Tx) error {
			time.Sleep(200 * time.Millisecond) // others wait meanwhile
			return up(ctx, tx)
		}
		slow = append(slow, m)
	}
	db, n, err := openDB(path, slow)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	fmt.Printf("migrate-steps %d\n", n)
}

// TestCorruptJSONColumnIsAnError: a JSON column that does not decode makes
// the reads of its record fail with an error naming the record; NULL and
// empty columns read as empty values.
func TestCorruptJSONColumnIsAnError(t *testing.T) {
	reads := map[string]func(ctx context.Context, s *Store) error{
		"Run":          func(ctx context.Context, s *Store) error { _, err := s.Run(ctx, "r1"); return err },
		"ResolveRun":   func(ctx context.Context, s *Store) error { _, err := s.ResolveRun(ctx, "r1"); return err },
		"latest":       func(ctx context.Context, s *Store) error { _, err := s.ResolveRun(ctx, "latest"); return err },
		"ListRuns":     func(ctx context.Context, s *Store) error { _, err := s.ListRuns(ctx, 0); return err },
		"Tasks":        func(ctx context.Context, s *Store) error { _, err := s.Tasks(ctx, "r1"); return err },
		"Attempts":     func(ctx context.Context, s *Store) error { _, err := s.Attempts(ctx, "r1", ""); return err },
		"RunArtifacts": func(ctx context.Context, s *Store) error { _, err := s.RunArtifacts(ctx, "r1"); return err },
		"LookupCache":  func(ctx context.Context, s *Store) error { _, err := s.LookupCache(ctx, "k1"); return err },
	}
	runReads := []string{"Run", "ResolveRun", "latest", "ListRuns"}
	for _, tc := range []struct {
		name   string
		update []string
		fail   []string      // the reads that must fail
		want   *CorruptError // Err aside; nil: every read succeeds
	}{
		{name: "runs.params", update: []string{`UPDATE runs SET params='{"n":' WHERE id='r1'`}, fail: runReads,
			want: &CorruptError{RunID: "r1", Column: "runs.params"}},
		{name: "runs.outputs", update: []string{`UPDATE runs SET outputs='[1,2]' WHERE id='r1'`}, fail: runReads,
			want: &CorruptError{RunID: "r1", Column: "runs.outputs"}},
		{name: "tasks.outputs", update: []string{`UPDATE tasks SET outputs='{"parameters":' WHERE path='make'`}, fail: []string{"Tasks"},
			want: &CorruptError{RunID: "r1", Task: "make", Column: "tasks.outputs"}},
		{name: "tasks.gpus", update: []string{`UPDATE tasks SET gpus='"GPU-1"' WHERE path='make'`}, fail: []string{"Tasks"},
			want: &CorruptError{RunID: "r1", Task: "make", Column: "tasks.gpus"}},
		{name: "attempts.gpus", update: []string{`UPDATE attempts SET gpus='[1' WHERE attempt=2`}, fail: []string{"Attempts"},
			want: &CorruptError{RunID: "r1", Task: "make", Attempt: 2, Column: "attempts.gpus"}},
		{name: "attempts.phases", update: []string{`UPDATE attempts SET phases='{}' WHERE attempt=2`}, fail: []string{"Attempts"},
			want: &CorruptError{RunID: "r1", Task: "make", Attempt: 2, Column: "attempts.phases"}},
		{name: "attempts.gpu_samples", update: []string{`UPDATE attempts SET gpu_samples='[{"t":"yesterday"}]' WHERE attempt=2`}, fail: []string{"Attempts"},
			want: &CorruptError{RunID: "r1", Task: "make", Attempt: 2, Column: "attempts.gpu_samples"}},
		{name: "artifacts.metadata", update: []string{`UPDATE artifacts SET metadata='not json'`}, fail: []string{"RunArtifacts"},
			want: &CorruptError{RunID: "r1", Task: "make", Artifact: "/a/data", Column: "artifacts.metadata"}},
		{name: "cache.outputs", update: []string{`UPDATE cache SET outputs='{"artifacts":{"data":{}}}'`}, fail: []string{"LookupCache"},
			want: &CorruptError{RunID: "r1", Task: "make", CacheKey: "k1", Column: "cache.outputs"}},
		{name: "NULL columns", update: []string{
			`UPDATE runs SET params=NULL, outputs=NULL`, `UPDATE tasks SET outputs=NULL, gpus=NULL`,
			`UPDATE attempts SET gpus=NULL, phases=NULL, gpu_samples=NULL`, `UPDATE artifacts SET metadata=NULL`}},
		{name: "empty columns", update: []string{
			`UPDATE runs SET params='', outputs=''`, `UPDATE tasks SET outputs='', gpus=''`,
			`UPDATE attempts SET gpus='', phases='', gpu_samples=''`, `UPDATE artifacts SET metadata=''`, `UPDATE cache SET outputs=''`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t)
			ctx := t.Context()
			seed(t, s)
			for _, q := range tc.update {
				if _, err := s.db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			for name, read := range reads {
				err := read(ctx, s)
				mustFail := tc.want != nil && slices.Contains(tc.fail, name)
				if !mustFail {
					if err != nil {
						t.Errorf("%s: %v", name, err)
					}
					continue
				}
				var got *CorruptError
				if !errors.As(err, &got) {
					t.Errorf("%s = %v, want a CorruptError", name, err)
					continue
				}
				if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(CorruptError{}, "Err")); diff != "" {
					t.Errorf("%s error (-want +got):\n%s", name, diff)
				}
				if got.Err == nil || !strings.Contains(err.Error(), "run r1") || !strings.Contains(err.Error(), tc.want.Column) {
					t.Errorf("%s error %q does not name run r1 and %s with the cause", name, err, tc.want.Column)
				}
			}
		})
	}
}

// seed records run r1 with a task (two attempts), an artifact and a cache
// entry.
func seed(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	t0 := time.Unix(1700000000, 0)
	if err := s.CreateRun(ctx, &runner.RunRecord{ID: "r1", Pipeline: "p", State: runner.Succeeded, StartedAt: t0,
		Params: map[string]any{"n": 1.0}, Outputs: map[string]any{"acc": 0.5}}); err != nil {
		t.Fatal(err)
	}
	art := runner.ArtifactRecord{URI: "/a/data", Digest: "sha256:ab", Metadata: map[string]any{"rows": 5.0}}
	out := runner.OutputsRecord{Parameters: map[string]any{"n": 1.0}, Artifacts: map[string][]runner.ArtifactRecord{"data": {art}}}
	first := &runner.AttemptRecord{RunID: "r1", TaskPath: "make", Attempt: 1, StartedAt: t0, ExitCode: 1, GPUs: []string{"GPU-1"},
		Phases: []runner.Phase{{Name: "execute", Start: t0, End: t0.Add(time.Second)}}}
	task := &runner.TaskRecord{RunID: "r1", Path: "make", Name: "make", State: runner.Succeeded, Attempts: 2, StartedAt: t0, Outputs: out, GPUs: []string{"GPU-1"},
		Attempt: &runner.AttemptRecord{RunID: "r1", TaskPath: "make", Attempt: 2, StartedAt: t0.Add(time.Second), GPUs: []string{"GPU-1"},
			Phases:     []runner.Phase{{Name: "execute", Start: t0.Add(time.Second), End: t0.Add(2 * time.Second)}},
			GPUSamples: []runner.GPUSample{{Time: t0.Add(time.Second), UUID: "GPU-1", Util: 50}}},
		Cache: &runner.CacheEntry{Key: "k1", RunID: "r1", TaskPath: "make", Outputs: out, CreatedAt: t0}}
	if err := s.SaveBatch(ctx, []*runner.TaskRecord{task}, []*runner.AttemptRecord{first}); err != nil {
		t.Fatal(err)
	}
}

// TestDependentsUseIndexes: the queries of RunDependents search the
// indexes (version 2's tasks_cached_from, and lineage_uri) instead of
// scanning tasks and lineage.
func TestDependentsUseIndexes(t *testing.T) {
	s, _ := open(t)
	for _, tc := range []struct {
		q    string
		want string
	}{
		{qCachedFrom, "SEARCH tasks USING INDEX tasks_cached_from (cached_from>? AND cached_from<?)"},
		{qReadUnder, "SEARCH lineage USING INDEX lineage_uri (uri>? AND uri<?)"},
	} {
		rows, err := s.db.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+tc.q, "r1/", prefixEnd("r1/"), "r1")
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if diff := cmp.Diff([]string{tc.want}, plan); diff != "" {
			t.Errorf("plan of %s (-want +got):\n%s", tc.q, diff)
		}
	}
}
