package kfptest

import (
	"bytes"
	"cmp"
	"fmt"
	"net/http"
	"strings"
)

func (s *Server) healthz(w http.ResponseWriter) {
	if s.opts.Healthz == HealthzUI {
		writeJSON(w, map[string]any{
			"apiServerReady":      !s.opts.APIServerNotReady,
			"apiServerCommitHash": "fake",
			"apiServerTagName":    "2.17.0",
			"apiServerMultiUser":  s.opts.MultiUser,
			"multi_user":          s.opts.MultiUser,
			"pipelineStore":       "database",
			"buildDate":           "Thu Aug 21 10:00:00 UTC 2026",
			"frontendCommitHash":  "fake",
			"frontendTagName":     "2.17.0",
		})
		return
	}
	writeJSON(w, map[string]any{"commit_sha": "fake", "tag_name": "2.17.0", "multi_user": s.opts.MultiUser, "pipeline_store": "database"})
}

// readPipelineFile applies the upload handler's checks and returns the
// spec, answering errors in the upload format.
func (s *Server) readPipelineFile(w http.ResponseWriter, r *http.Request, what string) (map[string]any, string, bool) {
	f := readUpload(r, mustBody(r))
	if f == nil {
		uploadError(w, http.StatusBadRequest, "Failed to create a "+what+". Invalid input error: failed to read the pipeline file",
			"request is not multipart/form-data with a part named uploadfile")
		return nil, "", false
	}
	lower := strings.ToLower(f.FileName)
	isYAML := strings.HasSuffix(lower, ".yaml") || strings.HasSuffix(lower, ".yml") || strings.HasSuffix(lower, ".json")
	archive := bytes.HasPrefix(f.Content, []byte("PK")) || bytes.HasPrefix(f.Content, []byte{0x1f, 0x8b})
	switch {
	case !isYAML && !archive:
		uploadError(w, http.StatusBadRequest, "Failed to create a "+what+". Invalid input error: unexpected pipeline file format",
			fmt.Sprintf("file %q: support only YAML, JSON, zip or tar.gz", f.FileName))
		return nil, "", false
	case archive:
		uploadError(w, http.StatusBadRequest, "kfptest: archives are not supported by the fake", "")
		return nil, "", false
	case len(f.Content) > 32<<20:
		uploadError(w, http.StatusBadRequest, "Failed to create a "+what+". Invalid input error: File size too large. Maximum supported size: 32MB", "")
		return nil, "", false
	}
	spec, err := parseYAMLSpec(f.Content)
	if err == nil {
		err = checkSpec(spec, true)
	}
	if err != nil {
		uploadError(w, http.StatusBadRequest, "Failed to create a "+what+". Invalid input error: "+err.Error(), err.Error())
		return nil, "", false
	}
	return spec, f.FileName, true
}

func mustBody(r *http.Request) []byte {
	var b bytes.Buffer
	_, _ = b.ReadFrom(r.Body)
	return b.Bytes()
}

func (s *Server) uploadPipeline(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "name", "display_name", "description", "namespace", "tags", "code_source_url":
		default:
			uploadError(w, http.StatusBadRequest, fmt.Sprintf("kfptest: unknown query parameter %q", k), "")
			return
		}
	}
	ns := q.Get("namespace")
	if !s.opts.MultiUser {
		ns = ""
	}
	switch {
	case len(ns) > 63:
		http.Error(w, "Namespace name is too long", http.StatusBadRequest)
		return
	case s.opts.MultiUser && ns == "" && s.opts.RequireNamespaceForPipelines:
		http.Error(w, "Namespace is required for pipeline operations", http.StatusBadRequest)
		return
	case ns != "" && !s.allowed(ns):
		uploadError(w, http.StatusBadRequest, "Failed to create a pipeline due to authorization error. Check if you have write permissions to namespace "+ns,
			"PermissionDenied: User 'fake-user' is not authorized")
		return
	}
	spec, file, ok := s.readPipelineFile(w, r, "pipeline")
	if !ok {
		return
	}
	name := cmp.Or(q.Get("name"), q.Get("display_name"), file)
	for _, p := range s.pipelines {
		if p.name == name && p.namespace == ns {
			uploadError(w, http.StatusConflict, "Failed to create a pipeline. The pipeline already exist.",
				fmt.Sprintf("AlreadyExistsError: pipeline with name %q already exists in namespace %q", name, ns))
			return
		}
	}
	p := &pipeline{id: s.newID("pipeline"), name: name, displayName: cmp.Or(q.Get("display_name"), name),
		description: q.Get("description"), namespace: ns, created: s.now()}
	s.pipelines = append(s.pipelines, p)
	s.versions = append(s.versions, &version{id: s.newID("version"), pipelineID: p.id, name: name,
		displayName: p.displayName, description: p.description, created: p.created, spec: spec})
	writeJSON(w, p.json())
}

func (s *Server) uploadVersion(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "pipelineid", "name", "display_name", "description", "tags", "code_source_url":
		case "namespace":
			uploadError(w, http.StatusBadRequest, "kfptest: upload_version takes no namespace (the real server ignores it)", "")
			return
		default:
			uploadError(w, http.StatusBadRequest, fmt.Sprintf("kfptest: unknown query parameter %q", k), "")
			return
		}
	}
	pid := q.Get("pipelineid")
	if pid == "" {
		uploadError(w, http.StatusBadRequest, "Failed to create a pipeline version. Invalid input error: pipeline id is empty", "")
		return
	}
	p := s.findPipeline(pid)
	if p == nil {
		uploadError(w, http.StatusNotFound, "Failed to create a pipeline version. ResourceNotFoundError: pipeline "+pid+" not found", "")
		return
	}
	if !s.allowed(p.namespace) {
		uploadError(w, http.StatusBadRequest, "Failed to create a pipeline version due to authorization error", "PermissionDenied")
		return
	}
	spec, file, ok := s.readPipelineFile(w, r, "pipeline version")
	if !ok {
		return
	}
	name := cmp.Or(q.Get("name"), q.Get("display_name"), file)
	for _, v := range s.versions {
		if v.pipelineID == pid && v.name == name {
			// The real server says no more than this, with a stack trace.
			uploadError(w, http.StatusConflict, "Failed to create a pipeline version", goStack)
			return
		}
	}
	v := &version{id: s.newID("version"), pipelineID: pid, name: name, displayName: cmp.Or(q.Get("display_name"), name),
		description: q.Get("description"), created: s.now(), spec: spec}
	s.versions = append(s.versions, v)
	writeJSON(w, v.json())
}

// goStack is what the real upload handler puts in error_details.
const goStack = `Failed to create a pipeline version: Already exist error: failed to create version
github.com/kubeflow/pipelines/backend/src/common/util.NewAlreadyExistError
	/go/src/github.com/kubeflow/pipelines/backend/src/common/util/error.go:95
github.com/kubeflow/pipelines/backend/src/apiserver/resource.(*ResourceManager).CreatePipelineVersion
	/go/src/github.com/kubeflow/pipelines/backend/src/apiserver/resource/resource_manager.go:521
runtime.goexit
	/usr/local/go/src/runtime/asm_amd64.s:1700`

// createPipeline is CreatePipeline: a pipeline with no version yet.
func (s *Server) createPipeline(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DisplayName string `json:"display_name"`
		Name        string `json:"name"`
		Description string `json:"description"`
		Namespace   string `json:"namespace"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	name := cmp.Or(req.Name, req.DisplayName)
	ns := req.Namespace
	if !s.opts.MultiUser {
		ns = ""
	}
	switch {
	case name == "":
		s.internal(w, "Failed to create a pipeline: Invalid input error: pipeline's name cannot be empty")
		return
	case ns != "" && !s.allowed(ns):
		s.forbidden(w, "create", "pipelines", ns)
		return
	}
	for _, p := range s.pipelines {
		if p.name == name && p.namespace == ns {
			s.rpcError(w, http.StatusConflict, 6, "Failed to create a pipeline", "AlreadyExistsError: pipeline "+name+" already exists")
			return
		}
	}
	p := &pipeline{id: s.newID("pipeline"), name: name, displayName: cmp.Or(req.DisplayName, name),
		description: req.Description, namespace: ns, created: s.now()}
	s.pipelines = append(s.pipelines, p)
	writeJSON(w, p.json())
}

// deletePipeline is DeletePipeline: refused while the pipeline has versions.
func (s *Server) deletePipeline(w http.ResponseWriter, id string) {
	p := s.findPipeline(id)
	if p == nil {
		s.rpcError(w, http.StatusNotFound, 5, "Failed to delete a pipeline", "ResourceNotFoundError: pipeline "+id+" not found")
		return
	}
	for _, v := range s.versions {
		if v.pipelineID == id {
			s.rpcError(w, http.StatusBadRequest, 9, "Failed to delete a pipeline", "FailedPrecondition: the pipeline has versions")
			return
		}
	}
	out := s.pipelines[:0]
	for _, q := range s.pipelines {
		if q.id != id {
			out = append(out, q)
		}
	}
	s.pipelines = out
	writeJSON(w, map[string]any{})
}

func (s *Server) findPipeline(id string) *pipeline {
	for _, p := range s.pipelines {
		if p.id == id {
			return p
		}
	}
	return nil
}

// visibleNamespace is the namespace a pipeline list or lookup covers:
// multi-user servers list shared pipelines for "" and X's for X; single-user
// servers ignore it.
func (s *Server) visibleNamespace(r *http.Request) string {
	if !s.opts.MultiUser {
		return ""
	}
	return r.URL.Query().Get("namespace")
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) {
	if !s.checkQuery(w, r, "namespace", "page_token", "page_size", "sort_by", "filter") {
		return
	}
	ns := s.visibleNamespace(r)
	if ns != "" && !s.allowed(ns) {
		s.forbidden(w, "list", "pipelines", ns)
		return
	}
	var items []item
	for _, p := range s.pipelines {
		if p.namespace != ns {
			continue
		}
		items = append(items, item{id: p.id, created: p.created, json: p.json(), fields: map[string]string{
			"pipeline_id": p.id, "display_name": p.displayName, "name": p.name,
			"description": p.description, "namespace": p.namespace, "created_at": ts(p.created),
		}})
	}
	s.page(w, r, items, []string{"pipeline_id", "display_name", "name", "created_at", "description", "namespace"}, "pipelines")
}

func (s *Server) pipelineByName(w http.ResponseWriter, r *http.Request, name string) {
	if !s.checkQuery(w, r, "namespace") {
		return
	}
	ns := s.visibleNamespace(r)
	for _, p := range s.pipelines {
		if p.name == name && p.namespace == ns {
			writeJSON(w, p.json())
			return
		}
	}
	s.notFound(w, "Pipeline with name", name)
}

func (s *Server) getPipeline(w http.ResponseWriter, id string) {
	p := s.findPipeline(id)
	if p == nil {
		s.notFound(w, "Pipeline", id)
		return
	}
	writeJSON(w, p.json())
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, pid string) {
	if !s.checkQuery(w, r, "page_token", "page_size", "sort_by", "filter") {
		return
	}
	if s.findPipeline(pid) == nil {
		s.notFound(w, "Pipeline", pid)
		return
	}
	var items []item
	for _, v := range s.versions {
		if v.pipelineID != pid {
			continue
		}
		items = append(items, item{id: v.id, created: v.created, json: v.json(), fields: map[string]string{
			"pipeline_version_id": v.id, "display_name": v.displayName, "name": v.name,
			"description": v.description, "created_at": ts(v.created),
		}})
	}
	s.page(w, r, items, []string{"pipeline_version_id", "display_name", "name", "created_at", "description"}, "pipeline_versions")
}

func (s *Server) getVersion(w http.ResponseWriter, pid, vid string) {
	for _, v := range s.versions {
		if v.id == vid && v.pipelineID == pid {
			writeJSON(w, v.json())
			return
		}
	}
	s.notFound(w, "PipelineVersion", vid)
}

// latestVersion is a pipeline's most recent version.
func (s *Server) latestVersion(pid string) *version {
	var out *version
	for _, v := range s.versions {
		if v.pipelineID == pid && (out == nil || !v.created.Before(out.created)) {
			out = v
		}
	}
	return out
}
