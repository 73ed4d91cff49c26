package platform

// The types below mirror the KubernetesExecutorConfig message of KFP's
// kubernetes_platform module (KFP 2.15–2.17). The json tags are the
// message's lowerCamelCase JSON names; the decoder also accepts the proto
// field names (snake_case). Optional proto fields are pointers so that
// "unset" and "zero" differ.

// Spec is the typed kubernetes platform spec of a pipeline.
type Spec struct {
	// Executors holds the per-executor configs by executor label
	// (deploymentSpec.executors.<label>, e.g. "exec-train").
	Executors map[string]*ExecutorConfig
	// PipelineConfig is platforms.kubernetes.pipelineConfig as written
	// (workspace size, PVC spec patch, ...); nil when absent. It holds
	// run-level settings, so it is left to the engine and not mapped here.
	PipelineConfig map[string]any
	// Unknown lists the fields outside the executor configs that this
	// package does not know, as full dotted paths
	// ("platforms.vertex", "platforms.kubernetes.foo").
	Unknown []string
}

// Executor returns the config of the executor label, or nil. It is safe
// on a nil Spec.
func (s *Spec) Executor(label string) *ExecutorConfig {
	if s == nil {
		return nil
	}
	return s.Executors[label]
}

// ExecutorConfig is one KubernetesExecutorConfig.
type ExecutorConfig struct {
	// Label is the executor label the config was found under.
	Label string `json:"-"`
	// Unknown lists the fields this package does not know, as dotted
	// paths relative to the executor config ("secretAsEnv[0].foo").
	// Local reports each as a warning.
	Unknown []string `json:"-"`

	SecretAsVolume         []SecretAsVolume         `json:"secretAsVolume"`
	SecretAsEnv            []SecretAsEnv            `json:"secretAsEnv"`
	ConfigMapAsVolume      []ConfigMapAsVolume      `json:"configMapAsVolume"`
	ConfigMapAsEnv         []ConfigMapAsEnv         `json:"configMapAsEnv"`
	PVCMount               []PVCMountSpec           `json:"pvcMount"`
	FieldPathAsEnv         []FieldPathAsEnv         `json:"fieldPathAsEnv"`
	PodMetadata            *PodMetadata             `json:"podMetadata"`
	NodeSelector           *NodeSelector            `json:"nodeSelector"`
	Tolerations            []Toleration             `json:"tolerations"`
	NodeAffinity           []NodeAffinityTerm       `json:"nodeAffinity"`
	PodAffinity            []PodAffinityTerm        `json:"podAffinity"`
	ImagePullSecret        []ImagePullSecret        `json:"imagePullSecret"`
	ImagePullPolicy        string                   `json:"imagePullPolicy"`
	ActiveDeadlineSeconds  int64                    `json:"activeDeadlineSeconds"`
	GenericEphemeralVolume []GenericEphemeralVolume `json:"genericEphemeralVolume"`
	EmptyDirMounts         []EmptyDirMount          `json:"emptyDirMounts"`
	EnabledSharedMemory    *EnabledSharedMemory     `json:"enabledSharedMemory"`
	SecurityContext        *SecurityContext         `json:"securityContext"`
	InitContainers         []InitContainer          `json:"initContainers"`
}

// ParamRef is a pipeline parameter reference (KFP's InputParameterSpec):
// a constant, an input of the enclosing component, or another task's
// output parameter. At most one is set.
type ParamRef struct {
	// Constant is runtimeValue.constant (any JSON value), or the string,
	// number or bool of the older runtimeValue.constantValue.
	Constant any
	// ComponentInputParameter names an input parameter of the component
	// the task belongs to.
	ComponentInputParameter string
	// TaskOutputParameter names an output parameter of another task.
	TaskOutputParameter *TaskOutputRef
}

// IsZero reports whether the reference names nothing.
func (p *ParamRef) IsZero() bool {
	return p == nil || (p.Constant == nil && p.ComponentInputParameter == "" && p.TaskOutputParameter == nil)
}

// TaskOutputRef names an output parameter of a task.
type TaskOutputRef struct {
	ProducerTask       string `json:"producerTask"`
	OutputParameterKey string `json:"outputParameterKey"`
}

// SecretAsVolume mounts a secret's keys as files.
type SecretAsVolume struct {
	SecretName          string    `json:"secretName"` // deprecated, the SDK writes it beside the parameter
	SecretNameParameter *ParamRef `json:"secretNameParameter"`
	MountPath           string    `json:"mountPath"`
	Optional            *bool     `json:"optional"`
}

// SecretAsEnv sets env vars from a secret's keys.
type SecretAsEnv struct {
	SecretName          string         `json:"secretName"`
	SecretNameParameter *ParamRef      `json:"secretNameParameter"`
	KeyToEnv            []SecretKeyEnv `json:"keyToEnv"`
	Optional            *bool          `json:"optional"`
}

// SecretKeyEnv maps one secret key to an env var.
type SecretKeyEnv struct {
	SecretKey string `json:"secretKey"`
	EnvVar    string `json:"envVar"`
}

// ConfigMapAsVolume mounts a config map's keys as files.
type ConfigMapAsVolume struct {
	ConfigMapName          string    `json:"configMapName"`
	ConfigMapNameParameter *ParamRef `json:"configMapNameParameter"`
	MountPath              string    `json:"mountPath"`
	Optional               *bool     `json:"optional"`
}

// ConfigMapAsEnv sets env vars from a config map's keys.
type ConfigMapAsEnv struct {
	ConfigMapName          string            `json:"configMapName"`
	ConfigMapNameParameter *ParamRef         `json:"configMapNameParameter"`
	KeyToEnv               []ConfigMapKeyEnv `json:"keyToEnv"`
	Optional               *bool             `json:"optional"`
}

// ConfigMapKeyEnv maps one config map key to an env var.
type ConfigMapKeyEnv struct {
	ConfigMapKey string `json:"configMapKey"`
	EnvVar       string `json:"envVar"`
}

// PVCMountSpec mounts a persistent volume claim. The claim is named by
// PVCNameParameter or, in the deprecated one-of the SDK still writes, by
// Constant, ComponentInputParameter or TaskOutputParameter.
type PVCMountSpec struct {
	TaskOutputParameter     *TaskOutputRef `json:"taskOutputParameter"`
	Constant                string         `json:"constant"`
	ComponentInputParameter string         `json:"componentInputParameter"`
	MountPath               string         `json:"mountPath"`
	PVCNameParameter        *ParamRef      `json:"pvcNameParameter"`
	SubPath                 *string        `json:"subPath"`
}

// NameRef is the reference naming the claim: pvcNameParameter when set,
// else the deprecated one-of.
func (m *PVCMountSpec) NameRef() ParamRef {
	if !m.PVCNameParameter.IsZero() {
		return *m.PVCNameParameter
	}
	r := ParamRef{ComponentInputParameter: m.ComponentInputParameter, TaskOutputParameter: m.TaskOutputParameter}
	if m.Constant != "" {
		r.Constant = m.Constant
	}
	return r
}

// FieldPathAsEnv sets an env var from a pod field (the downward API).
type FieldPathAsEnv struct {
	Name      string `json:"name"`
	FieldPath string `json:"fieldPath"`
}

// PodMetadata is the pod's labels and annotations.
type PodMetadata struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// NodeSelector constrains the nodes a pod runs on.
type NodeSelector struct {
	Labels           map[string]string `json:"labels"`
	NodeSelectorJSON *ParamRef         `json:"nodeSelectorJson"`
}

// Toleration lets a pod run on tainted nodes.
type Toleration struct {
	Key               string    `json:"key"`
	Operator          string    `json:"operator"`
	Value             string    `json:"value"`
	Effect            string    `json:"effect"`
	TolerationSeconds *int64    `json:"tolerationSeconds"`
	TolerationJSON    *ParamRef `json:"tolerationJson"`
}

// SelectorRequirement is one match expression of an affinity term.
type SelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

// NodeAffinityTerm is one node affinity term.
type NodeAffinityTerm struct {
	MatchExpressions []SelectorRequirement `json:"matchExpressions"`
	MatchFields      []SelectorRequirement `json:"matchFields"`
	Weight           *int64                `json:"weight"`
	NodeAffinityJSON *ParamRef             `json:"nodeAffinityJson"`
}

// PodAffinityTerm is one pod (anti-)affinity term.
type PodAffinityTerm struct {
	MatchPodExpressions       []SelectorRequirement `json:"matchPodExpressions"`
	MatchPodLabels            map[string]string     `json:"matchPodLabels"`
	TopologyKey               string                `json:"topologyKey"`
	Namespaces                []string              `json:"namespaces"`
	MatchNamespaceExpressions []SelectorRequirement `json:"matchNamespaceExpressions"`
	MatchNamespaceLabels      map[string]string     `json:"matchNamespaceLabels"`
	Weight                    *int64                `json:"weight"`
	Anti                      bool                  `json:"anti"`
	PodAffinityJSON           *ParamRef             `json:"podAffinityJson"`
}

// ImagePullSecret names a registry credential secret.
type ImagePullSecret struct {
	SecretName          string    `json:"secretName"`
	SecretNameParameter *ParamRef `json:"secretNameParameter"`
}

// GenericEphemeralVolume is a volume provisioned for the pod's lifetime.
type GenericEphemeralVolume struct {
	VolumeName          string       `json:"volumeName"`
	MountPath           string       `json:"mountPath"`
	AccessModes         []string     `json:"accessModes"`
	Size                string       `json:"size"`
	DefaultStorageClass bool         `json:"defaultStorageClass"`
	StorageClassName    *string      `json:"storageClassName"`
	Metadata            *PodMetadata `json:"metadata"`
}

// EmptyDirMount is a scratch volume for the pod's lifetime.
type EmptyDirMount struct {
	VolumeName string  `json:"volumeName"`
	MountPath  string  `json:"mountPath"`
	Medium     *string `json:"medium"`
	SizeLimit  *string `json:"sizeLimit"`
}

// EnabledSharedMemory sizes /dev/shm.
type EnabledSharedMemory struct {
	VolumeName string `json:"volumeName"`
	Size       string `json:"size"`
}

// SecurityContext is the pod's user and group.
type SecurityContext struct {
	RunAsUser    *int64 `json:"runAsUser"`
	RunAsGroup   *int64 `json:"runAsGroup"`
	RunAsNonRoot *bool  `json:"runAsNonRoot"`
}

// InitContainer is a container that runs before the task's own.
type InitContainer struct {
	Name          string            `json:"name"`
	Image         string            `json:"image"`
	Command       []string          `json:"command"`
	Args          []string          `json:"args"`
	Env           []InitEnvVar      `json:"env"`
	VolumeMounts  []InitVolumeMount `json:"volumeMounts"`
	RestartPolicy *string           `json:"restartPolicy"`
	Resources     *InitResources    `json:"resources"`
}

// InitEnvVar is one env var of an init container.
type InitEnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// InitVolumeMount mounts one of the pod's volumes in an init container.
type InitVolumeMount struct {
	VolumeName string `json:"volumeName"`
	MountPath  string `json:"mountPath"`
}

// InitResources are an init container's requests and limits
// (Kubernetes quantities by resource name).
type InitResources struct {
	Requests map[string]string `json:"requests"`
	Limits   map[string]string `json:"limits"`
}
