// Package statedir names what lives in mlpipe's state directory, in one
// place for the engine and the commands:
//
//	<state dir>/mlpipe.db            the run history (SQLite)
//	<state dir>/artifacts/           the default (local) artifact store
//	<state dir>/runs/<run>/          a run: its IR, journal and task directories
package statedir

import "path/filepath"

// Layout is a state directory.
type Layout struct{ Root string }

// History is the run history database.
func (l Layout) History() string { return filepath.Join(l.Root, "mlpipe.db") }

// Artifacts is the root of the default artifact store.
func (l Layout) Artifacts() string { return filepath.Join(l.Root, "artifacts") }

// Runs holds one directory per run.
func (l Layout) Runs() string { return filepath.Join(l.Root, "runs") }

// Run is the directory of one run: pipeline.json (its IR), journal.gob
// while it runs, and its task directories.
func (l Layout) Run(runID string) string { return filepath.Join(l.Root, "runs", runID) }
