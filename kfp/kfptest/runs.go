package kfptest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// experimentRequest is the bare Experiment a client may send.
type experimentRequest struct {
	DisplayName string `json:"display_name"`
	Description string `json:"description"`
	Namespace   string `json:"namespace"`
}

// runRequest is the bare Run a client may send. Server-owned fields
// (run_id, state, created_at, ...) are deliberately absent, so sending one
// is an unknown-field error.
type runRequest struct {
	DisplayName              string          `json:"display_name"`
	Description              string          `json:"description"`
	ExperimentID             string          `json:"experiment_id"`
	PipelineSpec             any             `json:"pipeline_spec"`
	PipelineVersionReference *versionRef     `json:"pipeline_version_reference"`
	PipelineVersionID        string          `json:"pipeline_version_id"`
	RuntimeConfig            *runtimeConfig  `json:"runtime_config"`
	ServiceAccount           string          `json:"service_account"`
	PluginsOutput            json.RawMessage `json:"plugins_output"`
}

type versionRef struct {
	PipelineID        string `json:"pipeline_id"`
	PipelineVersionID string `json:"pipeline_version_id"`
}

type runtimeConfig struct {
	Parameters   map[string]any `json:"parameters"`
	PipelineRoot string         `json:"pipeline_root"`
}

// AddExperiment stores an experiment without the uniqueness check (to
// stage duplicates) and returns its id.
func (s *Server) AddExperiment(name, namespace string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &experiment{id: s.newID("experiment"), displayName: name, namespace: namespace, created: s.now()}
	s.experiments = append(s.experiments, e)
	return e.id
}

func (s *Server) createExperiment(w http.ResponseWriter, r *http.Request) {
	var req experimentRequest
	if !s.decode(w, r, &req) {
		return
	}
	if req.DisplayName == "" {
		s.internal(w, "Failed to create experiment: Invalid input error: Experiment name is empty. Please specify a valid experiment name")
		return
	}
	if !s.opts.MultiUser {
		req.Namespace = ""
	}
	if s.opts.MultiUser && req.Namespace == "" {
		s.badRequest(w, "An experiment cannot have an empty namespace in multi-user mode")
		return
	}
	if !s.allowed(req.Namespace) {
		s.forbidden(w, "create", "experiments", req.Namespace)
		return
	}
	for _, e := range s.experiments {
		if e.displayName == req.DisplayName && e.namespace == req.Namespace {
			msg := fmt.Sprintf("Failed to create a new experiment. The name %q already exists. Please specify a new name", req.DisplayName)
			s.rpcError(w, http.StatusConflict, 6, msg, "AlreadyExistsError: "+msg)
			return
		}
	}
	e := &experiment{id: s.newID("experiment"), displayName: req.DisplayName, description: req.Description,
		namespace: req.Namespace, created: s.now()}
	s.experiments = append(s.experiments, e)
	writeJSON(w, e.json())
}

func (s *Server) findExperiment(id string) *experiment {
	for _, e := range s.experiments {
		if e.id == id {
			return e
		}
	}
	return nil
}

func (s *Server) listExperiments(w http.ResponseWriter, r *http.Request) {
	if !s.checkQuery(w, r, "namespace", "page_token", "page_size", "sort_by", "filter") {
		return
	}
	ns := ""
	if s.opts.MultiUser {
		ns = r.URL.Query().Get("namespace")
		if ns == "" {
			s.badRequest(w, "Invalid resource references for experiment. ListExperiment requires filtering by namespace")
			return
		}
		if !s.allowed(ns) {
			s.forbidden(w, "list", "experiments", ns)
			return
		}
	}
	var items []item
	for _, e := range s.experiments {
		if s.opts.MultiUser && e.namespace != ns {
			continue
		}
		items = append(items, item{id: e.id, created: e.created, json: e.json(), fields: map[string]string{
			"experiment_id": e.id, "display_name": e.displayName, "description": e.description,
			"namespace": e.namespace, "storage_state": "AVAILABLE", "created_at": ts(e.created),
			"last_run_created_at": ts(e.lastRun),
		}})
	}
	s.page(w, r, items, []string{"experiment_id", "display_name", "created_at", "last_run_created_at",
		"description", "namespace", "storage_state"}, "experiments")
}

func (s *Server) getExperiment(w http.ResponseWriter, r *http.Request, id string) {
	e := s.findExperiment(id)
	if e == nil {
		s.notFound(w, "Experiment", id)
		return
	}
	if !s.allowed(e.namespace) {
		s.forbidden(w, "get", "experiments", e.namespace)
		return
	}
	writeJSON(w, e.json())
}

// defaultExperiment is the single-user server's "Default" experiment,
// created on demand.
func (s *Server) defaultExperiment() *experiment {
	for _, e := range s.experiments {
		if e.displayName == "Default" && e.namespace == "" {
			return e
		}
	}
	e := &experiment{id: s.newID("experiment"), displayName: "Default", description: "All runs created without specifying an experiment will be grouped here.", created: s.now()}
	s.experiments = append(s.experiments, e)
	return e
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) {
	var req runRequest
	if !s.decode(w, r, &req) {
		return
	}
	if len(req.PluginsOutput) > 0 {
		s.badRequest(w, "plugins_output is an output-only field")
		return
	}
	if req.DisplayName == "" {
		s.internal(w, "Failed to create a run due to error converting it: Invalid input error: The run name is empty. Please specify a valid name")
		return
	}
	inline := req.PipelineSpec != nil
	ref := req.PipelineVersionReference != nil && req.PipelineVersionReference.PipelineID != ""
	switch {
	case inline && (ref || req.PipelineVersionID != ""):
		s.rpcError(w, http.StatusBadRequest, 3, "", "proto: oneof pipeline_source is already set")
		return
	case !inline && !ref:
		s.badRequest(w, "Failed to create a run: a pipeline spec or a pipeline version reference is required")
		return
	}
	var exp *experiment
	switch {
	case req.ExperimentID != "":
		if exp = s.findExperiment(req.ExperimentID); exp == nil {
			s.notFound(w, "Experiment", req.ExperimentID)
			return
		}
	case s.opts.MultiUser:
		s.badRequest(w, "Experiment id can not be empty in multi-user mode")
		return
	default:
		exp = s.defaultExperiment()
	}
	if !s.allowed(exp.namespace) {
		s.forbidden(w, "create", "runs", exp.namespace)
		return
	}
	rn := &run{id: s.newID("run"), experimentID: exp.id, displayName: req.DisplayName,
		description: req.Description, serviceAccount: req.ServiceAccount}
	if rn.serviceAccount == "" {
		rn.serviceAccount = "pipeline-runner"
		if s.opts.MultiUser {
			rn.serviceAccount = "default-editor"
		}
	}
	if inline {
		doc, err := unwrapSpec(req.PipelineSpec)
		if err == nil {
			err = checkSpec(doc, false)
		}
		if err != nil {
			s.internal(w, "Failed to create a run due to error fetching manifest: "+err.Error())
			return
		}
		rn.spec, rn.specDoc = req.PipelineSpec, doc
	} else {
		p := s.findPipeline(req.PipelineVersionReference.PipelineID)
		if p == nil {
			s.notFound(w, "Pipeline", req.PipelineVersionReference.PipelineID)
			return
		}
		var v *version
		if vid := req.PipelineVersionReference.PipelineVersionID; vid != "" {
			for _, c := range s.versions {
				if c.id == vid {
					v = c
				}
			}
			if v == nil || v.pipelineID != p.id {
				s.badRequest(w, "pipeline version %s does not belong to pipeline %s", vid, p.id)
				return
			}
		} else if v = s.latestVersion(p.id); v == nil {
			s.badRequest(w, "pipeline %s has no version", p.id)
			return
		}
		rn.pipelineID, rn.versionID, rn.specDoc = p.id, v.id, v.spec
	}
	if req.RuntimeConfig != nil {
		rn.params, rn.pipelineRoot = req.RuntimeConfig.Parameters, req.RuntimeConfig.PipelineRoot
	}
	if err := checkParams(rn.specDoc, rn.params); err != nil {
		s.badRequest(w, "%v", err)
		return
	}
	rn.script = s.opts.RunScript
	if len(s.scripts) > 0 {
		if len(s.scripts[0]) > 0 {
			rn.script = s.scripts[0]
		}
		s.scripts = s.scripts[1:]
	}
	rn.original = rn.script
	rn.created = s.now()
	exp.lastRun = rn.created
	s.setState(rn, rn.script[0])
	rn.pos = 1
	s.runs = append(s.runs, rn)
	writeJSON(w, rn.json(s))
}

func (s *Server) findRun(w http.ResponseWriter, id string) *run {
	for _, rn := range s.runs {
		if rn.id == id {
			if e := s.findExperiment(rn.experimentID); e != nil && !s.allowed(e.namespace) {
				s.forbidden(w, "get", "runs", e.namespace)
				return nil
			}
			return rn
		}
	}
	s.notFound(w, "Run", id)
	return nil
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request, id string) {
	if !s.checkQuery(w, r) {
		return
	}
	rn := s.findRun(w, id)
	if rn == nil {
		return
	}
	s.advance(rn)
	writeJSON(w, rn.json(s))
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	if !s.checkQuery(w, r, "namespace", "experiment_id", "page_token", "page_size", "sort_by", "filter") {
		return
	}
	q := r.URL.Query()
	expID, ns := q.Get("experiment_id"), q.Get("namespace")
	if expID != "" {
		e := s.findExperiment(expID)
		if e == nil {
			s.notFound(w, "Experiment", expID)
			return
		}
		ns = e.namespace
	}
	if s.opts.MultiUser && ns == "" && expID == "" {
		s.badRequest(w, "A run cannot have an empty namespace in multi-user mode")
		return
	}
	if !s.allowed(ns) {
		s.forbidden(w, "list", "runs", ns)
		return
	}
	var items []item
	for _, rn := range s.runs {
		e := s.findExperiment(rn.experimentID)
		if (expID != "" && rn.experimentID != expID) || (s.opts.MultiUser && e.namespace != ns) {
			continue
		}
		items = append(items, item{id: rn.id, created: rn.created, json: rn.json(s), fields: map[string]string{
			"run_id": rn.id, "display_name": rn.displayName, "experiment_id": rn.experimentID,
			"namespace": e.namespace, "state": rn.state, "storage_state": "AVAILABLE",
			"created_at": ts(rn.created), "finished_at": ts(rn.finished), "scheduled_at": ts(rn.created),
			"recurring_run_id": "",
		}})
	}
	s.page(w, r, items, []string{"run_id", "display_name", "created_at", "finished_at", "scheduled_at",
		"storage_state", "state", "experiment_id", "namespace", "recurring_run_id"}, "runs")
}

func (s *Server) terminateRun(w http.ResponseWriter, r *http.Request, id string) {
	if !s.checkQuery(w, r) {
		return
	}
	rn := s.findRun(w, id)
	if rn == nil {
		return
	}
	switch rn.state {
	case "", "PENDING", "RUNNING", "PAUSED":
	default:
		s.rpcError(w, http.StatusBadRequest, 9, "Failed to terminate run "+id+": Row not found",
			"FailedPreconditionError: failed to terminate run "+id+" in state "+rn.state+": Row not found")
		return
	}
	rn.script, rn.pos = []string{"CANCELING", s.opts.TerminateTo}, 1
	s.setState(rn, "CANCELING")
	writeJSON(w, map[string]any{})
}

func (s *Server) retryRun(w http.ResponseWriter, r *http.Request, id string) {
	if !s.checkQuery(w, r) {
		return
	}
	rn := s.findRun(w, id)
	if rn == nil {
		return
	}
	if rn.state != "FAILED" && rn.state != "CANCELED" {
		s.rpcError(w, http.StatusConflict, 10, "Failed to retry run "+id+": the run is not failed or terminated",
			"BadRequestError: run "+id+" in state "+rn.state+" cannot be retried")
		return
	}
	rn.script, rn.pos = rn.original, 1
	s.setState(rn, rn.script[0])
	writeJSON(w, map[string]any{})
}
