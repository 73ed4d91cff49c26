package kfp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ExperimentList is one page of experiments.
type ExperimentList struct {
	Experiments   []Experiment `json:"experiments"`
	TotalSize     int          `json:"total_size"`
	NextPageToken string       `json:"next_page_token"`
}

// ListExperiments lists one page of the experiments of the client's
// namespace (multi-user servers require one).
func (c *Client) ListExperiments(ctx context.Context, o ListOptions) (*ExperimentList, error) {
	q := url.Values{}
	setIf(q, "namespace", c.namespace)
	q, err := o.query(q)
	if err != nil {
		return nil, err
	}
	var out ExperimentList
	if err := c.getJSON(ctx, "/experiments", q, &out); err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	return &out, nil
}

// experimentBody is the bare Experiment sent to create one.
type experimentBody struct {
	DisplayName string `json:"display_name,omitempty"`
	Description string `json:"description,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
}

// CreateExperiment creates an experiment in the client's namespace.
func (c *Client) CreateExperiment(ctx context.Context, name, description string) (*Experiment, error) {
	if strings.TrimSpace(name) == "" {
		return nil, &InputError{Msg: "an experiment needs a name"}
	}
	var e Experiment
	body := experimentBody{DisplayName: name, Description: description, Namespace: c.namespace}
	if err := c.postJSON(ctx, "/experiments", body, &e); err != nil {
		return nil, fmt.Errorf("create experiment %q: %w", name, err)
	}
	return &e, nil
}

// EnsureExperiment returns the experiment called name in the client's
// namespace, creating it when there is none ("Default" when name is
// empty). It reports whether it created it. Like kfp.Client it refuses
// when several experiments have that name; unlike it, it lists again when
// a concurrent creation wins the race (409).
func (c *Client) EnsureExperiment(ctx context.Context, name string) (*Experiment, bool, error) {
	if name == "" {
		name = DefaultExperiment
	}
	e, err := c.experimentByName(ctx, name)
	if err == nil {
		return e, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	e, err = c.CreateExperiment(ctx, name, "")
	if err == nil {
		return e, true, nil
	}
	if !errors.Is(err, ErrConflict) {
		return nil, false, err
	}
	e, err = c.experimentByName(ctx, name)
	if err != nil {
		return nil, false, err
	}
	return e, false, nil
}

func (c *Client) experimentByName(ctx context.Context, name string) (*Experiment, error) {
	l, err := c.ListExperiments(ctx, ListOptions{PageSize: 2, Filter: Equals("display_name", name)})
	if err != nil {
		return nil, fmt.Errorf("find experiment %q: %w", name, err)
	}
	switch n := max(len(l.Experiments), l.TotalSize); {
	case len(l.Experiments) == 0:
		return nil, fmt.Errorf("experiment %q%s: %w", name, c.inNamespace(), ErrNotFound)
	case n > 1:
		return nil, fmt.Errorf("%d experiments are named %q%s; rename or delete the extra ones", n, name, c.inNamespace())
	}
	return &l.Experiments[0], nil
}
