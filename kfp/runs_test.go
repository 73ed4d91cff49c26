package kfp_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/kfp"
	"github.com/mlpipe/mlpipe/kfp/kfptest"
)

// startRun creates a run of hello.json in the Default experiment.
func startRun(t *testing.T, c *kfp.Client) *kfp.Run {
	t.Helper()
	e, _, err := c.EnsureExperiment(t.Context(), "")
	if err != nil {
		t.Fatalf("EnsureExperiment: %v", err)
	}
	r, err := c.CreateRun(t.Context(), kfp.RunRequest{DisplayName: "r", ExperimentID: e.ExperimentID,
		PipelineSpec: helloSpec(t), Parameters: map[string]any{"seed": 1}})
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	return r
}

func TestRunDecoding(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{RunScript: []string{"", "", "PENDING", "RUNNING", "SUCCEEDED"}})
	c := newClient(t, srv, kfp.Options{})
	created := startRun(t, c)
	if created.State != kfp.StateUnspecified || created.Finished() {
		t.Errorf("created run: state %q finished %v, want absent and unfinished", created.State, created.Finished())
	}
	if !created.FinishedAt.Equal(time.Unix(0, 0)) {
		t.Errorf("finished_at = %v, want the epoch", created.FinishedAt)
	}
	var states []kfp.RuntimeState
	var last *kfp.Run
	for range 4 {
		r, err := c.GetRun(t.Context(), created.RunID)
		if err != nil {
			t.Fatalf("GetRun: %v", err)
		}
		states = append(states, r.State)
		last = r
	}
	want := []kfp.RuntimeState{kfp.StateUnspecified, kfp.StatePending, kfp.StateRunning, kfp.StateSucceeded}
	if d := cmp.Diff(want, states); d != "" {
		t.Errorf("states (-want +got):\n%s", d)
	}
	if !last.Finished() || last.RunDetails == nil {
		t.Fatalf("finished run: Finished %v, details %v", last.Finished(), last.RunDetails)
	}
	if last.RunDetails.PipelineContextID != 17 {
		t.Errorf("pipeline_context_id = %d, want 17 (sent as a string)", last.RunDetails.PipelineContextID)
	}
	var names []string
	for _, td := range last.RunDetails.TaskDetails {
		names = append(names, td.DisplayName)
		if td.DisplayName == "say" {
			if td.ExecutionID != 100 || td.State != kfp.StateSucceeded || len(td.ChildTasks) != 1 || td.ChildTasks[0].PodName == "" {
				t.Errorf("task say = %+v", td)
			}
		}
	}
	if !strings.Contains(strings.Join(names, ","), "say") {
		t.Errorf("task display names %v lack the pipeline task", names)
	}
	var hist []kfp.RuntimeState
	for _, h := range last.StateHistory {
		hist = append(hist, h.State)
	}
	if d := cmp.Diff([]kfp.RuntimeState{"PENDING", "RUNNING", "SUCCEEDED"}, hist); d != "" {
		t.Errorf("state history (-want +got):\n%s", d)
	}
	if last.RuntimeConfig == nil || last.RuntimeConfig.Parameters["seed"] != float64(1) {
		t.Errorf("runtime config = %+v", last.RuntimeConfig)
	}
}

func TestInt64AcceptsStringsAndNumbers(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`"42"`, `42`} {
		var n kfp.Int64
		if err := n.UnmarshalJSON([]byte(in)); err != nil || n != 42 {
			t.Errorf("Int64 from %s = %d, %v", in, n, err)
		}
	}
	var n kfp.Int64
	if err := n.UnmarshalJSON([]byte(`"x"`)); err == nil {
		t.Error("Int64 from \"x\": no error")
	}
	if b, _ := kfp.Int64(7).MarshalJSON(); string(b) != `"7"` {
		t.Errorf("Int64(7) encodes as %s", b)
	}
}

func TestWaitRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		script    []string
		fault     *kfptest.Fault
		timeout   time.Duration
		want      kfp.RuntimeState
		wantErr   func(error) bool
		wantPolls int
	}{
		{name: "succeeds", script: []string{"", "PENDING", "RUNNING", "SUCCEEDED"}, want: kfp.StateSucceeded, wantPolls: 3},
		{name: "fails", script: []string{"", "RUNNING", "FAILED"}, want: kfp.StateFailed, wantPolls: 2},
		{name: "canceled is terminal", script: []string{"", "RUNNING", "CANCELING", "CANCELED"}, want: kfp.StateCanceled, wantPolls: 3},
		{name: "skipped is terminal", script: []string{"", "SKIPPED"}, want: kfp.StateSkipped, wantPolls: 1},
		{name: "503 mid-poll is retried", script: []string{"", "RUNNING", "SUCCEEDED"},
			fault: &kfptest.Fault{Kind: kfptest.Unavailable, Call: 2}, want: kfp.StateSucceeded, wantPolls: 3},
		{name: "envoy 503 is retried", script: []string{"", "RUNNING", "SUCCEEDED"},
			fault: &kfptest.Fault{Kind: kfptest.EnvoyUnavailable, Call: 1}, want: kfp.StateSucceeded, wantPolls: 3},
		{name: "401 fails fast", script: []string{"", "RUNNING", "SUCCEEDED"},
			fault:   &kfptest.Fault{Kind: kfptest.Unauthenticated, Call: 2},
			wantErr: func(err error) bool { return errors.Is(err, kfp.ErrAuthRequired) }, wantPolls: 2},
		{name: "login page fails fast", script: []string{"", "RUNNING", "SUCCEEDED"},
			fault:   &kfptest.Fault{Kind: kfptest.LoginPage, Call: 1},
			wantErr: func(err error) bool { return errors.Is(err, kfp.ErrAuthRequired) }, wantPolls: 1},
		{name: "403 fails fast", script: []string{"", "RUNNING", "SUCCEEDED"},
			fault:   &kfptest.Fault{Kind: kfptest.RBACDenied, Call: 1},
			wantErr: func(err error) bool { return errors.Is(err, kfp.ErrPermissionDenied) }, wantPolls: 1},
		{name: "deadline", script: []string{"", "RUNNING"}, timeout: 30 * time.Millisecond,
			wantErr: func(err error) bool {
				var te *kfp.WaitTimeoutError
				return errors.As(err, &te) && te.State == kfp.StateRunning
			}},
		{name: "finished on the last poll is not a timeout", script: []string{"", "SUCCEEDED"},
			fault: &kfptest.Fault{Kind: kfptest.Delay, Call: 1, Delay: 50 * time.Millisecond}, timeout: 10 * time.Millisecond,
			want: kfp.StateSucceeded, wantPolls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := kfptest.New(t, kfptest.Options{RunScript: tt.script})
			c := newClient(t, srv, kfp.Options{})
			r := startRun(t, c)
			if tt.fault != nil {
				srv.Inject(kfptest.RouteGetRun, *tt.fault)
			}
			var seen []kfp.RuntimeState
			got, err := c.WaitRun(t.Context(), r.RunID, kfp.WaitOptions{
				Interval: time.Millisecond, Timeout: tt.timeout,
				OnChange: func(r *kfp.Run) { seen = append(seen, r.State) },
			})
			if tt.wantErr != nil {
				if err == nil || !tt.wantErr(err) {
					t.Fatalf("WaitRun: got %v, want the expected error", err)
				}
			} else {
				if err != nil {
					t.Fatalf("WaitRun: %v", err)
				}
				if got.State != tt.want {
					t.Errorf("final state %s, want %s", got.State, tt.want)
				}
				if seen[len(seen)-1] != tt.want {
					t.Errorf("OnChange saw %v, want it to end with %s", seen, tt.want)
				}
			}
			if tt.wantPolls > 0 {
				if n := srv.Calls(kfptest.RouteGetRun); n != tt.wantPolls {
					t.Errorf("polled %d times, want %d", n, tt.wantPolls)
				}
			}
		})
	}
}

func TestWaitRunGivesUpAfterTooManyErrors(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{RunScript: []string{"", "RUNNING"}})
	c := newClient(t, srv, kfp.Options{})
	r := startRun(t, c)
	srv.Inject(kfptest.RouteGetRun, kfptest.Fault{Kind: kfptest.Unavailable})
	retries := 0
	_, err := c.WaitRun(t.Context(), r.RunID, kfp.WaitOptions{Interval: time.Millisecond, MaxErrors: 3,
		OnRetry: func(error) { retries++ }})
	if kfp.StatusCode(err) != 503 || retries != 3 {
		t.Fatalf("WaitRun: err %v after %d retries, want a 503 after 3 retries", err, retries)
	}
}

func TestTerminateAndListRuns(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{RunScript: []string{"", "RUNNING"}})
	c := newClient(t, srv, kfp.Options{})
	r := startRun(t, c)
	if _, err := c.GetRun(t.Context(), r.RunID); err != nil {
		t.Fatal(err)
	}
	if err := c.TerminateRun(t.Context(), r.RunID); err != nil {
		t.Fatalf("TerminateRun: %v", err)
	}
	if tr := srv.RequestsTo(kfptest.RouteTerminateRun); len(tr) != 1 || len(tr[0].Body) != 0 {
		t.Errorf("terminate requests %+v: want one with no body", tr)
	}
	got, err := c.WaitRun(t.Context(), r.RunID, kfp.WaitOptions{Interval: time.Millisecond})
	if err != nil || got.State != kfp.StateCanceled {
		t.Fatalf("WaitRun after terminate: %v, %v", got, err)
	}
	err = c.TerminateRun(t.Context(), r.RunID)
	if kfp.StatusCode(err) != 400 {
		t.Errorf("terminating a finished run: got %v, want a 400", err)
	}
	l, err := c.ListRuns(t.Context(), r.ExperimentID, kfp.ListOptions{SortBy: "created_at desc", PageSize: 5})
	if err != nil {
		t.Fatalf("ListRuns: %v", err)
	}
	if len(l.Runs) != 1 || l.Runs[0].RunID != r.RunID || l.TotalSize != 1 {
		t.Errorf("ListRuns = %+v", l)
	}
	q := srv.RequestsTo(kfptest.RouteListRuns)[0].Query
	if q.Get("experiment_id") != r.ExperimentID || q.Has("namespace") {
		t.Errorf("list query %v: want experiment_id and no namespace", q)
	}
}

func TestCreateRunRejectedLocally(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{})
	c := newClient(t, srv, kfp.Options{})
	spec := helloSpec(t)
	tests := []struct {
		name string
		req  kfp.RunRequest
		want string
	}{
		{"no name", kfp.RunRequest{PipelineSpec: spec}, "needs a name"},
		{"no source", kfp.RunRequest{DisplayName: "x"}, "needs an inline pipeline spec or a pipeline id"},
		{"two sources", kfp.RunRequest{DisplayName: "x", PipelineSpec: spec, PipelineID: "p"}, "not both"},
		{"unknown parameter", kfp.RunRequest{DisplayName: "x", PipelineSpec: spec, Parameters: map[string]any{"seed": 1, "nope": 1}}, "parameter nope is not an input"},
		{"wrong type", kfp.RunRequest{DisplayName: "x", PipelineSpec: spec, Parameters: map[string]any{"seed": "7"}}, `parameter seed: "7" is not a valid NUMBER_INTEGER`},
		{"missing required", kfp.RunRequest{DisplayName: "x", PipelineSpec: spec}, "parameter seed is required"},
	}
	for _, tt := range tests {
		_, err := c.CreateRun(t.Context(), tt.req)
		var ie *kfp.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an input error containing %q", tt.name, err, tt.want)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests sent for invalid runs", n)
	}
}

func TestCheckParameters(t *testing.T) {
	t.Parallel()
	spec := map[string]any{"root": map[string]any{"inputDefinitions": map[string]any{"parameters": map[string]any{
		"i": map[string]any{"parameterType": "NUMBER_INTEGER", "isOptional": true},
		"d": map[string]any{"parameterType": "NUMBER_DOUBLE", "isOptional": true},
		"s": map[string]any{"parameterType": "STRING", "isOptional": true},
		"b": map[string]any{"parameterType": "BOOLEAN", "isOptional": true},
		"l": map[string]any{"parameterType": "LIST", "isOptional": true},
		"m": map[string]any{"parameterType": "STRUCT", "isOptional": true},
	}}}}
	tests := []struct {
		params map[string]any
		ok     bool
	}{
		{map[string]any{"i": 3, "d": 1, "s": "x", "b": false, "l": []any{}, "m": map[string]any{}}, true},
		{map[string]any{"i": int64(3), "d": 0.5, "l": []string{"a"}}, true},
		{map[string]any{"i": 3.0}, true},
		{map[string]any{"i": 3.5}, false},
		{map[string]any{"i": "3"}, false},
		{map[string]any{"d": "0.5"}, false},
		{map[string]any{"s": 1}, false},
		{map[string]any{"b": "true"}, false},
		{map[string]any{"l": "[1]"}, false},
		{map[string]any{"m": []any{}}, false},
		{map[string]any{"x": 1}, false},
	}
	for _, tt := range tests {
		err := kfp.CheckParameters(spec, tt.params)
		if (err == nil) != tt.ok {
			t.Errorf("CheckParameters(%v) = %v, want ok %v", tt.params, err, tt.ok)
		}
	}
}
