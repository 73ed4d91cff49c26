package runner

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"raw 'text'", "raw 'text'"},
		{3.0, "3"},
		{int64(7), "7"},
		{0.5, "0.5"},
		{1234567.5, "1234567.5"},
		{1e-9, "1e-09"},
		{true, "true"},
		{[]any{1.0, "a"}, `[1,"a"]`},
		{map[string]any{"b": 1.0, "a": []any{}}, `{"a":[],"b":1}`},
		{map[string]any{"html": "<&>"}, `{"html":"<&>"}`},
	}
	for _, tc := range tests {
		if got := FormatValue(tc.in); got != tc.want {
			t.Errorf("FormatValue(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func newPC() *placeholderContext {
	in := &ExecutorInput{
		Inputs: ExecInputs{
			ParameterValues: map[string]any{"name": "world", "n": 3.0, "tricky": "{{$.inputs.parameters['name']}}", "opt": "yes"},
			Artifacts: map[string]ArtifactList{"data": {Artifacts: []*RuntimeArtifact{
				{Name: "data", URI: "minio://b/k/data", Metadata: map[string]any{"rows": 10.0, "kind": "csv"}, local: "/tmp/staged/data"},
				{Name: "data", URI: "minio://b/k/data2", Metadata: map[string]any{}},
			}}},
		},
		Outputs: ExecOutputs{
			Parameters: map[string]OutputParameter{"out": {OutputFile: "/task/outputs/out"}},
			Artifacts:  map[string]ArtifactList{"model": {Artifacts: []*RuntimeArtifact{{Name: "model", URI: "/art/model", local: "/art/model", Metadata: map[string]any{}}}}},
			OutputFile: "/task/executor_output.json",
		},
	}
	return &placeholderContext{in: in, present: map[string]bool{"name": true, "data": true}, json: []byte(`{"x":1}`),
		path: func(a *RuntimeArtifact) string { return a.local }, job: JobInfo{JobUUID: "run-1", TaskName: "train", PipelineRoot: "/root"}}
}

func TestResolveArgs(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"parameters", []string{"--n={{$.inputs.parameters['n']}}", "{{$.inputs.parameters[\"name\"]}}"}, []string{"--n=3", "world"}},
		{"single pass: substituted text is not rescanned", []string{"{{$.inputs.parameters['tricky']}}"}, []string{"{{$.inputs.parameters['name']}}"}},
		{"artifact fields", []string{"{{$.inputs.artifacts['data'].path}}", "{{$.inputs.artifacts['data'].uri}}", "{{$.inputs.artifacts['data'].metadata['rows']}}", "{{$.inputs.artifacts['data'].metadata}}"},
			[]string{"/tmp/staged/data", "minio://b/k/data", "10", `{"kind":"csv","rows":10}`}},
		{"outputs", []string{"{{$.outputs.parameters['out'].output_file}}", "{{$.outputs.artifacts['model'].path}}", "{{$.outputs.output_file}}"},
			[]string{"/task/outputs/out", "/art/model", "/task/executor_output.json"}},
		{"executor input", []string{"--executor_input", "{{$}}"}, []string{"--executor_input", `{"x":1}`}},
		{"job placeholders", []string{"{{$.pipeline_job_uuid}}/{{$.pipeline_task_name}}@{{$.pipeline_root}}"}, []string{"run-1/train@/root"}},
		{"IfPresent then (list)", []string{`{"IfPresent": {"InputName": "name", "Then": ["--name", "{{$.inputs.parameters['name']}}"]}}`}, []string{"--name", "world"}},
		{"IfPresent absent without else disappears", []string{"a", `{"IfPresent": {"InputName": "opt", "Then": ["--opt"]}}`, "b"}, []string{"a", "b"}},
		{"IfPresent else", []string{`{"IfPresent": {"InputName": "missing", "Then": "x", "Else": "--default"}}`}, []string{"--default"}},
		{"IfPresent checks artifacts", []string{`{"IfPresent": {"InputName": "data", "Then": "has-data"}}`}, []string{"has-data"}},
		{"Concat", []string{`{"Concat": ["--n=", "{{$.inputs.parameters['n']}}", {"IfPresent": {"InputName": "name", "Then": ",named"}}]}`}, []string{"--n=3,named"}},
		{"whole artifact list", []string{"{{$.inputs.artifacts['data']}}"}, []string{`[{"name":"data","type":{"schemaTitle":""},"uri":"minio://b/k/data","metadata":{"kind":"csv","rows":10}},{"name":"data","type":{"schemaTitle":""},"uri":"minio://b/k/data2","metadata":{}}]`}},
		{"JSON that is not structural stays", []string{`{"a": 1}`}, []string{`{"a": 1}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newPC().resolveArgs(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveArgsErrors(t *testing.T) {
	for _, in := range []string{
		"{{$.inputs.parameters['nope']}}",
		"{{$.inputs.artifacts['nope'].path}}",
		"{{$.outputs.parameters['nope'].output_file}}",
		"{{$.inputs.artifacts['data'].size}}",
		"{{$.pipeline_google_cloud_project_id}}",
	} {
		if _, err := newPC().resolveArgs([]string{in}); err == nil {
			t.Errorf("%s: no error", in)
		} else if strings.Contains(err.Error(), "panic") {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func TestSelfReferencesInStringInputs(t *testing.T) {
	pc := newPC()
	pc.in.Inputs.ParameterValues["greeting"] = "hello {{$.inputs.parameters['name']}} from {{$.pipeline_task_name}}"
	if err := pc.resolveSelfReferences(); err != nil {
		t.Fatal(err)
	}
	if got := pc.in.Inputs.ParameterValues["greeting"]; got != "hello world from train" {
		t.Errorf("greeting = %q", got)
	}
}

func TestDisplayName(t *testing.T) {
	for in, want := range map[string]string{
		"train":                               "train",
		"exit-handler-1/for-loop-2[3]/train":  "train[3]",
		"exit-handler-1/nested/greet":         "nested/greet",
		"for-loop-1[0]/for-loop-2[1]/x":       "x[0][1]",
		"condition-3/celebrate":               "celebrate",
		"for-loop-1[2]/condition-4/inner/say": "inner[2]/say",
	} {
		if got := DisplayName(in); got != want {
			t.Errorf("DisplayName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWithinURI(t *testing.T) {
	for _, tc := range []struct {
		prefix, uri string
		want        bool
	}{
		{"/srv/a", "/srv/a/b", true},
		{"/srv/a/", "/srv/a/b/c", true},
		{"/srv/a", "/srv/a", false},
		{"/srv/a", "/srv/ab", false},
		{"/srv/a", "/srv/a/../b", false},
		{"/srv/a", "/srv/a/./b", false},
		{"/srv/a", "srv/a/b", false},
		{"/srv/a", "file:///srv/a/b", true},
		{"minio://bkt/root", "minio://bkt/root/registry/m/v1", true},
		{"minio://bkt/root", "minio://bkt/rootx/a", false},
		{"minio://bkt/root", "minio://other/root/a", false},
		{"minio://bkt/root", "s3://bkt/root/a", false},
		{"minio://bkt/root", "minio://bkt/root/../x", false},
		{"minio://bkt", "minio://bkt/a", true},
		{"minio://bkt/root", "/bkt/root/a", false},
	} {
		if got := withinURI(tc.prefix, tc.uri); got != tc.want {
			t.Errorf("withinURI(%q, %q) = %v, want %v", tc.prefix, tc.uri, got, tc.want)
		}
	}
}
