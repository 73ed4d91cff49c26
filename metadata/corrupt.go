package metadata

import (
	"encoding/json"
	"fmt"
	"strings"
)

// CorruptError is a JSON column of the run history that does not decode.
// It names the record: the run, and the task, attempt, artifact or cache
// entry when the column is theirs.
type CorruptError struct {
	RunID    string
	Task     string // task path
	Attempt  int    // 0 when the column is not an attempt's
	Artifact string // artifact URI
	CacheKey string
	Column   string // table.column
	Err      error
}

func (e *CorruptError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run history: run %s", e.RunID)
	if e.Task != "" {
		fmt.Fprintf(&b, ", task %s", e.Task)
	}
	if e.Attempt != 0 {
		fmt.Fprintf(&b, ", attempt %d", e.Attempt)
	}
	if e.Artifact != "" {
		fmt.Fprintf(&b, ", artifact %s", e.Artifact)
	}
	if e.CacheKey != "" {
		fmt.Fprintf(&b, ", cache entry %s", e.CacheKey)
	}
	fmt.Fprintf(&b, ": %s is not valid JSON: %v", e.Column, e.Err)
	return b.String()
}

func (e *CorruptError) Unwrap() error { return e.Err }

// record names the row whose JSON columns are being decoded.
type record CorruptError

// decode decodes the JSON column column (table.column) of the record into
// v. An empty or NULL column leaves v as it is: it is not an error.
func (r record) decode(column, s string, v any) error {
	if s == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		e := CorruptError(r)
		e.Column, e.Err = column, err
		return &e
	}
	return nil
}
