package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mlpipe/mlpipe/platform"
	"github.com/mlpipe/mlpipe/runner"
)

// platformDepsIR: the secret of "use" is named by an output of "make-name",
// which no input of "use" mentions (no dependentTasks either).
const platformDepsIR = `
pipelineInfo: {name: platform-deps}
schemaVersion: 2.1.0
sdkVersion: kfp-2.7.0
root:
  dag:
    tasks:
      make-name:
        taskInfo: {name: make-name}
        componentRef: {name: comp-make-name}
      use:
        taskInfo: {name: use}
        componentRef: {name: comp-use}
components:
  comp-make-name:
    executorLabel: exec-make-name
    outputDefinitions:
      parameters:
        name: {parameterType: STRING}
  comp-use:
    executorLabel: exec-use
deploymentSpec:
  executors:
    exec-make-name:
      container: {image: x, command: [make-name]}
    exec-use:
      container: {image: x, command: [use]}
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-use:
          secretAsEnv:
          - secretNameParameter:
              taskOutputParameter: {producerTask: make-name, outputParameterKey: name}
            keyToEnv:
            - {secretKey: username, envVar: DB_USER}
`

// TestPlatformOutputNamesWait: a task whose secret is named by another
// task's output waits for that task and gets the secret it names.
func TestPlatformOutputNamesWait(t *testing.T) {
	secrets := secretStore(t)
	var mu sync.Mutex
	var order, env []string
	e := newEnv(t, map[string]behavior{
		"make-name": func(ctx context.Context, w *taskIO) int {
			sleepCtx(ctx, 200e6)
			mu.Lock()
			order = append(order, "make-name")
			mu.Unlock()
			w.setParam("name", "db-creds")
			return 0
		},
		"use": func(ctx context.Context, w *taskIO) int {
			mu.Lock()
			order = append(order, "use")
			env = w.task.Env
			mu.Unlock()
			return 0
		},
	})
	res, err := e.run(t.Context(), loadIR(t, platformDepsIR), nil, func(o *runner.Options) {
		o.Platform = platform.Sources{SecretsDir: secrets}
	})
	if err != nil || res.State != runner.Succeeded {
		t.Fatalf("run: %v %v", res, err)
	}
	if strings.Join(order, ",") != "make-name,use" {
		t.Errorf("order %v: use did not wait for the task naming its secret", order)
	}
	if !strings.Contains(strings.Join(env, "\n"), "DB_USER=alice") {
		t.Errorf("use's environment lacks the secret: %v", env)
	}
}

// TestCachedTaskNeedsNoSecret: the secrets a task reads are not part of its
// cache key, and a task served from the cache needs none of them.
func TestCachedTaskNeedsNoSecret(t *testing.T) {
	const ir = `
pipelineInfo: {name: cached-secret}
schemaVersion: 2.1.0
sdkVersion: kfp-2.7.0
root:
  dag:
    tasks:
      use:
        taskInfo: {name: use}
        componentRef: {name: comp-use}
        cachingOptions: {enableCache: true}
components:
  comp-use:
    executorLabel: exec-use
    outputDefinitions:
      parameters:
        out: {parameterType: STRING}
deploymentSpec:
  executors:
    exec-use:
      container: {image: x, command: [use]}
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-use:
          secretAsEnv:
          - secretNameParameter: {runtimeValue: {constant: db-creds}}
            keyToEnv:
            - {secretKey: username, envVar: DB_USER}
`
	secrets := secretStore(t)
	dir := filepath.Join(secrets, "db-creds")
	runs := 0
	e := newEnv(t, map[string]behavior{"use": func(ctx context.Context, w *taskIO) int {
		runs++
		w.setParam("out", "done")
		return 0
	}})
	opt := func(o *runner.Options) { o.Platform = platform.Sources{SecretsDir: secrets} }
	if res, err := e.run(t.Context(), loadIR(t, ir), nil, opt); err != nil || res.State != runner.Succeeded {
		t.Fatalf("first run: %v %v", res, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	res, err := e.run(t.Context(), loadIR(t, ir), nil, opt)
	if err != nil || res.State != runner.Succeeded {
		t.Fatalf("second run without the secret: %v %v", res, err)
	}
	if st := e.hist.task(t, res.RunID, "use").State; st != runner.Cached || runs != 1 {
		t.Errorf("second run: use %s after %d executions, want CACHED after 1", st, runs)
	}
}

// secretStore is a local secret store holding db-creds (username alice).
func secretStore(t *testing.T) string {
	t.Helper()
	secrets := t.TempDir()
	dir := filepath.Join(secrets, "db-creds")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "username"), []byte("alice"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secrets
}
