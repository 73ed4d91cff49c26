package kfptest

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// epoch is what the server reports for times not reached yet.
const epoch = "1970-01-01T00:00:00Z"

type pipeline struct {
	id, name, displayName, description, namespace string
	created                                       time.Time
}

type version struct {
	id, pipelineID, name, displayName, description string
	created                                        time.Time
	spec                                           map[string]any
}

type experiment struct {
	id, displayName, description, namespace string
	created, lastRun                        time.Time
}

type stateEntry struct {
	at    time.Time
	state string
}

type run struct {
	id, experimentID, displayName, description, serviceAccount string
	created, finished                                          time.Time
	spec                                                       any // the inline pipeline_spec as sent
	specDoc                                                    map[string]any
	pipelineID, versionID                                      string
	params                                                     map[string]any
	pipelineRoot                                               string
	script, original                                           []string
	pos                                                        int
	state                                                      string
	history                                                    []stateEntry
}

// newID is a deterministic UUID-shaped id that does not sort by creation,
// so a client that forgets sort_by notices.
func (s *Server) newID(kind string) string {
	s.seq++
	h := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", kind, s.seq)))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// now is the fake clock: one second further at each call.
func (s *Server) now() time.Time {
	s.clock = s.clock.Add(time.Second)
	return s.clock
}

func ts(t time.Time) string {
	if t.IsZero() {
		return epoch
	}
	return t.UTC().Format(time.RFC3339)
}

// put sets m[k] unless v is a zero value: the server omits them.
func put(m map[string]any, k string, v any) {
	switch x := v.(type) {
	case nil:
		return
	case string:
		if x == "" {
			return
		}
	case bool:
		if !x {
			return
		}
	case map[string]any:
		if len(x) == 0 {
			return
		}
	case []any:
		if len(x) == 0 {
			return
		}
	}
	m[k] = v
}

func (p *pipeline) json() map[string]any {
	m := map[string]any{"created_at": ts(p.created)}
	put(m, "pipeline_id", p.id)
	put(m, "name", p.name)
	put(m, "display_name", p.displayName)
	put(m, "description", p.description)
	put(m, "namespace", p.namespace)
	return m
}

func (v *version) json() map[string]any {
	m := map[string]any{"created_at": ts(v.created)}
	put(m, "pipeline_id", v.pipelineID)
	put(m, "pipeline_version_id", v.id)
	put(m, "name", v.name)
	put(m, "display_name", v.displayName)
	put(m, "description", v.description)
	put(m, "pipeline_spec", v.spec)
	return m
}

func (e *experiment) json() map[string]any {
	m := map[string]any{
		"created_at":          ts(e.created),
		"last_run_created_at": ts(e.lastRun),
		"storage_state":       "AVAILABLE",
	}
	put(m, "experiment_id", e.id)
	put(m, "display_name", e.displayName)
	put(m, "description", e.description)
	put(m, "namespace", e.namespace)
	return m
}

// setState moves a run to a state, recording the change.
func (s *Server) setState(r *run, st string) {
	if st == r.state {
		return
	}
	r.state = st
	if st != "" {
		r.history = append(r.history, stateEntry{at: s.now(), state: st})
	}
	switch st {
	case "SUCCEEDED", "FAILED", "SKIPPED", "CANCELED":
		r.finished = s.clock
	default:
		r.finished = time.Time{}
	}
}

// advance moves a run one step along its script (one GetRun).
func (s *Server) advance(r *run) {
	if r.pos < len(r.script) {
		s.setState(r, r.script[r.pos])
		r.pos++
	}
}

func (r *run) json(s *Server) map[string]any {
	m := map[string]any{
		"created_at":    ts(r.created),
		"scheduled_at":  ts(r.created),
		"finished_at":   ts(r.finished),
		"storage_state": "AVAILABLE",
		// Fields this client does not know, to prove it tolerates additions.
		"plugins_output": map[string]any{},
		"tags":           map[string]any{},
	}
	put(m, "run_id", r.id)
	put(m, "experiment_id", r.experimentID)
	put(m, "display_name", r.displayName)
	put(m, "description", r.description)
	put(m, "service_account", r.serviceAccount)
	put(m, "state", r.state)
	var hist []any
	for _, h := range r.history {
		hist = append(hist, map[string]any{"update_time": ts(h.at), "state": h.state})
	}
	put(m, "state_history", hist)
	rc := map[string]any{}
	put(rc, "parameters", r.params)
	put(rc, "pipeline_root", r.pipelineRoot)
	put(m, "runtime_config", rc)
	if r.spec != nil {
		m["pipeline_spec"] = r.spec
	} else {
		m["pipeline_version_reference"] = map[string]any{"pipeline_id": r.pipelineID, "pipeline_version_id": r.versionID}
	}
	if r.state != "" && r.state != "PENDING" {
		m["run_details"] = r.details(s)
	}
	return m
}

// details is an Argo-like live view: a DAG node, a driver, and one node per
// root task with a pod.
func (r *run) details(s *Server) map[string]any {
	root, _ := r.specDoc["root"].(map[string]any)
	dag, _ := root["dag"].(map[string]any)
	tasks, _ := dag["tasks"].(map[string]any)
	names := make([]string, 0, len(tasks))
	for n := range tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	wf := "run-" + r.id[:8]
	end := func(done bool) string {
		if done {
			return ts(r.finished)
		}
		return epoch
	}
	terminal := !r.finished.IsZero()
	nodes := []any{
		task(r, wf, wf, "", r.state, end(terminal), 0),
		task(r, wf+"-root-driver", "root-driver", wf, "SUCCEEDED", ts(r.created), 1),
	}
	for i, n := range names {
		st := ""
		switch r.state {
		case "RUNNING", "CANCELING":
			if i == 0 {
				st = "RUNNING"
			}
		case "SUCCEEDED":
			st = "SUCCEEDED"
		case "FAILED", "CANCELED":
			st = "SUCCEEDED"
			if i == len(names)-1 {
				st = "FAILED"
			}
		}
		done := st == "SUCCEEDED" || st == "FAILED"
		node := task(r, fmt.Sprintf("%s-%d", wf, i+2), n, wf, st, end(done), int64(100+i))
		node["child_tasks"] = []any{map[string]any{"pod_name": fmt.Sprintf("%s-system-container-impl-%d", wf, 1000+i)}}
		if st == "FAILED" {
			node["error"] = map[string]any{"code": 2, "message": "failed with exit code 1"}
		}
		nodes = append(nodes, node)
	}
	return map[string]any{
		"pipeline_context_id":     "17",
		"pipeline_run_context_id": strconv.Itoa(18 + s.seq%7),
		"task_details":            nodes,
	}
}

// task is one node of task_details. A node with no state has not started:
// its start_time is the epoch, like every unset time.
func task(r *run, id, name, parent, state, endTime string, exec int64) map[string]any {
	m := map[string]any{
		"run_id":      r.id,
		"task_id":     id,
		"create_time": ts(r.created),
		"start_time":  ts(r.created),
		"end_time":    endTime,
	}
	if state == "" {
		m["start_time"] = epoch
	}
	put(m, "display_name", name)
	put(m, "parent_task_id", parent)
	put(m, "state", state)
	if exec > 0 {
		m["execution_id"] = strconv.FormatInt(exec, 10)
	}
	return m
}
