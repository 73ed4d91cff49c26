package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/internal/procfs"
)

// fakeEngine is a minimal Docker Engine API server for the image calls
// that cannot run against the real daemon here (push: there is no
// registry). It records the requests it answers.
type fakeEngine struct {
	mu       sync.Mutex
	images   map[string]string // name → inspect JSON
	requests []string          // "METHOD path?query"
	auth     []string          // X-Registry-Auth of pushes
	push     string            // the push stream
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Paths are /v1.41/images/<name>/<verb>; names contain slashes.
	path := strings.TrimPrefix(r.URL.Path, "/v1.41")
	f.requests = append(f.requests, r.Method+" "+path+"?"+r.URL.RawQuery)
	name, verb := path, ""
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		name, verb = path[:i], path[i+1:]
	}
	name = strings.TrimPrefix(name, "/images/")
	switch {
	case r.Method == http.MethodGet && path == "/_ping":
		w.Header().Set("Api-Version", "1.41")
		w.Write([]byte("OK"))
	case r.Method == http.MethodGet && verb == "json":
		js, ok := f.images[name]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"No such image: ` + name + `"}`))
			return
		}
		w.Write([]byte(js))
	case r.Method == http.MethodPost && verb == "tag":
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPost && verb == "push":
		f.auth = append(f.auth, r.Header.Get(registry.AuthHeader))
		w.Write([]byte(f.push))
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

func newFake(t *testing.T, f *fakeEngine) *Executor {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return newWithClient(cli, Options{})
}

func TestLocalOnly(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	e := newFake(t, &fakeEngine{images: map[string]string{
		"built:dev":    `{"Id":"sha256:1","RepoDigests":[],"Config":{"Labels":{}}}`,
		"pulled:1":     `{"Id":"sha256:2","RepoDigests":["pulled@sha256:abc"],"Config":{}}`,
		"busybox:1.36": `{"Id":"sha256:3","RepoDigests":[],"Config":{"Labels":{"mlpipe.stand_in_for":"busybox:1.36"}}}`,
		"mine:1":       `{"Id":"sha256:3","RepoDigests":[],"Config":{"Labels":{"mlpipe.stand_in_for":"busybox:1.36"}}}`,
	}})
	tests := []struct {
		image string
		want  bool
	}{
		{"built:dev", true},
		{"pulled:1", false},
		{"busybox:1.36", false},
		{"mine:1", true}, // the same image under a name it does not stand in for
		{"absent:1", false},
	}
	for _, tt := range tests {
		got, err := e.LocalOnly(context.Background(), tt.image)
		if err != nil {
			t.Fatalf("%s: %v", tt.image, err)
		}
		if got != tt.want {
			t.Errorf("LocalOnly(%s) = %v, want %v", tt.image, got, tt.want)
		}
	}
}

func TestPush(t *testing.T) {
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	creds := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"https://registry.example.com":{"auth":"`+creds+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakeEngine{push: `{"status":"The push refers to repository [registry.example.com/team/trainer]"}
{"status":"Pushing","id":"a1","progress":"[=>  ]"}
{"status":"Pushing","id":"a1","progress":"[==> ]"}
{"status":"Pushed","id":"a1"}
{"status":"dev: digest: sha256:feed size: 528"}
{"progressDetail":{},"aux":{"Tag":"dev","Digest":"sha256:feed","Size":528}}
`}
	e := newFake(t, f)
	var log strings.Builder
	ref, err := e.Push(context.Background(), "mlpipe/trainer:dev", "registry.example.com/team", &log)
	if err != nil {
		t.Fatal(err)
	}
	if want := "registry.example.com/team/mlpipe/trainer@sha256:feed"; ref != want {
		t.Errorf("pinned ref %q, want %q", ref, want)
	}
	wantReq := []string{
		"POST /images/mlpipe/trainer:dev/tag?repo=registry.example.com%2Fteam%2Fmlpipe%2Ftrainer&tag=dev",
		"POST /images/registry.example.com/team/mlpipe/trainer/push?tag=dev",
	}
	if d := cmp.Diff(wantReq, f.requests); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
	raw, err := base64.URLEncoding.DecodeString(f.auth[0])
	if err != nil {
		t.Fatalf("X-Registry-Auth %q: %v", f.auth[0], err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil || ac.Username != "alice" || ac.Password != "s3cret" {
		t.Errorf("auth sent %s (%v), want alice's credentials", raw, err)
	}
	// Progress ticks collapse to one line per status change.
	if n := strings.Count(log.String(), "a1: Pushing"); n != 1 {
		t.Errorf("progress log has %d 'a1: Pushing' lines, want 1:\n%s", n, log.String())
	}
}

func TestPushFailure(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	f := &fakeEngine{push: `{"status":"Preparing","id":"a1"}
{"errorDetail":{"message":"denied: requested access to the resource is denied"},"error":"denied: requested access to the resource is denied"}
`}
	e := newFake(t, f)
	_, err := e.Push(context.Background(), "trainer:dev", "registry.example.com", nil)
	var se *streamError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "push image registry.example.com/trainer:dev: denied") {
		t.Fatalf("got %v, want the daemon's denial naming the target", err)
	}
	// Anonymous pushes still send a (empty) credentials header: old
	// daemons reject a push without one.
	if len(f.auth) != 1 || f.auth[0] == "" {
		t.Errorf("X-Registry-Auth %q", f.auth)
	}
}

func TestPushTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		image, registry, want, wantErr string
	}{
		{"busybox:1.36", "registry.example.com/team", "registry.example.com/team/busybox:1.36", ""},
		{"mlpipe/trainer", "localhost:5000/", "localhost:5000/mlpipe/trainer:latest", ""},
		{"ghcr.io/org/app:v1", "https://reg.local", "reg.local/org/app:v1", ""},
		{"app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "reg.local", "", "referenced by digest"},
		{"Bad Name", "reg.local", "", "image reference"},
	}
	for _, tt := range tests {
		got, err := PushTarget(tt.image, tt.registry)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("PushTarget(%q, %q) error %v, want %q", tt.image, tt.registry, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("PushTarget(%q, %q) = %q, %v; want %q", tt.image, tt.registry, got, err, tt.want)
		}
	}
}

func TestReadStream(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := range 30 {
		lines = append(lines, `{"stream":"line `+itoa(i)+`\n"}`)
	}
	in := strings.Join(lines, "\n") + "\n" + `{"stream":"partial"}` + "\n" + `{"errorDetail":{"message":"The command '/bin/sh -c exit 3' returned a non-zero code: 3"},"error":"ignored"}`
	var log strings.Builder
	_, err := readStream(strings.NewReader(in), &log)
	var se *streamError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a stream error", err)
	}
	if se.Msg != "The command '/bin/sh -c exit 3' returned a non-zero code: 3" {
		t.Errorf("message %q", se.Msg)
	}
	wantTail := []string{}
	for i := 30 - tailLines + 1; i < 30; i++ {
		wantTail = append(wantTail, "line "+itoa(i))
	}
	wantTail = append(wantTail, "partial")
	if d := cmp.Diff(wantTail, se.Tail); d != "" {
		t.Errorf("tail (-want +got):\n%s", d)
	}
	if !strings.HasPrefix(log.String(), "line 0\nline 1\n") {
		t.Errorf("log starts %q", log.String()[:20])
	}
}

func TestAuthFromConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "config.json")
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	os.WriteFile(file, []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"`+enc("bob:pw")+`"},"reg.local:5000":{"identitytoken":"tok"}},"credsStore":"desktop"}`), 0o600)
	tests := []struct {
		file, host string
		want       registry.AuthConfig
	}{
		{file, "docker.io", registry.AuthConfig{Username: "bob", Password: "pw", ServerAddress: "https://index.docker.io/v1/"}},
		{file, "reg.local:5000", registry.AuthConfig{IdentityToken: "tok", ServerAddress: "reg.local:5000"}},
		{file, "other.example.com", registry.AuthConfig{}},
		{filepath.Join(dir, "missing.json"), "docker.io", registry.AuthConfig{}},
	}
	for _, tt := range tests {
		got, err := authFromConfig(tt.file, tt.host)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.host, d)
		}
	}
}

func TestOrphan(t *testing.T) {
	t.Parallel()
	e := newWithClient(nil, Options{StateDir: "/home/a/.local/share/mlpipe"})
	me, state := itoa(os.Getuid()), e.opts.StateDir
	mine := func(l map[string]string) map[string]string {
		l[LabelUID], l[LabelStateDir] = me, state
		return l
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"this process", mine(map[string]string{LabelPID: itoa(e.pid), LabelPIDStart: e.start, LabelHost: e.host}), false},
		{"a dead process", mine(map[string]string{LabelPID: "999999999", LabelHost: e.host}), true},
		{"a reused PID", mine(map[string]string{LabelPID: itoa(os.Getppid()), LabelPIDStart: "1", LabelHost: e.host}), true},
		{"a live process", mine(map[string]string{LabelPID: itoa(os.Getppid()), LabelPIDStart: procfs.StartTime(os.Getppid()), LabelHost: e.host}), false},
		{"another host", mine(map[string]string{LabelPID: "999999999", LabelHost: e.host + "-other"}), false},
		{"no PID", mine(map[string]string{LabelHost: e.host}), false},
		// Never another user's, another state dir's, or an unlabelled one.
		{"another user", map[string]string{LabelPID: "999999999", LabelHost: e.host, LabelUID: itoa(os.Getuid() + 1), LabelStateDir: state}, false},
		{"another state dir", map[string]string{LabelPID: "999999999", LabelHost: e.host, LabelUID: me, LabelStateDir: "/tmp/other"}, false},
		{"no owner labels", map[string]string{LabelPID: "999999999", LabelHost: e.host}, false},
	}
	for _, tt := range tests {
		if got := e.orphan(tt.labels); got != tt.want {
			t.Errorf("%s: orphan = %v, want %v", tt.name, got, tt.want)
		}
	}
	if e.start == "" {
		t.Error("the start time of this process is unknown")
	}
	if l := e.baseLabels(); l[LabelUID] != me || l[LabelStateDir] != state {
		t.Errorf("base labels %v lack the user and the state dir", l)
	}
}
