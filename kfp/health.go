package kfp

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnhealthy is returned by Health when the KFP UI answers but reports
// that the API server behind it is not ready.
var ErrUnhealthy = errors.New("the API server behind it is not ready")

// Health calls healthz. Both the API server's answer and the UI's (which
// answers 200 even when the API server is down) are understood; a UI that
// reports apiServerReady false gives ErrUnhealthy.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h healthz
	if err := c.getJSON(ctx, "/healthz", nil, &h); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: no KFP API at this address: check the host and its path prefix (behind Kubeflow's gateway, KFP is under /pipeline)", err)
		}
		return nil, err
	}
	if h.MultiUser == nil && h.APIServerReady == nil && h.APIServerMultiUser == nil && h.CommitSHA == "" && h.TagName == "" {
		return nil, fmt.Errorf("KFP at %s: healthz answered JSON that is not KFP's (is the host right?)", c.host)
	}
	out := &Health{
		Version:       h.TagName,
		CommitSHA:     h.CommitSHA,
		PipelineStore: h.PipelineStore,
		ViaUI:         h.APIServerReady != nil,
	}
	if out.ViaUI {
		if out.Version == "" {
			out.Version = h.APIServerTagName
		}
		if out.CommitSHA == "" {
			out.CommitSHA = h.APIServerCommitHash
		}
		if out.PipelineStore == "" {
			out.PipelineStore = h.UIPipelineStore
		}
	}
	switch {
	case h.MultiUser != nil:
		out.MultiUser = *h.MultiUser
	case h.APIServerMultiUser != nil:
		out.MultiUser = *h.APIServerMultiUser
	}
	if h.APIServerReady != nil && !*h.APIServerReady {
		return out, fmt.Errorf("KFP at %s: the UI answers but %w", c.host, ErrUnhealthy)
	}
	return out, nil
}
