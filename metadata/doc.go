// Package metadata is mlpipe's run history: runs, tasks, attempts (with
// phase timings and GPU samples), artifacts (URI, digest, size, metadata),
// lineage (which task read or wrote which artifact) and the cache index, in
// one SQLite database (modernc.org/sqlite: pure Go, no server) in WAL mode,
// safe for several mlpipe processes at once. Store implements the runner's
// History.
//
// The database's layout is versioned (PRAGMA user_version, SchemaVersion):
// Open migrates an older database forward (schema.go), creates a new one at
// the newest version, and refuses one written by a newer mlpipe. A JSON
// column that does not decode is a CorruptError naming its run, never an
// empty value.
package metadata
