package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mlpipe/mlpipe/contract"
)

// Secret values of the fixture; no message may contain them.
const (
	awsKey    = "AKIA-s3cr3t-value"
	awsRegion = "eu-west-1-region"
	dbPass    = "p@ss-w0rd-XYZ"
	dbUser    = "admin-user-name"
)

var secretValues = []string{awsKey, awsRegion, dbPass, dbUser}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
}

// secretsFixture makes a secrets directory with a directory secret "aws"
// and an env-file secret "db".
func secretsFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	writeFile(t, filepath.Join(dir, "aws", "key"), awsKey, 0o600)
	writeFile(t, filepath.Join(dir, "aws", "region"), awsRegion, 0o600)
	if err := os.Chmod(filepath.Join(dir, "aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "db.env"), "# the database\n\nexport USER="+dbUser+"\nPASSWORD=\""+dbPass+"\"\n", 0o600)
	return dir
}

func configMapsFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "configmaps")
	writeFile(t, filepath.Join(dir, "cfg", "mode"), "fast", 0o644)
	writeFile(t, filepath.Join(dir, "flags.env"), "DEBUG=1\n", 0o644)
	return dir
}

func parseExec(t *testing.T, body string) *ExecutorConfig {
	t.Helper()
	s, err := Parse(execDoc(t, body))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s.Executor("exec-train")
}

var task = Task{RunID: "run-1", Pipeline: "p", TaskPath: "train", PodName: "train-pod", NodeName: "ws1"}

func TestLocalSecretsAndConfigMaps(t *testing.T) {
	secrets, cms := secretsFixture(t), configMapsFixture(t)
	scratch := t.TempDir()
	c := parseExec(t, `
secretAsEnv:
- secretName: aws
  keyToEnv: [{secretKey: key, envVar: AWS_KEY}, {secretKey: region, envVar: AWS_REGION}]
- secretNameParameter: {componentInputParameter: db_secret}
  keyToEnv: [{secretKey: PASSWORD, envVar: DB_PASS}]
secretAsVolume:
- {secretName: aws, mountPath: /etc/aws}
- {secretName: db, mountPath: /etc/db}
configMapAsEnv:
- configMapName: cfg
  keyToEnv: [{configMapKey: mode, envVar: MODE}]
- configMapName: flags
  keyToEnv: [{configMapKey: DEBUG, envVar: DEBUG}]
configMapAsVolume:
- {configMapName: flags, mountPath: /etc/flags}
`)
	resolve := func(r ParamRef) (string, error) {
		if r.ComponentInputParameter == "db_secret" {
			return "db", nil
		}
		return "", fmt.Errorf("unexpected %+v", r)
	}
	got, err := c.Local(task, Sources{SecretsDir: secrets, ConfigMapsDir: cms}, resolve, scratch)
	if err != nil {
		t.Fatalf("Local: %v", err)
	}
	want := &Local{
		Env: []string{"AWS_KEY=" + awsKey, "AWS_REGION=" + awsRegion, "DB_PASS=" + dbPass, "MODE=fast", "DEBUG=1"},
		Mounts: []contract.Mount{
			{HostPath: realPath(t, filepath.Join(secrets, "aws")), ContainerPath: "/etc/aws", ReadOnly: true},
			{HostPath: filepath.Join(scratch, "secret-db"), ContainerPath: "/etc/db", ReadOnly: true},
			{HostPath: filepath.Join(scratch, "configmap-flags"), ContainerPath: "/etc/flags", ReadOnly: true},
		},
		Mapped: []string{
			"secretAsVolume: secret aws at /etc/aws (" + secrets + "/aws)",
			"secretAsVolume: secret db at /etc/db (" + secrets + "/db.env, keys written to " + scratch + "/secret-db)",
			"secretAsEnv: AWS_KEY from secret aws (" + secrets + "/aws)",
			"secretAsEnv: AWS_REGION from secret aws (" + secrets + "/aws)",
			"secretAsEnv: DB_PASS from secret db (" + secrets + "/db.env)",
			"configMapAsVolume: config map flags at /etc/flags (" + cms + "/flags.env, keys written to " + scratch + "/configmap-flags)",
			"configMapAsEnv: MODE from config map cfg (" + cms + "/cfg)",
			"configMapAsEnv: DEBUG from config map flags (" + cms + "/flags.env)",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Local (-want +got):\n%s", diff)
	}
	for key, wantVal := range map[string]string{"USER": dbUser, "PASSWORD": dbPass} {
		p := filepath.Join(scratch, "secret-db", key)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != wantVal {
			t.Errorf("%s: got %q, %v", p, b, err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", p, fi.Mode(), err)
		}
	}
	assertNoSecrets(t, got, nil)
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func assertNoSecrets(t *testing.T, l *Local, err error) {
	t.Helper()
	var text []string
	if l != nil {
		text = append(text, l.Mapped...)
		text = append(text, l.Warnings...)
	}
	if err != nil {
		text = append(text, err.Error())
	}
	for _, line := range text {
		for _, v := range secretValues {
			if strings.Contains(line, v) {
				t.Errorf("secret value %q leaked into %q", v, line)
			}
		}
	}
}

func TestLocalSecretErrors(t *testing.T) {
	secrets := secretsFixture(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "stolen"), awsKey, 0o600)
	writeFile(t, filepath.Join(outside, "dir", "key"), awsKey, 0o600)
	writeFile(t, filepath.Join(secrets, "bad.env"), "GOOD=1\n"+dbPass+"\n", 0o600)
	writeFile(t, filepath.Join(secrets, "badkey.env"), dbPass+" x=1\n", 0o600)
	for _, link := range [][2]string{
		{filepath.Join(outside, "stolen"), filepath.Join(secrets, "aws", "escape")},
		{filepath.Join(outside, "dir"), filepath.Join(secrets, "linked")},
		{filepath.Join(outside, "stolen"), filepath.Join(secrets, "linkenv.env")},
	} {
		if err := os.Symlink(link[0], link[1]); err != nil {
			t.Fatal(err)
		}
	}
	src := Sources{SecretsDir: secrets}
	where := `task "train" (exec-train): `
	tests := []struct {
		name, body string
		want       string // the error text; "" for no error
		notFound   bool
	}{
		{"missing secret", "secretAsEnv: [{secretName: nope, keyToEnv: [{secretKey: k, envVar: E}]}]",
			where + `secretAsEnv[0]: secret "nope": looked for the directory ` + secrets + `/nope and the file ` + secrets + `/nope.env: not found`, true},
		{"missing key", "secretAsEnv: [{secretName: aws, keyToEnv: [{secretKey: token, envVar: T}]}]",
			where + `secretAsEnv[0]: secret "aws" has no key "token": looked for the file ` + secrets + `/aws/token and a token= line in ` + secrets + `/aws.env: not found`, true},
		{"no secrets dir", "secretAsVolume: [{secretName: aws, mountPath: /m}]",
			``, true}, // checked with an empty SecretsDir below
		{"dot dot", "secretAsEnv: [{secretName: '..', keyToEnv: [{secretKey: k, envVar: E}]}]",
			where + `secretAsEnv[0]: secret name ".." is not allowed: starts with '.'`, false},
		{"traversal", "secretAsEnv: [{secretName: '../x', keyToEnv: [{secretKey: k, envVar: E}]}]",
			where + `secretAsEnv[0]: secret name "../x" is not allowed: starts with '.'`, false},
		{"slash", "secretAsVolume: [{secretName: a/b, mountPath: /m}]",
			where + `secretAsVolume[0]: secret name "a/b" is not allowed: only letters, digits, '.', '_' and '-' are allowed`, false},
		{"dot", "secretAsVolume: [{secretName: ., mountPath: /m}]",
			where + `secretAsVolume[0]: secret name "." is not allowed: starts with '.'`, false},
		{"empty from a parameter", "secretAsVolume: [{secretNameParameter: {runtimeValue: {constant: ''}}, mountPath: /m}]",
			where + `secretAsVolume[0]: secret name "" is not allowed: empty`, false},
		{"key traversal", "secretAsEnv: [{secretName: aws, keyToEnv: [{secretKey: ../db.env, envVar: E}]}]",
			where + `secretAsEnv[0]: secret "aws": key "../db.env" is not allowed: starts with '.'`, false},
		{"key symlink escapes", "secretAsEnv: [{secretName: aws, keyToEnv: [{secretKey: escape, envVar: E}]}]",
			where + `secretAsEnv[0]: secret "aws", key "escape": ` + secrets + `/aws/escape is a symlink that points outside ` + realPath(t, filepath.Join(secrets, "aws")) + `; refusing to use it`, false},
		{"volume with escaping symlink", "secretAsVolume: [{secretName: aws, mountPath: /m}]",
			where + `secretAsVolume[0]: secret "aws": ` + realPath(t, filepath.Join(secrets, "aws")) + `/escape is a symlink that points outside ` + secrets + `/aws; refusing to mount it`, false},
		{"secret dir symlink escapes", "secretAsVolume: [{secretName: linked, mountPath: /m}]",
			where + `secretAsVolume[0]: ` + secrets + `/linked is a symlink that points outside ` + realPath(t, secrets) + `; refusing to use it`, false},
		{"env file symlink escapes", "secretAsVolume: [{secretName: linkenv, mountPath: /m}]",
			where + `secretAsVolume[0]: ` + secrets + `/linkenv.env is a symlink that points outside ` + realPath(t, secrets) + `; refusing to use it`, false},
		{"malformed env file", "secretAsEnv: [{secretName: bad, keyToEnv: [{secretKey: GOOD, envVar: E}]}]",
			where + `secretAsEnv[0]: secret "bad": ` + secrets + `/bad.env: line 2: want KEY=VALUE`, false},
		{"bad key in env file", "secretAsEnv: [{secretName: badkey, keyToEnv: [{secretKey: x, envVar: E}]}]",
			where + `secretAsEnv[0]: secret "badkey": ` + secrets + `/badkey.env: line 1: the key is not allowed: only letters, digits, '.', '_' and '-' are allowed`, false},
		{"resolver fails", "secretAsEnv: [{secretNameParameter: {componentInputParameter: s}, keyToEnv: [{secretKey: k, envVar: E}]}]",
			where + `secretAsEnv[0]: resolve the secret name (input s): only a string constant can be resolved here (no resolver given)`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseExec(t, tt.body)
			s := src
			if tt.want == "" {
				s.SecretsDir = ""
				tt.want = where + `secretAsVolume[0]: secret "aws": no local secret directory is configured: not found`
			}
			l, err := c.Local(task, s, nil, t.TempDir())
			if err == nil {
				t.Fatalf("Local: no error; Mapped %q", l.Mapped)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", got, tt.want)
			}
			if errors.Is(err, ErrNotFound) != tt.notFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", !tt.notFound, tt.notFound)
			}
			assertNoSecrets(t, l, err)
		})
	}
}

func TestLocalOptionalAndPermissions(t *testing.T) {
	secrets := secretsFixture(t)
	writeFile(t, filepath.Join(secrets, "loose", "k"), awsKey, 0o644)
	if err := os.Chmod(filepath.Join(secrets, "loose"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := parseExec(t, `
secretAsEnv:
- {secretName: nope, optional: true, keyToEnv: [{secretKey: k, envVar: E}]}
- {secretName: aws, optional: true, keyToEnv: [{secretKey: missing, envVar: M}, {secretKey: key, envVar: K}]}
- {secretName: loose, keyToEnv: [{secretKey: k, envVar: L}]}
secretAsVolume:
- {secretName: nope, optional: true, mountPath: /etc/nope}
`)
	got, err := c.Local(task, Sources{SecretsDir: secrets}, nil, t.TempDir())
	if err != nil {
		t.Fatalf("Local: %v", err)
	}
	where := `task "train" (exec-train): `
	want := &Local{
		Env: []string{"K=" + awsKey, "L=" + awsKey},
		Mapped: []string{
			"secretAsEnv: K from secret aws (" + secrets + "/aws)",
			"secretAsEnv: L from secret loose (" + secrets + "/loose)",
		},
		Warnings: []string{
			where + `secretAsVolume[0]: optional secret "nope": looked for the directory ` + secrets + `/nope and the file ` + secrets + `/nope.env: not found; nothing mounted at /etc/nope`,
			where + `secretAsEnv[0]: optional secret "nope": looked for the directory ` + secrets + `/nope and the file ` + secrets + `/nope.env: not found; E not set`,
			where + `secretAsEnv[1]: optional secret "aws" has no key "missing"; M not set`,
			where + `secret "loose": ` + secrets + `/loose is readable by group or others (mode 755); run chmod 700 ` + secrets + `/loose`,
			where + `secret "loose": ` + secrets + `/loose/k is readable by group or others (mode 644); run chmod 600 ` + secrets + `/loose/k`,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Local (-want +got):\n%s", diff)
	}
	assertNoSecrets(t, got, nil)
}

func TestLocalFieldPaths(t *testing.T) {
	c := parseExec(t, `
podMetadata:
  labels: {team: ml}
  annotations: {note: hello}
fieldPathAsEnv:
- {name: POD, fieldPath: metadata.name}
- {name: NS, fieldPath: metadata.namespace}
- {name: UID, fieldPath: metadata.uid}
- {name: TEAM, fieldPath: "metadata.labels['team']"}
- {name: NOTE, fieldPath: 'metadata.annotations["note"]'}
- {name: NONE, fieldPath: "metadata.labels['none']"}
- {name: NODE, fieldPath: spec.nodeName}
- {name: IP, fieldPath: status.podIP}
- {name: SA, fieldPath: spec.serviceAccountName}
- {name: CPU, fieldPath: status.hostIPs}
`)
	got, err := c.Local(task, Sources{}, nil, "")
	if err != nil {
		t.Fatalf("Local: %v", err)
	}
	uid := podUID(task)
	wantEnv := []string{"POD=train-pod", "NS=local", "UID=" + uid, "TEAM=ml", "NOTE=hello", "NONE=", "NODE=ws1", "IP=127.0.0.1", "SA=default"}
	if diff := cmp.Diff(wantEnv, got.Env); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
	wantLabels := map[string]string{"io.kubeflow.pod.label.team": "ml", "io.kubeflow.pod.annotation.note": "hello"}
	if diff := cmp.Diff(wantLabels, got.Labels); diff != "" {
		t.Errorf("Labels (-want +got):\n%s", diff)
	}
	wantWarn := []string{`task "train" (exec-train): fieldPathAsEnv[9]: field path "status.hostIPs" has no local value; CPU not set`}
	if diff := cmp.Diff(wantWarn, got.Warnings); diff != "" {
		t.Errorf("Warnings (-want +got):\n%s", diff)
	}

	// Defaults: the namespace, and a pod name and uid derived from the run.
	t2 := Task{RunID: "run-1", TaskPath: "loop-1/Train_Model!"}
	got, err = c.Local(t2, Sources{Namespace: "team-a"}, nil, "")
	if err != nil {
		t.Fatalf("Local: %v", err)
	}
	pod, ns := envValue(got.Env, "POD"), envValue(got.Env, "NS")
	if !strings.HasPrefix(pod, "train-model-") || len(pod) > 63 || ns != "team-a" {
		t.Errorf("POD=%q NS=%q; want train-model-<hash> and team-a", pod, ns)
	}
	if again, _ := c.Local(t2, Sources{}, nil, ""); envValue(again.Env, "POD") != pod || envValue(again.Env, "UID") != envValue(got.Env, "UID") {
		t.Errorf("pod name or uid not stable across calls")
	}
	if other := podName(Task{RunID: "run-2", TaskPath: t2.TaskPath}); other == pod {
		t.Errorf("pod name %q does not depend on the run", pod)
	}
	if u := envValue(got.Env, "UID"); len(u) != 36 || u[14] != '5' {
		t.Errorf("uid %q is not a version-5 style UUID", u)
	}
	long := podName(Task{TaskPath: strings.Repeat("Ab_", 100)})
	if len(long) > 63 || strings.Contains(long, "--") || long[0] == '-' {
		t.Errorf("podName of a long path = %q", long)
	}
}

func envValue(env []string, key string) string {
	for _, e := range env {
		if k, v, _ := strings.Cut(e, "="); k == key {
			return v
		}
	}
	return ""
}

func TestLocalVolumesAndRuntime(t *testing.T) {
	src, err := os.ReadFile("testdata/all-fields.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(yamlDoc(t, string(src)))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Executor("exec-train")
	// Only the settings without secrets or config maps.
	c.SecretAsEnv, c.SecretAsVolume, c.ConfigMapAsEnv, c.ConfigMapAsVolume = nil, nil, nil, nil
	resolve := func(r ParamRef) (string, error) {
		if r.TaskOutputParameter != nil {
			return "run-1-scratch", nil
		}
		return fmt.Sprint(r.Constant), nil
	}
	got, err := c.Local(task, Sources{PVCs: map[string]string{"my-pvc": "/home/u/data"}}, resolve, "")
	if err != nil {
		t.Fatalf("Local: %v", err)
	}
	where := `task "train" (exec-train): `
	want := &Local{
		Env: []string{"POD_NAME=train-pod", "NOTE=hi"},
		PVCs: []PVCMount{
			{Name: "my-pvc", MountPath: "/mnt/data", HostDir: "/home/u/data"},
			{Name: "run-1-scratch", MountPath: "/mnt/out", SubPath: "sub"},
		},
		EmptyDirs: []EmptyDir{
			{MountPath: "/data", SizeLimit: 5 << 30},
			{MountPath: "/scratch", Medium: "Memory", SizeLimit: 1 << 30},
		},
		ShmSize:    2 << 30,
		Labels:     map[string]string{"io.kubeflow.pod.label.team": "ml", "io.kubeflow.pod.annotation.note": "hi"},
		Timeout:    time.Hour,
		PullPolicy: "IfNotPresent",
		Mapped: []string{
			"pvcMount: PVC my-pvc at /mnt/data (host directory /home/u/data)",
			"pvcMount: PVC run-1-scratch at /mnt/out (a local volume, sub-path sub)",
			`fieldPathAsEnv: POD_NAME = metadata.name ("train-pod")`,
			`fieldPathAsEnv: NOTE = metadata.annotations['note'] ("hi")`,
			"podMetadata: 1 labels and 1 annotations as container labels io.kubeflow.pod.label.* and io.kubeflow.pod.annotation.*",
			"imagePullPolicy: IfNotPresent",
			"activeDeadlineSeconds: task timeout 1h0m0s",
			"genericEphemeralVolume: empty directory at /data (size 5Gi; storage class and access modes do not apply)",
			"emptyDirMounts: empty directory at /scratch (Memory, limit 1Gi)",
			"enabledSharedMemory: /dev/shm of 2Gi",
		},
		Warnings: []string{
			where + "nodeSelector {accelerator: nvidia-a100}: not applicable on one machine",
			where + "tolerations [nvidia.com/gpu Exists NoSchedule]: not applicable on one machine",
			where + "nodeAffinity (1 term): not applicable on one machine",
			where + "podAffinity (1 term): not applicable on one machine",
			where + "imagePullSecret regcred: not applicable on one machine; the container engine uses its own registry logins (docker login)",
			where + "securityContext {runAsUser: 1000, runAsNonRoot: true}: not mapped; the step runs as the image's user (docker) or as you (process)",
			where + "initContainers [wait (busybox)]: not mapped; they do not run before the step",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Local (-want +got):\n%s", diff)
	}
}

func TestLocalSmallCases(t *testing.T) {
	tests := []struct {
		name, body string
		resolve    Resolve
		want       *Local
		wantErr    string
	}{
		{"default shm", "enabledSharedMemory: {volumeName: shm}", nil,
			&Local{Mapped: []string{"enabledSharedMemory: /dev/shm of the default size"}}, ""},
		{"bad PVC name", "pvcMount: [{constant: My_PVC, mountPath: /m}]", nil, nil,
			`task "train" (exec-train): pvcMount[0]: PVC name "My_PVC" is not a DNS-1123 subdomain: only lower-case letters, digits, '-' and '.' are allowed`},
		{"PVC from an input", "pvcMount: [{componentInputParameter: pvc, mountPath: /m}]",
			func(r ParamRef) (string, error) { return "from-" + r.ComponentInputParameter, nil },
			&Local{PVCs: []PVCMount{{Name: "from-pvc", MountPath: "/m"}}, Mapped: []string{"pvcMount: PVC from-pvc at /m (a local volume)"}}, ""},
		{"hugepages", "emptyDirMounts: [{mountPath: /h, medium: HugePages-2Mi}]", nil,
			&Local{
				EmptyDirs: []EmptyDir{{MountPath: "/h"}},
				Mapped:    []string{"emptyDirMounts: empty directory at /h (disk)"},
				Warnings:  []string{`task "train" (exec-train): emptyDirMounts[0]: medium HugePages-2Mi not applicable on one machine; a plain directory`},
			}, ""},
		{"node selector from a parameter", "nodeSelector: {nodeSelectorJson: {componentInputParameter: sel}}", nil,
			&Local{Warnings: []string{`task "train" (exec-train): nodeSelector (nodeSelectorJson from input sel): not applicable on one machine`}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseExec(t, tt.body).Local(task, Sources{}, tt.resolve, "")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error\n got: %v\nwant: %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Local: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Local (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLocalNil(t *testing.T) {
	var c *ExecutorConfig
	got, err := c.Local(task, Sources{}, nil, "")
	if err != nil || got == nil {
		t.Fatalf("nil config: %v, %v", got, err)
	}
	var s *Spec
	if s.Executor("x") != nil {
		t.Error("nil Spec has an executor")
	}
}

func TestLocalValidates(t *testing.T) {
	c := &ExecutorConfig{Label: "exec-x", SecretAsVolume: []SecretAsVolume{{SecretName: "s"}}}
	_, err := c.Local(Task{}, Sources{}, nil, "")
	want := "executor exec-x: platforms.kubernetes.deploymentSpec.executors.exec-x.secretAsVolume[0].mountPath: is required"
	if err == nil || err.Error() != want {
		t.Errorf("error\n got: %v\nwant: %s", err, want)
	}
}
