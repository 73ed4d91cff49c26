package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/kfp/kfptest"
)

// These tests run the command in process against the fake KFP server; none
// reaches the network. They set environment variables, so they do not run
// in parallel.

const quickstart = "../../pipelines/quickstart"

type submitResult struct {
	code           int
	stdout, stderr string
}

// submitEnv isolates the configuration: state and config directories in a
// temporary home, and none of the KFP variables of the caller.
func submitEnv(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("MLPIPE_STATE_DIR", filepath.Join(home, "state"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	for _, k := range []string{"KF_PIPELINES_ENDPOINT", "KF_PIPELINES_SA_TOKEN_PATH", "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
		"KF_PIPELINES_NAMESPACE", "KF_PIPELINES_UI_ENDPOINT", "MLPIPE_KFP_HOST", "MLPIPE_KFP_NAMESPACE", "MLPIPE_KFP_TOKEN_FILE",
		"MLPIPE_KFP_EXPERIMENT", "MLPIPE_KFP_COOKIE", "MLPIPE_KFP_USER_ID", "MLPIPE_KFP_CA_FILE", "MLPIPE_DOCKER_REGISTRY",
		"MLPIPE_PIPELINE_ROOT", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"} {
		t.Setenv(k, "")
	}
	return home
}

func submit(t *testing.T, args ...string) submitResult {
	t.Helper()
	return runInProcess(t, append([]string{"submit"}, args...)...)
}

// runInProcess calls run, main's function. run does not pass its args to
// cobra, which reads os.Args, so os.Args is set for the call as well.
func runInProcess(t *testing.T, args ...string) submitResult {
	t.Helper()
	saved := os.Args
	os.Args = append([]string{"mlpipe"}, args...)
	defer func() { os.Args = saved }()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return submitResult{code: code, stdout: out.String(), stderr: errb.String()}
}

func (r submitResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// createdRun decodes the body of the only create-run request.
func createdRun(t *testing.T, srv *kfptest.Server) map[string]any {
	t.Helper()
	reqs := srv.RequestsTo(kfptest.RouteCreateRun)
	if len(reqs) != 1 {
		t.Fatalf("got %d create-run requests, want 1", len(reqs))
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	return body
}

var runLine = regexp.MustCompile(`run (\S+) submitted to experiment (\S+)`)

func TestSubmitQuickstart(t *testing.T) {
	submitEnv(t)
	srv := kfptest.New(t, kfptest.Options{})
	r := submit(t, quickstart, "--host", srv.URL(), "-p", "who=kfp", "-p", "repeat=5")
	if r.code != 0 {
		t.Fatalf("submit: %s", r)
	}
	m := runLine.FindStringSubmatch(r.stdout)
	if m == nil || m[2] != "Default" {
		t.Fatalf("stdout lacks the run line:\n%s", r)
	}
	if url := srv.URL() + "/#/runs/details/" + m[1]; !strings.Contains(r.stdout, url) {
		t.Errorf("stdout lacks the UI address %s:\n%s", url, r.stdout)
	}
	body := createdRun(t, srv)
	if d := cmp.Diff(map[string]any{"parameters": map[string]any{"who": "kfp", "repeat": float64(5)}}, body["runtime_config"]); d != "" {
		t.Errorf("runtime_config (-want +got):\n%s", d)
	}
	if name, _ := body["display_name"].(string); !regexp.MustCompile(`^pipeline\.yaml \d{4}-\d\d-\d\d \d\d-\d\d-\d\d$`).MatchString(name) {
		t.Errorf("default run name %q, want \"pipeline.yaml YYYY-MM-DD HH-MM-SS\"", name)
	}
	spec, _ := body["pipeline_spec"].(map[string]any)
	if info, _ := spec["pipelineInfo"].(map[string]any); info["name"] != "quickstart" || spec["schemaVersion"] != "2.1.0" {
		t.Errorf("inline spec: pipelineInfo %v schemaVersion %v", spec["pipelineInfo"], spec["schemaVersion"])
	}
	if body["experiment_id"] == nil || srv.Calls(kfptest.RouteCreateExperiment) != 1 {
		t.Errorf("the run was not placed in a new Default experiment: %v", body["experiment_id"])
	}
	if srv.Calls(kfptest.RouteHealthz) != 1 {
		t.Errorf("healthz was not checked")
	}
}

func TestSubmitCompiledIRWithOptions(t *testing.T) {
	home := submitEnv(t)
	ir := filepath.Join(home, "quickstart.json")
	if r := runInProcess(t, "compile", quickstart, "-o", ir, "--format", "json"); r.code != 0 {
		t.Fatalf("compile: %s", r)
	}
	srv := kfptest.New(t, kfptest.Options{})
	t.Setenv("KF_PIPELINES_ENDPOINT", srv.URL()+"/")
	t.Setenv("KF_PIPELINES_DEFAULT_EXPERIMENT_NAME", "from-env")
	r := submit(t, ir, "--run-name", "nightly 1", "--pipeline-root", "minio://bucket/root")
	if r.code != 0 {
		t.Fatalf("submit: %s", r)
	}
	body := createdRun(t, srv)
	if body["display_name"] != "nightly 1" {
		t.Errorf("display_name %v", body["display_name"])
	}
	if d := cmp.Diff(map[string]any{"parameters": map[string]any{}, "pipeline_root": "minio://bucket/root"}, body["runtime_config"]); d != "" {
		t.Errorf("runtime_config (-want +got):\n%s", d)
	}
	if m := runLine.FindStringSubmatch(r.stdout); m == nil || m[2] != "from-env" {
		t.Errorf("experiment from KF_PIPELINES_DEFAULT_EXPERIMENT_NAME not used:\n%s", r)
	}
	// Without a name, the run is named after the IR file.
	r = submit(t, ir)
	if r.code != 0 {
		t.Fatalf("second submit: %s", r)
	}
	reqs := srv.RequestsTo(kfptest.RouteCreateRun)
	var second map[string]any
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &second); err != nil {
		t.Fatal(err)
	}
	if name, _ := second["display_name"].(string); !strings.HasPrefix(name, "quickstart.json ") {
		t.Errorf("default run name %q, want it to start with the file name", name)
	}
}

func TestSubmitWait(t *testing.T) {
	tests := []struct {
		name     string
		script   []string
		extra    []string
		wantCode int
		stdout   []string
		stderr   []string
	}{
		{name: "succeeds", script: []string{"", "PENDING", "RUNNING", "SUCCEEDED"}, wantCode: 0,
			stdout: []string{" PENDING\n", " RUNNING\n", " SUCCEEDED\n"}},
		{name: "fails", script: []string{"", "RUNNING", "FAILED"}, wantCode: 3,
			stdout: []string{" RUNNING\n", " FAILED\n"}, stderr: []string{"FAILED: task write failed (failed with exit code 1); see http"}},
		{name: "cancelled", script: []string{"", "RUNNING", "CANCELING", "CANCELED"}, wantCode: 3,
			stdout: []string{" CANCELING\n", " CANCELED\n"}, stderr: []string{"CANCELED"}},
		{name: "times out", script: []string{"", "RUNNING"}, extra: []string{"--timeout", "50ms"}, wantCode: 1,
			stderr: []string{"is still RUNNING after 50ms: stopped waiting; the run goes on: http"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			submitEnv(t)
			srv := kfptest.New(t, kfptest.Options{RunScript: tt.script})
			srv.Inject(kfptest.RouteGetRun, kfptest.Fault{Kind: kfptest.Unavailable, Call: 2})
			args := append([]string{quickstart, "--host", srv.URL(), "--wait", "--poll-interval", "1ms"}, tt.extra...)
			r := submit(t, args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", r.code, tt.wantCode, r)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
		})
	}
}

func TestSubmitInvalidInput(t *testing.T) {
	tests := []struct {
		name   string
		opts   kfptest.Options
		args   []string
		noHost bool
		want   string
	}{
		{name: "mistyped parameter", args: []string{"-p", "repeat=many"}, want: "parameter repeat"},
		{name: "unknown parameter", args: []string{"-p", "colour=red"}, want: "unknown parameter(s) colour"},
		{name: "no host", noHost: true, want: "no KFP host"},
		{name: "bad host", args: []string{"--host", "ftp://kfp"}, noHost: true, want: "scheme must be http or https"},
		{name: "timeout without wait", args: []string{"--timeout", "1m"}, want: "--timeout goes with --wait"},
		{name: "upload-only with a run option", args: []string{"--upload-only", "--wait"}, want: "--upload-only"},
		{name: "multi-user without a namespace", opts: kfptest.Options{MultiUser: true}, want: "is multi-user: pass --namespace"},
		{name: "push without a registry", args: []string{"--push"}, want: "--push needs a registry"},
		{name: "missing pipeline", args: []string{"--poll-interval", "1s"}, want: "cannot open: no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			submitEnv(t)
			srv := kfptest.New(t, tt.opts)
			path := quickstart
			if tt.name == "missing pipeline" {
				path = "does/not/exist.yaml"
			}
			args := append([]string{path}, tt.args...)
			if !tt.noHost {
				args = append(args, "--host", srv.URL())
			}
			r := submit(t, args...)
			wantCode := 2 // a missing file is invalid input too
			if r.code != wantCode || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, want %d with %q\n%s", r.code, wantCode, tt.want, r)
			}
			if n := srv.Calls(kfptest.RouteCreateRun); n != 0 {
				t.Errorf("%d runs created", n)
			}
		})
	}
}

func TestSubmitMultiUser(t *testing.T) {
	submitEnv(t)
	srv := kfptest.New(t, kfptest.Options{MultiUser: true, Healthz: kfptest.HealthzUI, BasePath: "/pipeline",
		AcceptUserID: true, Namespaces: []string{"kubeflow-user-example-com"}})
	r := submit(t, quickstart, "--host", srv.URL(), "--namespace", "kubeflow-user-example-com",
		"--experiment", "nightly", "--user-id", "user@example.com")
	if r.code != 0 {
		t.Fatalf("submit: %s", r)
	}
	var expBody map[string]any
	if err := json.Unmarshal(srv.RequestsTo(kfptest.RouteCreateExperiment)[0].Body, &expBody); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]any{"display_name": "nightly", "namespace": "kubeflow-user-example-com"}, expBody); d != "" {
		t.Errorf("experiment body (-want +got):\n%s", d)
	}
	if l := srv.RequestsTo(kfptest.RouteListExperiments)[0].Query.Get("namespace"); l != "kubeflow-user-example-com" {
		t.Errorf("experiment lookup namespace %q", l)
	}
	if createdRun(t, srv)["experiment_id"] == nil {
		t.Error("the run has no experiment_id")
	}
	if !strings.Contains(r.stdout, srv.URL()+"/#/runs/details/") {
		t.Errorf("UI address does not keep the /pipeline prefix:\n%s", r.stdout)
	}
	// Another profile's namespace: permission denied, naming the host.
	r = submit(t, quickstart, "--host", srv.URL(), "--namespace", "team-b", "--user-id", "user@example.com")
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied at "+srv.URL()) {
		t.Errorf("submit to team-b: %s", r)
	}
}

func TestSubmitAuth(t *testing.T) {
	home := submitEnv(t)
	const token = "sa-token-0123456789"
	tokenFile := filepath.Join(home, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := kfptest.New(t, kfptest.Options{BasePath: "/pipeline", RequireBearer: token})
	t.Setenv("KF_PIPELINES_SA_TOKEN_PATH", tokenFile)
	if r := submit(t, quickstart, "--host", srv.URL()); r.code != 0 {
		t.Fatalf("submit with the token file from the environment: %s", r)
	}
	for _, q := range srv.Requests() {
		if q.Route != kfptest.RouteHealthz && q.Header.Get("Authorization") != "Bearer "+token {
			t.Errorf("%s %s without the bearer token", q.Method, q.Path)
		}
	}
	// A stale token: a clear error naming the host, never the token.
	srv.SetBearer("another-token")
	r := submit(t, quickstart, "--host", srv.URL())
	if r.code != 1 || !strings.Contains(r.stderr, "authentication required at "+srv.URL()) {
		t.Errorf("submit with a stale token: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, token) {
		t.Errorf("the token is printed: %s", r)
	}
	// A login page in front of the API.
	login := kfptest.New(t, kfptest.Options{})
	login.Inject(kfptest.RouteHealthz, kfptest.Fault{Kind: kfptest.Redirect})
	r = submit(t, quickstart, "--host", login.URL(), "--cookie", "authservice_session=cookie-secret")
	if r.code != 1 || !strings.Contains(r.stderr, "authentication required at "+login.URL()) || strings.Contains(r.stderr, "cookie-secret") {
		t.Errorf("submit behind a login redirect: %s", r)
	}
}

func TestSubmitUploadOnly(t *testing.T) {
	submitEnv(t)
	srv := kfptest.New(t, kfptest.Options{})
	r := submit(t, quickstart, "--host", srv.URL(), "--upload-only")
	if r.code != 0 || !strings.Contains(r.stdout, "created pipeline quickstart (") {
		t.Fatalf("first upload: %s", r)
	}
	if !strings.Contains(r.stdout, srv.URL()+"/#/pipelines/details/") {
		t.Errorf("no pipeline UI address:\n%s", r.stdout)
	}
	r = submit(t, quickstart, "--host", srv.URL(), "--upload-only", "--version-name", "quickstart-v2")
	if r.code != 0 || !strings.Contains(r.stdout, "added version quickstart-v2 (") {
		t.Fatalf("second upload: %s", r)
	}
	r = submit(t, quickstart, "--host", srv.URL(), "--upload-only")
	if r.code != 0 || !strings.Contains(r.stdout, "added version quickstart-2") {
		t.Fatalf("third upload (default version name): %s", r)
	}
	up := srv.RequestsTo(kfptest.RouteUploadPipeline)
	vers := srv.RequestsTo(kfptest.RouteUploadVersion)
	if len(up) != 1 || len(vers) != 2 {
		t.Fatalf("%d pipeline uploads and %d version uploads, want 1 and 2", len(up), len(vers))
	}
	if q := up[0].Query; q.Get("name") != "quickstart" || !strings.HasPrefix(q.Get("description"), "Greet someone") {
		t.Errorf("upload query %v", q)
	}
	if f := up[0].Upload; f == nil || f.FileName != "pipeline.yaml" || !bytes.Contains(f.Content, []byte("schemaVersion: 2.1.0")) {
		t.Errorf("uploaded file %+v", f)
	}
	if n := srv.Calls(kfptest.RouteCreateRun); n != 0 {
		t.Errorf("--upload-only created %d runs", n)
	}
}

// fakeImages is an imageChecker: images in local exist only here.
type fakeImages struct {
	local  map[string]bool
	pushed []string
}

func (f *fakeImages) LocalOnly(_ context.Context, image string) (bool, error) {
	return f.local[image], nil
}

func (f *fakeImages) Push(_ context.Context, image, registry string) (string, error) {
	f.pushed = append(f.pushed, image+" -> "+registry)
	name, _, _ := strings.Cut(image, ":")
	return registry + "/" + name + "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", nil
}

func TestSubmitLocalImages(t *testing.T) {
	submitEnv(t)
	fake := &fakeImages{local: map[string]bool{"busybox:1.36": true}}
	old := submitImageChecker
	submitImageChecker = func(*app) (imageChecker, error) { return fake, nil }
	t.Cleanup(func() { submitImageChecker = old })
	srv := kfptest.New(t, kfptest.Options{})

	r := submit(t, quickstart, "--host", srv.URL())
	if r.code != 2 || !strings.Contains(r.stderr, "busybox:1.36 exist only on this machine") {
		t.Fatalf("local-only image without --push: %s", r)
	}
	r = submit(t, quickstart, "--host", srv.URL(), "--push")
	if r.code != 2 || !strings.Contains(r.stderr, "--push needs a registry") {
		t.Fatalf("--push without a registry: %s", r)
	}
	t.Setenv("MLPIPE_DOCKER_REGISTRY", "registry.example.com/team")
	r = submit(t, quickstart, "--host", srv.URL(), "--push")
	if r.code != 0 {
		t.Fatalf("--push: %s", r)
	}
	if d := cmp.Diff([]string{"busybox:1.36 -> registry.example.com/team"}, fake.pushed); d != "" {
		t.Errorf("pushed (-want +got):\n%s", d)
	}
	spec := createdRun(t, srv)["pipeline_spec"].(map[string]any)
	execs := spec["deploymentSpec"].(map[string]any)["executors"].(map[string]any)
	for label, e := range execs {
		img := e.(map[string]any)["container"].(map[string]any)["image"]
		if !strings.HasPrefix(img.(string), "registry.example.com/team/busybox@sha256:") {
			t.Errorf("executor %s image %v, want it pinned by digest", label, img)
		}
	}
}

func TestSubmitTLS(t *testing.T) {
	home := submitEnv(t)
	srv := kfptest.New(t, kfptest.Options{TLS: true})
	ca := filepath.Join(home, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := submit(t, quickstart, "--host", srv.URL()); r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("unknown CA: %s", r)
	}
	if r := submit(t, quickstart, "--host", srv.URL(), "--ca-file", ca); r.code != 0 {
		t.Errorf("--ca-file: %s", r)
	}
	if r := submit(t, quickstart, "--host", srv.URL(), "--insecure-skip-verify"); r.code != 0 {
		t.Errorf("--insecure-skip-verify: %s", r)
	}
	if r := submit(t, quickstart, "--host", srv.URL(), "--ca-file", filepath.Join(home, "missing.pem")); r.code != 2 {
		t.Errorf("missing CA file: %s", r)
	}
}

// An upload needs no parameter values, a required parameter included; the
// first version of a new pipeline takes --version-name; a version name that
// exists is refused before anything is uploaded, without the server's stack.
func TestSubmitUploadVersions(t *testing.T) {
	home := submitEnv(t)
	srv := kfptest.New(t, kfptest.Options{})
	dir := writeFiles(t, map[string]string{
		"pipeline.yaml": "name: needs-input\ninputs:\n  who: {type: String}\ntasks:\n  hello: {component: c.yaml, inputs: {who: \"${{ inputs.who }}\"}}\n",
		"c.yaml":        "name: c\ninputs: [{name: who, type: String}]\nimplementation: {container: {image: busybox, command: [echo, {inputValue: who}]}}\n",
	})
	_ = home
	r := submit(t, dir, "--host", srv.URL(), "--upload-only", "--version-name", "v1")
	if r.code != 0 || !strings.Contains(r.stdout, "created version v1 (") || !strings.Contains(r.stdout, "of the new pipeline needs-input (") {
		t.Fatalf("first upload with a required parameter and --version-name: %s", r)
	}
	if n, m := srv.Calls(kfptest.RouteCreatePipeline), srv.Calls(kfptest.RouteUploadPipeline); n != 1 || m != 0 {
		t.Errorf("%d pipeline creations and %d pipeline uploads, want 1 and 0", n, m)
	}
	vers := srv.RequestsTo(kfptest.RouteUploadVersion)
	if len(vers) != 1 || vers[0].Query.Get("name") != "v1" {
		t.Fatalf("version uploads: %+v", vers)
	}
	r = submit(t, dir, "--host", srv.URL(), "--upload-only", "--version-name", "v1")
	want := `version "v1" of pipeline "needs-input" already exists`
	if r.code != 2 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "github.com/") {
		t.Fatalf("duplicate version: want exit 2 with %q and no stack trace: %s", want, r)
	}
	if n := srv.Calls(kfptest.RouteUploadVersion); n != 1 {
		t.Errorf("the duplicate was uploaded (%d version uploads)", n)
	}
	r = submit(t, dir, "--host", srv.URL(), "--upload-only", "--version-name", "v2")
	if r.code != 0 || !strings.Contains(r.stdout, "added version v2 (") {
		t.Fatalf("second version: %s", r)
	}
}

// The kfp.Client conventions: the namespace of ~/.config/kfp/context.json,
// KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME, --service-account, --no-cache, and
// an API server that is still starting.
func TestSubmitKFPClientConventions(t *testing.T) {
	home := submitEnv(t)
	t.Setenv("HOME", home)
	if err := os.MkdirAll(filepath.Join(home, ".config", "kfp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "kfp", "context.json"), []byte(`{"namespace": "kubeflow-user-example-com"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME", "overridden")
	srv := kfptest.New(t, kfptest.Options{MultiUser: true, AcceptUserID: true, Namespaces: []string{"kubeflow-user-example-com"}})
	srv.Inject(kfptest.RouteHealthz, kfptest.Fault{Kind: kfptest.Unavailable, Call: 1})
	srv.Inject(kfptest.RouteHealthz, kfptest.Fault{Kind: kfptest.Unavailable, Call: 2})
	r := submit(t, quickstart, "--host", srv.URL(), "--user-id", "u@example.com", "--experiment", "mine",
		"--service-account", "pipeline-runner", "--no-cache")
	if r.code != 0 {
		t.Fatalf("submit: %s", r)
	}
	if n := srv.Calls(kfptest.RouteHealthz); n != 3 || !strings.Contains(r.stderr, "waiting up to 30s for KFP at") {
		t.Errorf("healthz called %d times (want 3: two 503s, then ready); stderr %q", n, r.stderr)
	}
	var exp map[string]any
	if err := json.Unmarshal(srv.RequestsTo(kfptest.RouteCreateExperiment)[0].Body, &exp); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]any{"display_name": "overridden", "namespace": "kubeflow-user-example-com"}, exp); d != "" {
		t.Errorf("experiment (-want +got):\n%s", d)
	}
	body := createdRun(t, srv)
	if body["service_account"] != "pipeline-runner" {
		t.Errorf("service_account = %v", body["service_account"])
	}
	spec := body["pipeline_spec"].(map[string]any)
	tasks := spec["root"].(map[string]any)["dag"].(map[string]any)["tasks"].(map[string]any)
	if len(tasks) == 0 {
		t.Fatal("no tasks in the submitted spec")
	}
	for name, tk := range tasks {
		if co, _ := tk.(map[string]any)["cachingOptions"].(map[string]any); co["enableCache"] != false {
			t.Errorf("task %s: cachingOptions %v, want enableCache false", name, co)
		}
	}
}

// Pipeline packages: a .zip or .tar.gz holding one IR file is uploaded and
// submitted like the file; several or no pipeline files are refused.
func TestSubmitPipelinePackages(t *testing.T) {
	home := submitEnv(t)
	srv := kfptest.New(t, kfptest.Options{})
	ir := filepath.Join(home, "pipeline.yaml")
	if r := runInProcess(t, "compile", quickstart, "-o", ir); r.code != 0 {
		t.Fatalf("compile: %s", r)
	}
	src, err := os.ReadFile(ir)
	if err != nil {
		t.Fatal(err)
	}
	zipOf := func(files map[string][]byte) string {
		p := filepath.Join(t.TempDir(), "p.zip")
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for n, c := range files {
			w, _ := zw.Create(n)
			_, _ = w.Write(c)
		}
		_ = zw.Close()
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tgz := filepath.Join(home, "p.tar.gz")
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: "README", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hi"))
	_ = tw.WriteHeader(&tar.Header{Name: "pipeline.yaml", Mode: 0o644, Size: int64(len(src)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(src)
	_ = tw.Close()
	_ = gz.Close()
	if err := os.WriteFile(tgz, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := submit(t, zipOf(map[string][]byte{"pipeline.yaml": src}), "--host", srv.URL(), "--upload-only"); r.code != 0 || !strings.Contains(r.stdout, "created pipeline quickstart") {
		t.Fatalf("zip upload: %s", r)
	}
	if f := srv.RequestsTo(kfptest.RouteUploadPipeline)[0].Upload; f == nil || !bytes.Equal(f.Content, src) && !bytes.Contains(f.Content, []byte("schemaVersion: 2.1.0")) {
		t.Errorf("uploaded %+v", f)
	}
	if r := submit(t, tgz, "--host", srv.URL()); r.code != 0 || srv.Calls(kfptest.RouteCreateRun) != 1 {
		t.Fatalf("tar.gz run: %s", r)
	}
	// A package that expands without end is refused before it is read
	// through: 300 MiB of zeros in front of the pipeline file.
	bomb := filepath.Join(home, "bomb.tar.gz")
	b.Reset()
	gz = gzip.NewWriter(&b)
	tw = tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: "zeros.bin", Mode: 0o644, Size: 300 << 20, Typeflag: tar.TypeReg})
	zeros := make([]byte, 1<<20)
	for i := 0; i < 300; i++ {
		_, _ = tw.Write(zeros)
	}
	_ = tw.WriteHeader(&tar.Header{Name: "pipeline.yaml", Mode: 0o644, Size: int64(len(src)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(src)
	_ = tw.Close()
	_ = gz.Close()
	if err := os.WriteFile(bomb, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := submit(t, bomb, "--host", srv.URL(), "--upload-only"); r.code != 2 || !strings.Contains(r.stderr, "expands to more than 256 MiB") {
		t.Errorf("gzip bomb: %s", r)
	}
	for name, files := range map[string]map[string][]byte{
		"several pipeline files": {"a.yaml": src, "b.json": []byte("{}")},
		"no pipeline file":       {"README": []byte("x")},
	} {
		if r := submit(t, zipOf(files), "--host", srv.URL(), "--upload-only"); r.code != 2 || !strings.Contains(r.stderr, name[:8]) {
			t.Errorf("%s: %s", name, r)
		}
	}
}

// --wait follows the run's tasks as the server reports them; --output json
// gives one event per line.
func TestSubmitWaitFollowsTasks(t *testing.T) {
	submitEnv(t)
	srv := kfptest.New(t, kfptest.Options{RunScript: []string{"", "RUNNING", "FAILED"}})
	r := submit(t, quickstart, "--host", srv.URL(), "--wait", "--poll-interval", "1ms")
	if r.code != 3 {
		t.Fatalf("exit %d: %s", r.code, r)
	}
	for _, re := range []string{`(?m) task count RUNNING$`, `(?m) task greet SUCCEEDED$`, `(?m) task write FAILED: failed with exit code 1$`, `(?m) run \S+ FAILED$`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("stdout lacks %s:\n%s", re, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "driver") {
		t.Errorf("Argo's driver nodes are shown:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "task write failed (failed with exit code 1)") {
		t.Errorf("the final line does not name the failed task:\n%s", r.stderr)
	}
	r = submit(t, quickstart, "--host", srv.URL(), "--wait", "--poll-interval", "1ms", "--output", "json")
	var events []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		events = append(events, ev)
	}
	if len(events) < 4 || events[0]["event"] != "submitted" || events[len(events)-1]["state"] != "FAILED" || events[len(events)-1]["task"] != nil {
		t.Fatalf("events: %v", events)
	}
	found := false
	for _, ev := range events {
		if ev["task"] == "write" && ev["state"] == "FAILED" && ev["message"] == "failed with exit code 1" && ev["run_id"] == events[0]["run_id"] {
			found = true
		}
	}
	if !found {
		t.Errorf("no FAILED event for task write: %v", events)
	}
}

// A new pipeline whose first version fails to upload is removed again: an
// upload is all or nothing.
func TestSubmitFailedFirstVersionLeavesNoPipeline(t *testing.T) {
	submitEnv(t)
	srv := kfptest.New(t, kfptest.Options{})
	srv.Inject(kfptest.RouteUploadVersion, kfptest.Fault{Kind: kfptest.Unavailable, Call: 1})
	r := submit(t, quickstart, "--host", srv.URL(), "--upload-only", "--version-name", "v1")
	if r.code == 0 {
		t.Fatalf("the version upload failed but submit succeeded: %s", r)
	}
	if n := srv.Calls(kfptest.RouteDeletePipeline); n != 1 {
		t.Errorf("%d pipeline deletions, want 1", n)
	}
	r = submit(t, quickstart, "--host", srv.URL(), "--upload-only", "--version-name", "v1")
	if r.code != 0 || !strings.Contains(r.stdout, "created version v1 (") || srv.Calls(kfptest.RouteCreatePipeline) != 2 {
		t.Errorf("the retried upload did not create the pipeline anew: %s", r)
	}
}
