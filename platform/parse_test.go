package platform

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

// yamlDoc decodes YAML the way kfpir does (plain maps, lists, strings,
// int64, float64, bools).
func yamlDoc(t testing.TB, src string) map[string]any {
	t.Helper()
	n, err := yamlnode.Parse([]byte(src))
	if err != nil {
		t.Fatalf("parse YAML: %v", err)
	}
	m, _ := n.Value().(map[string]any)
	return m
}

// execDoc wraps one executor config (YAML, indented as under the label) in
// the platform document.
func execDoc(t testing.TB, body string) map[string]any {
	t.Helper()
	var b strings.Builder
	b.WriteString("platforms:\n  kubernetes:\n    deploymentSpec:\n      executors:\n        exec-train:\n")
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		b.WriteString("          " + line + "\n")
	}
	return yamlDoc(t, b.String())
}

func ptr[T any](v T) *T { return &v }

func TestParseEmpty(t *testing.T) {
	for _, doc := range []map[string]any{nil, {}, {"platforms": nil}, {"platforms": map[string]any{"kubernetes": nil}}} {
		s, err := Parse(doc)
		if err != nil {
			t.Fatalf("Parse(%v): %v", doc, err)
		}
		if diff := cmp.Diff(&Spec{Executors: map[string]*ExecutorConfig{}}, s); diff != "" {
			t.Errorf("Parse(%v) (-want +got):\n%s", doc, diff)
		}
	}
}

func TestParseAllFields(t *testing.T) {
	src, err := os.ReadFile("testdata/all-fields.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(yamlDoc(t, string(src)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	createpvc := &TaskOutputRef{ProducerTask: "createpvc", OutputParameterKey: "name"}
	want := &Spec{
		PipelineConfig: map[string]any{"workspace": map[string]any{"size": "10Gi"}},
		Executors: map[string]*ExecutorConfig{"exec-train": {
			Label:                 "exec-train",
			ActiveDeadlineSeconds: 3600,
			ConfigMapAsEnv: []ConfigMapAsEnv{{
				ConfigMapName:          "cfg",
				ConfigMapNameParameter: &ParamRef{Constant: "cfg"},
				KeyToEnv:               []ConfigMapKeyEnv{{ConfigMapKey: "mode", EnvVar: "MODE"}},
			}},
			ConfigMapAsVolume: []ConfigMapAsVolume{{
				ConfigMapName: "cfg", ConfigMapNameParameter: &ParamRef{Constant: "cfg"},
				MountPath: "/etc/cfg", Optional: ptr(false),
			}},
			EmptyDirMounts: []EmptyDirMount{{
				VolumeName: "scratch", MountPath: "/scratch", Medium: ptr("Memory"), SizeLimit: ptr("1Gi"),
			}},
			EnabledSharedMemory: &EnabledSharedMemory{VolumeName: "shm", Size: "2Gi"},
			FieldPathAsEnv: []FieldPathAsEnv{
				{Name: "POD_NAME", FieldPath: "metadata.name"},
				{Name: "NOTE", FieldPath: "metadata.annotations['note']"},
			},
			GenericEphemeralVolume: []GenericEphemeralVolume{{
				VolumeName: "eph", MountPath: "/data", AccessModes: []string{"ReadWriteOnce"},
				Size: "5Gi", DefaultStorageClass: true,
			}},
			ImagePullPolicy: "IfNotPresent",
			ImagePullSecret: []ImagePullSecret{{SecretName: "regcred", SecretNameParameter: &ParamRef{Constant: "regcred"}}},
			InitContainers: []InitContainer{{
				Name: "wait", Image: "busybox", Command: []string{"sh", "-c"}, Args: []string{"sleep 1"},
				Env:          []InitEnvVar{{Name: "A", Value: "b"}},
				VolumeMounts: []InitVolumeMount{{VolumeName: "eph", MountPath: "/data"}},
				Resources: &InitResources{
					Requests: map[string]string{"cpu": "100m"},
					Limits:   map[string]string{"memory": "64Mi"},
				},
			}},
			NodeAffinity: []NodeAffinityTerm{{
				MatchExpressions: []SelectorRequirement{{Key: "gpu", Operator: "In", Values: []string{"a100"}}},
				Weight:           ptr(int64(10)),
			}},
			NodeSelector: &NodeSelector{Labels: map[string]string{"accelerator": "nvidia-a100"}},
			PodAffinity: []PodAffinityTerm{{
				Anti: true, MatchPodLabels: map[string]string{"app": "db"}, TopologyKey: "kubernetes.io/hostname",
			}},
			PodMetadata: &PodMetadata{
				Labels:      map[string]string{"team": "ml"},
				Annotations: map[string]string{"note": "hi"},
			},
			PVCMount: []PVCMountSpec{
				{Constant: "my-pvc", MountPath: "/mnt/data", PVCNameParameter: &ParamRef{Constant: "my-pvc"}},
				{
					MountPath: "/mnt/out", SubPath: ptr("sub"), TaskOutputParameter: createpvc,
					PVCNameParameter: &ParamRef{TaskOutputParameter: createpvc},
				},
			},
			SecretAsEnv: []SecretAsEnv{{
				SecretName: "aws", SecretNameParameter: &ParamRef{Constant: "aws"},
				KeyToEnv: []SecretKeyEnv{{SecretKey: "key", EnvVar: "AWS_KEY"}},
			}},
			SecretAsVolume: []SecretAsVolume{{
				SecretName: "aws", SecretNameParameter: &ParamRef{ComponentInputParameter: "secret_name"},
				MountPath: "/etc/aws", Optional: ptr(true),
			}},
			SecurityContext: &SecurityContext{RunAsUser: ptr(int64(1000)), RunAsNonRoot: ptr(true)},
			Tolerations: []Toleration{{
				Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule", TolerationSeconds: ptr(int64(30)),
			}},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseFieldForms(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *ExecutorConfig
	}{
		{"deadline as number", "activeDeadlineSeconds: 60", &ExecutorConfig{ActiveDeadlineSeconds: 60}},
		{"deadline as string", "activeDeadlineSeconds: '60'", &ExecutorConfig{ActiveDeadlineSeconds: 60}},
		{"proto field names", "active_deadline_seconds: 5\nimage_pull_policy: Never",
			&ExecutorConfig{ActiveDeadlineSeconds: 5, ImagePullPolicy: "Never"}},
		{"deprecated pvc one-of alone", "pvcMount:\n- componentInputParameter: pvc\n  mountPath: /m",
			&ExecutorConfig{PVCMount: []PVCMountSpec{{ComponentInputParameter: "pvc", MountPath: "/m"}}}},
		{"old constantValue", "secretAsEnv:\n- secretNameParameter: {runtimeValue: {constantValue: {stringValue: s}}}\n  keyToEnv: [{secretKey: k, envVar: E}]",
			&ExecutorConfig{SecretAsEnv: []SecretAsEnv{{
				SecretNameParameter: &ParamRef{Constant: "s"}, KeyToEnv: []SecretKeyEnv{{SecretKey: "k", EnvVar: "E"}},
			}}}},
		{"non-string constant", "nodeSelector: {nodeSelectorJson: {runtimeValue: {constant: {gpu: a100}}}}",
			&ExecutorConfig{NodeSelector: &NodeSelector{NodeSelectorJSON: &ParamRef{Constant: map[string]any{"gpu": "a100"}}}}},
		{"number as string label", "podMetadata: {labels: {version: 2}}",
			&ExecutorConfig{PodMetadata: &PodMetadata{Labels: map[string]string{"version": "2"}}}},
		{"nulls are unset", "podMetadata: null\nsecretAsEnv: null", &ExecutorConfig{}},
		{"empty shared memory", "enabledSharedMemory: {volumeName: shm}",
			&ExecutorConfig{EnabledSharedMemory: &EnabledSharedMemory{VolumeName: "shm"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(execDoc(t, tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Label = "exec-train"
			if diff := cmp.Diff(tt.want, s.Executor("exec-train")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseUnknown(t *testing.T) {
	doc := yamlDoc(t, `
extra: 1
platforms:
  vertex: {}
  kubernetes:
    newThing: 1
    deploymentSpec:
      other: 2
      executors:
        exec-a:
          futureField: {x: 1}
          secretAsEnv:
          - secretName: aws
            keyToEnv: [{secretKey: key, envVar: E, extra: 1}]
            typo: true
          pvcMount:
          - constant: p
            mountPath: /m
            pvcNameParameter: {runtimeValue: {constant: p}, parameterExpressionSelector: x}
`)
	s, err := Parse(doc)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	wantSpec := []string{"extra", "platforms.vertex", "platforms.kubernetes.newThing", "platforms.kubernetes.deploymentSpec.other"}
	if diff := cmp.Diff(wantSpec, s.Unknown); diff != "" {
		t.Errorf("Spec.Unknown (-want +got):\n%s", diff)
	}
	c := s.Executor("exec-a")
	want := []string{"futureField", "pvcMount[0].pvcNameParameter.parameterExpressionSelector", "secretAsEnv[0].keyToEnv[0].extra", "secretAsEnv[0].typo"}
	if diff := cmp.Diff(want, c.Unknown); diff != "" {
		t.Errorf("Unknown (-want +got):\n%s", diff)
	}
	l, err := c.Local(Task{TaskPath: "a"}, Sources{SecretsDir: secretsFixture(t)}, nil, t.TempDir())
	if err != nil {
		t.Fatalf("Local: %v", err)
	}
	for _, u := range want {
		if !contains(l.Warnings, `task "a" (exec-a): unknown field `+u+": ignored") {
			t.Errorf("no warning for unknown field %s in %q", u, l.Warnings)
		}
	}
}

func contains(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func TestParseErrors(t *testing.T) {
	const p = "platforms.kubernetes.deploymentSpec.executors.exec-train."
	tests := []struct {
		name string
		body string
		want []string // one line per error
	}{
		{"string for a list", "secretAsEnv: [{secretName: s, keyToEnv: oops}]",
			[]string{p + "secretAsEnv[0].keyToEnv: must be a list, not a string"}},
		{"missing mountPath", "secretAsVolume: [{secretName: s}]",
			[]string{p + "secretAsVolume[0].mountPath: is required"}},
		{"relative mountPath", "configMapAsVolume: [{configMapName: c, mountPath: etc}]",
			[]string{p + `configMapAsVolume[0].mountPath: must be an absolute path, not "etc"`}},
		{"no name", "secretAsEnv: [{keyToEnv: [{secretKey: k, envVar: E}]}]",
			[]string{p + "secretAsEnv[0]: secretName or secretNameParameter is required"}},
		{"missing key and env", "configMapAsEnv: [{configMapName: c, keyToEnv: [{}]}]",
			[]string{p + "configMapAsEnv[0].keyToEnv[0].configMapKey: is required", p + "configMapAsEnv[0].keyToEnv[0].envVar: is required"}},
		{"bad env name", "fieldPathAsEnv: [{name: 'A=B', fieldPath: metadata.name}]",
			[]string{p + `fieldPathAsEnv[0].name: "A=B" is not a valid env var name`}},
		{"pvc without name", "pvcMount: [{mountPath: /m}]",
			[]string{p + "pvcMount[0]: pvcNameParameter (or constant, componentInputParameter, taskOutputParameter) is required"}},
		{"pvc subPath escapes", "pvcMount: [{constant: p, mountPath: /m, subPath: ../x}]",
			[]string{p + `pvcMount[0].subPath: must be a relative path without '..', not "../x"`}},
		{"bad pull policy", "imagePullPolicy: Sometimes",
			[]string{p + `imagePullPolicy: must be Always, IfNotPresent or Never, not "Sometimes"`}},
		{"deadline not a number", "activeDeadlineSeconds: soon",
			[]string{p + "activeDeadlineSeconds: must be an integer"}},
		{"negative deadline", "activeDeadlineSeconds: -1",
			[]string{p + "activeDeadlineSeconds: must be between 0 and 9223372036"}},
		{"bad size", "emptyDirMounts: [{mountPath: /s, sizeLimit: lots}]",
			[]string{p + `emptyDirMounts[0].sizeLimit: invalid quantity "lots": want a number with an optional suffix like 512Mi or 1.5G`}},
		{"bad medium", "emptyDirMounts: [{mountPath: /s, medium: Disk}]",
			[]string{p + `emptyDirMounts[0].medium: must be "", Memory or HugePages, not "Disk"`}},
		{"bad shm size", "enabledSharedMemory: {size: 1Zi}",
			[]string{p + `enabledSharedMemory.size: invalid quantity "1Zi": unknown suffix "Zi"`}},
		{"bool as string", "secretAsVolume: [{secretName: s, mountPath: /m, optional: 'yes'}]",
			[]string{p + "secretAsVolume[0].optional: must be true or false, not a string"}},
		{"map for a string", "imagePullPolicy: {a: 1}",
			[]string{p + "imagePullPolicy: must be a string, not a mapping"}},
		{"two references", "nodeSelector: {nodeSelectorJson: {componentInputParameter: a, runtimeValue: {constant: b}}}",
			[]string{p + "nodeSelector.nodeSelectorJson: set only one of runtimeValue, componentInputParameter and taskOutputParameter"}},
		{"set twice", "imagePullPolicy: Never\nimage_pull_policy: Always",
			[]string{p + "image_pull_policy: set twice (also as imagePullPolicy)"}},
		{"executor not a mapping", "", nil}, // filled below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := execDoc(t, tt.body)
			if tt.body == "" {
				doc = yamlDoc(t, "platforms: {kubernetes: {deploymentSpec: {executors: {exec-train: [1]}}}}")
				tt.want = []string{"platforms.kubernetes.deploymentSpec.executors.exec-train: must be a mapping, not a list"}
			}
			_, err := Parse(doc)
			if err == nil {
				t.Fatal("Parse: no error")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if _, ok := err.(FieldErrors); !ok {
				t.Errorf("error is %T, want FieldErrors", err)
			}
		})
	}
}

func TestParseTopLevelShapes(t *testing.T) {
	for _, src := range []string{
		"platforms: [1]",
		"platforms: {kubernetes: 1}",
		"platforms: {kubernetes: {deploymentSpec: x}}",
		"platforms: {kubernetes: {deploymentSpec: {executors: []}}}",
		"platforms: {kubernetes: {pipelineConfig: 3}}",
	} {
		if _, err := Parse(yamlDoc(t, src)); err == nil || !strings.Contains(err.Error(), "must be a mapping") {
			t.Errorf("Parse(%s): got %v, want a 'must be a mapping' error", src, err)
		}
	}
}
