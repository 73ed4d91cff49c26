// Package metadata is mlpipe's run history: runs, tasks, attempts (with
// phase timings and GPU samples), artifacts (URI, digest, size, metadata),
// lineage (which task read or wrote which artifact) and the cache index, in
// one SQLite database (modernc.org/sqlite: pure Go, no server) in WAL mode,
// safe for several mlpipe processes at once. Store implements the runner's
// History.
package metadata
