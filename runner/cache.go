package runner

import (
	"cmp"
	"context"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"

	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// cacheKey fingerprints a task execution. It closes the holes of KFP's key
// (docs/kfp-semantics.md §4.11): besides the component spec, the command and args
// templates and the input values, it covers the container env, the content
// digests of the input artifacts and, where the executor knows it, the
// image digest, so a rebuilt image or a changed input file is a miss. A
// cachingOptions.cacheKey given in the IR replaces the fingerprint.
func (c *containerTask) cacheKey() (string, error) {
	if k := c.r.ir.CacheKeys[c.parentComp()+"/"+c.key]; k != "" {
		sum := sha256.Sum256([]byte(c.compName + "\x00" + k))
		return hex.EncodeToString(sum[:]), nil
	}
	compMap, err := c.r.componentMap(c.compName, c.comp)
	if err != nil {
		return "", err
	}
	type art struct {
		Digest   string         `json:"digest"`
		URI      string         `json:"uri,omitempty"`
		Type     string         `json:"type"`
		Metadata map[string]any `json:"metadata"`
	}
	inputs := map[string][]art{}
	for name, arts := range c.in.artifacts {
		for _, a := range arts {
			x := art{Digest: a.Digest, Type: a.Type.SchemaTitle, Metadata: a.Metadata}
			if a.Digest == "" {
				// Without a content digest the location must match.
				x.URI = a.URI
			}
			inputs[name] = append(inputs[name], x)
		}
	}
	key := map[string]any{
		"v":           1,
		"component":   compMap,
		"image":       cmp.Or(c.keyImage, c.image),
		"imageDigest": c.digest,
		"command":     c.ct.Command,
		"args":        c.ct.Args,
		"env":         c.env,
		"resources":   c.ct.Resources,
		"parameters":  withDefaults(c.comp, c.in.params),
		"artifacts":   inputs,
	}
	b, err := json.Marshal(key)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// parentComp is the name of the component whose DAG holds the task.
func (c *containerTask) parentComp() string {
	return c.r.parentOf(c.path)
}

// componentMap is a component spec as plain values for cache keys (without
// its executor label), computed once per component.
func (r *run) componentMap(name string, cs *pb.ComponentSpec) (map[string]any, error) {
	return r.compMaps.get(context.Background(), name, func() (map[string]any, error) {
		m, err := kfpir.ToMap(cs)
		if err != nil {
			return nil, err
		}
		delete(m, "executorLabel")
		return m, nil
	})
}
