// Package statedir names what lives in mlpipe's state directory, in one
// place for the engine and the commands:
//
//	<state dir>/mlpipe.db            the run history (SQLite)
//	<state dir>/artifacts/           the default (local) artifact store
//	<state dir>/runs/<run>/          a run: its IR, journal and task directories
//	<state dir>/keys/checksum.key    seals S3 checksums to sha256 digests (0600)
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

// ChecksumKey is the key that seals the S3 checksums of this state
// directory's uploads to their sha256 (storage.MinIOOptions.ChecksumKey).
func (l Layout) ChecksumKey() string { return filepath.Join(l.Root, "keys", "checksum.key") }
