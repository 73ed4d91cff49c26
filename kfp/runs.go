package kfp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// RunRequest describes a run to create. Exactly one pipeline source must be
// set: PipelineSpec (inline IR) or PipelineID (a stored pipeline).
type RunRequest struct {
	// DisplayName is required by the server.
	DisplayName string
	Description string
	// ExperimentID places the run; it decides the run's namespace and is
	// required on multi-user servers.
	ExperimentID string
	// PipelineSpec is the IR as a JSON object (the PipelineSpec document,
	// camelCase keys as compiled).
	PipelineSpec map[string]any
	// PlatformSpec goes with PipelineSpec; the two are then sent as
	// {"pipeline_spec": ..., "platform_spec": ...}.
	PlatformSpec map[string]any
	// PipelineID and PipelineVersionID reference a stored pipeline version;
	// without a version id the server takes the latest.
	PipelineID        string
	PipelineVersionID string
	// Parameters are typed JSON values (numbers, strings, bools, lists,
	// objects) for the pipeline's root inputs.
	Parameters map[string]any
	// PipelineRoot overrides where the run's artifacts go.
	PipelineRoot   string
	ServiceAccount string
}

// runBody is the bare Run sent to create one: only what is set, snake_case.
type runBody struct {
	DisplayName              string                    `json:"display_name,omitempty"`
	Description              string                    `json:"description,omitempty"`
	ExperimentID             string                    `json:"experiment_id,omitempty"`
	PipelineSpec             any                       `json:"pipeline_spec,omitempty"`
	PipelineVersionReference *PipelineVersionReference `json:"pipeline_version_reference,omitempty"`
	RuntimeConfig            runtimeConfigBody         `json:"runtime_config"`
	ServiceAccount           string                    `json:"service_account,omitempty"`
}

// runtimeConfigBody always carries parameters, {} when there are none, as
// kfp.Client sends it.
type runtimeConfigBody struct {
	Parameters   map[string]any `json:"parameters"`
	PipelineRoot string         `json:"pipeline_root,omitempty"`
}

// specWithPlatform is the inline spec with platform configuration.
type specWithPlatform struct {
	PipelineSpec map[string]any `json:"pipeline_spec"`
	PlatformSpec map[string]any `json:"platform_spec"`
}

func (r RunRequest) body() (*runBody, error) {
	if strings.TrimSpace(r.DisplayName) == "" {
		return nil, &InputError{Msg: "a run needs a name"}
	}
	inline, ref := r.PipelineSpec != nil, r.PipelineID != ""
	switch {
	case inline && ref:
		return nil, &InputError{Msg: "a run takes an inline pipeline spec or a pipeline id, not both"}
	case !inline && !ref:
		return nil, &InputError{Msg: "a run needs an inline pipeline spec or a pipeline id"}
	case !inline && r.PlatformSpec != nil:
		return nil, &InputError{Msg: "a platform spec goes with an inline pipeline spec"}
	case !ref && r.PipelineVersionID != "":
		return nil, &InputError{Msg: "a pipeline version id needs its pipeline id"}
	}
	b := &runBody{
		DisplayName:    r.DisplayName,
		Description:    r.Description,
		ExperimentID:   r.ExperimentID,
		ServiceAccount: r.ServiceAccount,
		RuntimeConfig:  runtimeConfigBody{Parameters: r.Parameters, PipelineRoot: r.PipelineRoot},
	}
	if b.RuntimeConfig.Parameters == nil {
		b.RuntimeConfig.Parameters = map[string]any{}
	}
	if inline {
		if err := CheckParameters(r.PipelineSpec, r.Parameters); err != nil {
			return nil, err
		}
		b.PipelineSpec = r.PipelineSpec
		if len(r.PlatformSpec) > 0 {
			b.PipelineSpec = specWithPlatform{PipelineSpec: r.PipelineSpec, PlatformSpec: r.PlatformSpec}
		}
	} else {
		b.PipelineVersionReference = &PipelineVersionReference{PipelineID: r.PipelineID, PipelineVersionID: r.PipelineVersionID}
	}
	return b, nil
}

// CreateRun creates a run. The server answers once the Argo workflow
// exists; its state is then usually still unspecified.
func (c *Client) CreateRun(ctx context.Context, r RunRequest) (*Run, error) {
	b, err := r.body()
	if err != nil {
		return nil, err
	}
	var out Run
	if err := c.postJSON(ctx, "/runs", b, &out); err != nil {
		return nil, fmt.Errorf("create run %q: %w", r.DisplayName, err)
	}
	if out.RunID == "" {
		return nil, fmt.Errorf("create run %q: KFP at %s answered without a run id", r.DisplayName, c.host)
	}
	return &out, nil
}

// GetRun fetches a run, with its task details.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	if runID == "" {
		return nil, errors.New("get run: no run id")
	}
	var out Run
	if err := c.getJSON(ctx, "/runs/"+url.PathEscape(runID), nil, &out); err != nil {
		return nil, fmt.Errorf("get run %s: %w", runID, err)
	}
	return &out, nil
}

// RunList is one page of runs.
type RunList struct {
	Runs          []Run  `json:"runs"`
	TotalSize     int    `json:"total_size"`
	NextPageToken string `json:"next_page_token"`
}

// ListRuns lists one page of runs: those of an experiment when
// experimentID is set (the namespace is then not sent, as kfp.Client),
// otherwise those of the client's namespace.
func (c *Client) ListRuns(ctx context.Context, experimentID string, o ListOptions) (*RunList, error) {
	q := url.Values{}
	if experimentID != "" {
		q.Set("experiment_id", experimentID)
	} else {
		setIf(q, "namespace", c.namespace)
	}
	q, err := o.query(q)
	if err != nil {
		return nil, err
	}
	var out RunList
	if err := c.getJSON(ctx, "/runs", q, &out); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return &out, nil
}

// TerminateRun asks the server to stop a run. It moves to CANCELING, then
// to CANCELED (or FAILED) once Argo reports. A run already finished gives
// a 400.
func (c *Client) TerminateRun(ctx context.Context, runID string) error {
	if runID == "" {
		return errors.New("terminate run: no run id")
	}
	err := c.do(ctx, call{method: http.MethodPost, path: "/runs/" + url.PathEscape(runID) + ":terminate", write: true}, nil)
	if err != nil {
		return fmt.Errorf("terminate run %s: %w", runID, err)
	}
	return nil
}
