package kfp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"

	"sigs.k8s.io/yaml"
)

// MaxUploadSize is the server's limit on an uploaded pipeline file.
const MaxUploadSize = 32 << 20

// pipelineNameRE is what upload accepts as pipelineInfo.name.
var pipelineNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,127}$`)

// CheckPipelineName checks a pipelineInfo.name against the rule the upload
// endpoint enforces: lower-case letters, digits and dashes, starting with a
// letter or a digit, at most 128 characters.
func CheckPipelineName(name string) error {
	if !pipelineNameRE.MatchString(name) {
		return &InputError{Msg: fmt.Sprintf("pipeline name %q: KFP accepts only lower-case letters, digits and dashes, starting with a letter or a digit, at most 128 characters", name)}
	}
	return nil
}

// Upload is a pipeline file to upload.
type Upload struct {
	// Name of the pipeline (UploadPipeline) or of the version
	// (UploadPipelineVersion). Always sent: without it the server names the
	// pipeline after the file.
	Name        string
	Description string
	// File is the compiled IR: YAML (a PipelineSpec document, optionally
	// followed by a PlatformSpec document) or JSON.
	File []byte
	// FileName tells the server the format; default "pipeline.yaml".
	FileName string
}

// PackageYAML writes an IR as the multi-document YAML file KFP reads: the
// PipelineSpec, then the PlatformSpec when there is one.
func PackageYAML(spec, platform map[string]any) ([]byte, error) {
	b, err := yaml.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode pipeline spec: %w", err)
	}
	if len(platform) > 0 {
		p, err := yaml.Marshal(platform)
		if err != nil {
			return nil, fmt.Errorf("encode platform spec: %w", err)
		}
		b = append(append(b, "---\n"...), p...)
	}
	return b, nil
}

// UploadPipeline creates a pipeline and its first version from a file, in
// the client's namespace (a shared pipeline when there is none). The
// answer carries no version id: see LatestPipelineVersion.
func (c *Client) UploadPipeline(ctx context.Context, u Upload) (*Pipeline, error) {
	q := url.Values{}
	setIf(q, "name", u.Name)
	setIf(q, "description", u.Description)
	setIf(q, "namespace", c.namespace)
	var p Pipeline
	if err := c.upload(ctx, "/pipelines/upload", q, u, &p); err != nil {
		return nil, fmt.Errorf("upload pipeline %q: %w", u.Name, err)
	}
	return &p, nil
}

// CreatePipeline creates a pipeline without any version (POST /pipelines),
// in the client's namespace; UploadPipelineVersion then adds the first.
// It is how a first version gets a name of its own: an upload names it
// after the pipeline.
func (c *Client) CreatePipeline(ctx context.Context, name, description string) (*Pipeline, error) {
	body := struct {
		DisplayName string `json:"display_name"`
		Description string `json:"description,omitempty"`
		Namespace   string `json:"namespace,omitempty"`
	}{name, description, c.namespace}
	var p Pipeline
	if err := c.postJSON(ctx, "/pipelines", body, &p); err != nil {
		return nil, fmt.Errorf("create pipeline %q: %w", name, err)
	}
	return &p, nil
}

// DeletePipeline deletes a pipeline that has no versions (DELETE
// /pipelines/{id}; the server refuses one that has).
func (c *Client) DeletePipeline(ctx context.Context, pipelineID string) error {
	if err := c.do(ctx, call{method: http.MethodDelete, path: "/pipelines/" + url.PathEscape(pipelineID), write: true}, nil); err != nil {
		return fmt.Errorf("delete pipeline %s: %w", pipelineID, err)
	}
	return nil
}

// PipelineVersionByName finds a version of a pipeline by its name; none
// gives an error matching ErrNotFound.
func (c *Client) PipelineVersionByName(ctx context.Context, pipelineID, name string) (*PipelineVersion, error) {
	l, err := c.ListPipelineVersions(ctx, pipelineID, ListOptions{PageSize: 1, Filter: Equals("display_name", name)})
	if err != nil {
		return nil, err
	}
	if len(l.PipelineVersions) == 0 {
		return nil, fmt.Errorf("version %q of pipeline %s: %w", name, pipelineID, ErrNotFound)
	}
	return &l.PipelineVersions[0], nil
}

// UploadPipelineVersion adds a version to a pipeline. Its namespace is the
// pipeline's.
func (c *Client) UploadPipelineVersion(ctx context.Context, pipelineID string, u Upload) (*PipelineVersion, error) {
	if pipelineID == "" {
		return nil, errors.New("upload pipeline version: no pipeline id")
	}
	q := url.Values{}
	q.Set("pipelineid", pipelineID)
	setIf(q, "name", u.Name)
	setIf(q, "description", u.Description)
	var v PipelineVersion
	if err := c.upload(ctx, "/pipelines/upload_version", q, u, &v); err != nil {
		return nil, fmt.Errorf("upload version %q of pipeline %s: %w", u.Name, pipelineID, err)
	}
	return &v, nil
}

func (c *Client) upload(ctx context.Context, path string, q url.Values, u Upload, out any) error {
	if len(u.File) > MaxUploadSize {
		return fmt.Errorf("the pipeline file is %d bytes; KFP accepts at most %d MiB", len(u.File), MaxUploadSize>>20)
	}
	name := u.FileName
	if name == "" {
		name = "pipeline.yaml"
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("uploadfile", name)
	if err != nil {
		return err
	}
	if _, err := fw.Write(u.File); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return c.do(ctx, call{method: http.MethodPost, path: path, query: q, body: buf.Bytes(),
		contentType: mw.FormDataContentType(), write: true}, out)
}

// PipelineByName finds the pipeline called name in the client's namespace
// (shared pipelines when there is none). It asks the names endpoint of new
// servers and falls back to a list filtered on display_name, which old
// servers understand. No match gives an error matching ErrNotFound.
func (c *Client) PipelineByName(ctx context.Context, name string) (*Pipeline, error) {
	q := url.Values{}
	setIf(q, "namespace", c.namespace)
	var p Pipeline
	err := c.getJSON(ctx, "/pipelines/names/"+url.PathEscape(name), q, &p)
	if err == nil && p.PipelineID != "" {
		return &p, nil
	}
	if sc := StatusCode(err); err != nil && sc != http.StatusNotFound && sc != http.StatusNotImplemented {
		return nil, fmt.Errorf("find pipeline %q: %w", name, err)
	}
	lq, err := ListOptions{PageSize: 2, Filter: Equals("display_name", name)}.query(q)
	if err != nil {
		return nil, err
	}
	var list struct {
		Pipelines []Pipeline `json:"pipelines"`
	}
	if err := c.getJSON(ctx, "/pipelines", lq, &list); err != nil {
		return nil, fmt.Errorf("find pipeline %q: %w", name, err)
	}
	switch len(list.Pipelines) {
	case 0:
		return nil, fmt.Errorf("pipeline %q%s: %w", name, c.inNamespace(), ErrNotFound)
	case 1:
		return &list.Pipelines[0], nil
	}
	return nil, fmt.Errorf("several pipelines are named %q%s; use the pipeline id", name, c.inNamespace())
}

// PipelineVersionList is one page of pipeline versions.
type PipelineVersionList struct {
	PipelineVersions []PipelineVersion `json:"pipeline_versions"`
	TotalSize        int               `json:"total_size"`
	NextPageToken    string            `json:"next_page_token"`
}

// ListPipelineVersions lists one page of a pipeline's versions.
func (c *Client) ListPipelineVersions(ctx context.Context, pipelineID string, o ListOptions) (*PipelineVersionList, error) {
	q, err := o.query(nil)
	if err != nil {
		return nil, err
	}
	var out PipelineVersionList
	if err := c.getJSON(ctx, "/pipelines/"+url.PathEscape(pipelineID)+"/versions", q, &out); err != nil {
		return nil, fmt.Errorf("list versions of pipeline %s: %w", pipelineID, err)
	}
	return &out, nil
}

// LatestPipelineVersion is the most recently created version of a
// pipeline.
func (c *Client) LatestPipelineVersion(ctx context.Context, pipelineID string) (*PipelineVersion, error) {
	l, err := c.ListPipelineVersions(ctx, pipelineID, ListOptions{PageSize: 1, SortBy: "created_at desc"})
	if err != nil {
		return nil, err
	}
	if len(l.PipelineVersions) == 0 {
		return nil, fmt.Errorf("pipeline %s has no version: %w", pipelineID, ErrNotFound)
	}
	return &l.PipelineVersions[0], nil
}

func (c *Client) inNamespace() string {
	if c.namespace == "" {
		return ""
	}
	return " in namespace " + c.namespace
}

func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}
