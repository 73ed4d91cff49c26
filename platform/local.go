package platform

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/contract"
)

// Sources say where the workstation's stand-ins for cluster objects are.
type Sources struct {
	// SecretsDir holds secrets as <SecretsDir>/<name>/<key> (a directory
	// of key files) or <SecretsDir>/<name>.env (KEY=VALUE lines).
	SecretsDir string
	// ConfigMapsDir holds config maps in the same two forms.
	ConfigMapsDir string
	// PVCs maps PVC names to host directories, from the user's config.
	PVCs map[string]string
	// Namespace is the namespace the task pretends to run in; "" means
	// "local".
	Namespace string
}

// Task identifies the task being mapped, for fieldPathAsEnv and messages.
type Task struct {
	RunID, Pipeline, TaskPath, PodName, NodeName string
}

// Resolve gives the runtime value of a ParamRef; the engine passes a
// closure over the task's inputs. A nil Resolve accepts string constants
// only.
type Resolve func(ParamRef) (string, error)

// PVCMount is a named volume the executor provides to the task.
type PVCMount struct {
	Name      string // the PVC name
	MountPath string // in the container
	SubPath   string // inside the volume; "" for all of it
	HostDir   string // from Sources.PVCs; "" leaves the choice to the executor
}

// EmptyDir is a fresh, empty directory for the task's lifetime.
type EmptyDir struct {
	MountPath string
	Medium    string // "" (disk) or "Memory" (tmpfs)
	SizeLimit int64  // bytes; 0 = none
}

// Local is what an executor config means on the workstation.
type Local struct {
	// Env is KEY=VALUE for secretAsEnv, configMapAsEnv and fieldPathAsEnv.
	Env []string
	// Mounts are read-only mounts of secret and config map key files.
	Mounts []contract.Mount
	// PVCs are the named volumes the executor provides.
	PVCs []PVCMount
	// EmptyDirs are emptyDirMounts and genericEphemeralVolumes.
	EmptyDirs []EmptyDir
	// ShmSize is the /dev/shm size in bytes (0 = the executor's default).
	ShmSize int64
	// Labels are podMetadata labels and annotations as container labels:
	// io.kubeflow.pod.label.<k> and io.kubeflow.pod.annotation.<k>.
	Labels map[string]string
	// Timeout is activeDeadlineSeconds (0 = none).
	Timeout time.Duration
	// PullPolicy is "", Always, IfNotPresent or Never.
	PullPolicy string
	// Mapped has one line per setting that was mapped, for people. It
	// never holds a secret or config map value.
	Mapped []string
	// Warnings has one line per setting that has no local meaning or was
	// not mapped, every unknown field included, each naming the task.
	Warnings []string
}

// Container label prefixes of podMetadata.
const (
	LabelPrefix      = "io.kubeflow.pod.label."
	AnnotationPrefix = "io.kubeflow.pod.annotation."
)

// mapper carries the state of one Local call.
type mapper struct {
	c       *ExecutorConfig
	t       Task
	src     Sources
	resolve Resolve
	scratch string
	out     *Local
	warned  map[string]bool
}

// Local maps the config to the workstation (see the package doc for the
// table). scratch is a per-task directory Local may write to: secrets and
// config maps kept as .env files are written there, one file per key, to
// be mounted. A missing secret or config map is an error wrapping
// ErrNotFound unless it is optional.
func (c *ExecutorConfig) Local(t Task, src Sources, resolve Resolve, scratch string) (*Local, error) {
	out := &Local{}
	if c == nil {
		return out, nil
	}
	if resolve == nil {
		resolve = constantOnly
	}
	m := &mapper{c: c, t: t, src: src, resolve: resolve, scratch: scratch, out: out, warned: map[string]bool{}}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", m.where(), err)
	}
	warn := func(s string) { m.warn("%s", s) }
	secrets := &store{kind: "secret", dir: src.SecretsDir, secret: true, warn: warn}
	configMaps := &store{kind: "config map", dir: src.ConfigMapsDir, warn: warn}
	steps := []func() error{
		func() error {
			for i, v := range c.SecretAsVolume {
				if err := m.asVolume("secretAsVolume", i, secrets, v.SecretName, v.SecretNameParameter, v.MountPath, v.Optional, "secret-"); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			for i, v := range c.SecretAsEnv {
				keys := make([][2]string, len(v.KeyToEnv))
				for j, ke := range v.KeyToEnv {
					keys[j] = [2]string{ke.SecretKey, ke.EnvVar}
				}
				if err := m.asEnv("secretAsEnv", i, secrets, v.SecretName, v.SecretNameParameter, keys, v.Optional); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			for i, v := range c.ConfigMapAsVolume {
				if err := m.asVolume("configMapAsVolume", i, configMaps, v.ConfigMapName, v.ConfigMapNameParameter, v.MountPath, v.Optional, "configmap-"); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			for i, v := range c.ConfigMapAsEnv {
				keys := make([][2]string, len(v.KeyToEnv))
				for j, ke := range v.KeyToEnv {
					keys[j] = [2]string{ke.ConfigMapKey, ke.EnvVar}
				}
				if err := m.asEnv("configMapAsEnv", i, configMaps, v.ConfigMapName, v.ConfigMapNameParameter, keys, v.Optional); err != nil {
					return err
				}
			}
			return nil
		},
		m.pvcMounts,
		func() error { m.fieldPaths(); return nil },
		func() error { m.podMetadata(); return nil },
		func() error { m.scheduling(); return nil },
		func() error { m.runtime(); return nil },
		m.volumes,
		func() error { m.unmapped(); return nil },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	for _, u := range c.Unknown {
		m.warn("unknown field %s: ignored (written by a newer KFP SDK, or a typo)", u)
	}
	return out, nil
}

func constantOnly(r ParamRef) (string, error) {
	if s, ok := r.Constant.(string); ok {
		return s, nil
	}
	return "", errors.New("only a string constant can be resolved here (no resolver given)")
}

// where names the task and executor in messages.
func (m *mapper) where() string {
	if m.t.TaskPath != "" {
		return fmt.Sprintf("task %q (%s)", m.t.TaskPath, m.c.Label)
	}
	return "executor " + m.c.Label
}

func (m *mapper) mapped(format string, args ...any) {
	m.out.Mapped = append(m.out.Mapped, fmt.Sprintf(format, args...))
}

func (m *mapper) warn(format string, args ...any) {
	s := m.where() + ": " + fmt.Sprintf(format, args...)
	if !m.warned[s] {
		m.warned[s] = true
		m.out.Warnings = append(m.out.Warnings, s)
	}
}

func (m *mapper) errorf(format string, args ...any) error {
	return fmt.Errorf(m.where()+": "+format, args...)
}

// name gives the secret or config map name: the parameter when set, else
// the deprecated plain name.
func (m *mapper) name(field string, i int, kind, plain string, ref *ParamRef) (string, error) {
	if ref.IsZero() {
		return plain, nil
	}
	v, err := m.resolve(*ref)
	if err != nil {
		return "", m.errorf("%s[%d]: resolve the %s name (%s): %w", field, i, kind, describeRef(*ref), err)
	}
	return v, nil
}

func (m *mapper) open(field string, i int, st *store, plain string, ref *ParamRef, optional *bool, what string) (*source, error) {
	name, err := m.name(field, i, st.kind, plain, ref)
	if err != nil {
		return nil, err
	}
	src, err := st.open(name)
	if errors.Is(err, ErrNotFound) && optional != nil && *optional {
		m.warn("%s[%d]: optional %v; %s", field, i, err, what)
		return nil, nil
	}
	if err != nil {
		return nil, m.errorf("%s[%d]: %w", field, i, err)
	}
	return src, nil
}

func (m *mapper) asEnv(field string, i int, st *store, plain string, ref *ParamRef, keys [][2]string, optional *bool) error {
	envs := make([]string, len(keys))
	for j, k := range keys {
		envs[j] = k[1]
	}
	src, err := m.open(field, i, st, plain, ref, optional, strings.Join(envs, ", ")+" not set")
	if src == nil || err != nil {
		return err
	}
	for _, k := range keys {
		key, env := k[0], k[1]
		v, from, ok, err := st.value(src, key)
		if err != nil {
			return m.errorf("%s[%d]: %w", field, i, err)
		}
		if !ok {
			if optional != nil && *optional {
				m.warn("%s[%d]: optional %s %q has no key %q; %s not set", field, i, st.kind, src.name, key, env)
				continue
			}
			return m.errorf("%s[%d]: %s %q has no key %q: looked for the file %s and a %s= line in %s: %w",
				field, i, st.kind, src.name, key, filepath.Join(src.dirPath, key), key, src.envPath, ErrNotFound)
		}
		m.out.Env = append(m.out.Env, env+"="+v)
		m.mapped("%s: %s from %s %s (%s)", field, env, st.kind, src.name, from)
	}
	return nil
}

func (m *mapper) asVolume(field string, i int, st *store, plain string, ref *ParamRef, mountPath string, optional *bool, prefix string) error {
	src, err := m.open(field, i, st, plain, ref, optional, "nothing mounted at "+mountPath)
	if src == nil || err != nil {
		return err
	}
	if src.realDir != "" && src.env != nil {
		m.warn("%s[%d]: %s %q is both %s and %s; mounting the directory", field, i, st.kind, src.name, src.dirPath, src.envPath)
	}
	dir, err := st.volumeDir(src, m.scratch, prefix)
	if err != nil {
		return m.errorf("%s[%d]: %w", field, i, err)
	}
	m.out.Mounts = append(m.out.Mounts, contract.Mount{HostPath: dir, ContainerPath: mountPath, ReadOnly: true})
	if src.realDir != "" {
		m.mapped("%s: %s %s at %s (%s)", field, st.kind, src.name, mountPath, src.dirPath)
	} else {
		m.mapped("%s: %s %s at %s (%s, keys written to %s)", field, st.kind, src.name, mountPath, src.envPath, dir)
	}
	return nil
}

func (m *mapper) pvcMounts() error {
	for i, p := range m.c.PVCMount {
		ref := p.NameRef()
		name, err := m.resolve(ref)
		if err != nil {
			return m.errorf("pvcMount[%d]: resolve the PVC name (%s): %w", i, describeRef(ref), err)
		}
		if err := ValidPVCName(name); err != nil {
			return m.errorf("pvcMount[%d]: %w", i, err)
		}
		pm := PVCMount{Name: name, MountPath: p.MountPath, HostDir: m.src.PVCs[name]}
		if p.SubPath != nil {
			pm.SubPath = *p.SubPath
		}
		m.out.PVCs = append(m.out.PVCs, pm)
		where := "a local volume"
		if pm.HostDir != "" {
			where = "host directory " + pm.HostDir
		}
		if pm.SubPath != "" {
			where += ", sub-path " + pm.SubPath
		}
		m.mapped("pvcMount: PVC %s at %s (%s)", name, p.MountPath, where)
	}
	return nil
}

func (m *mapper) fieldPaths() {
	for i, f := range m.c.FieldPathAsEnv {
		v, ok := m.fieldValue(f.FieldPath)
		if !ok {
			m.warn("fieldPathAsEnv[%d]: field path %q has no local value; %s not set", i, f.FieldPath, f.Name)
			continue
		}
		m.out.Env = append(m.out.Env, f.Name+"="+v)
		m.mapped("fieldPathAsEnv: %s = %s (%q)", f.Name, f.FieldPath, v)
	}
}

func (m *mapper) fieldValue(fp string) (string, bool) {
	switch fp {
	case "metadata.name":
		return podName(m.t), true
	case "metadata.namespace":
		if m.src.Namespace != "" {
			return m.src.Namespace, true
		}
		return "local", true
	case "metadata.uid":
		return podUID(m.t), true
	case "spec.nodeName":
		if m.t.NodeName != "" {
			return m.t.NodeName, true
		}
		if h, err := os.Hostname(); err == nil && h != "" {
			return h, true
		}
		return "localhost", true
	case "status.podIP", "status.hostIP":
		return "127.0.0.1", true
	case "spec.serviceAccountName":
		return "default", true
	}
	var md PodMetadata
	if m.c.PodMetadata != nil {
		md = *m.c.PodMetadata
	}
	if k, ok := subscript(fp, "metadata.labels"); ok {
		return md.Labels[k], true
	}
	if k, ok := subscript(fp, "metadata.annotations"); ok {
		return md.Annotations[k], true
	}
	return "", false
}

// subscript returns k of <prefix>['k'] (or ["k"]).
func subscript(fp, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(fp, prefix+"[")
	if !ok || len(rest) < 3 || rest[len(rest)-1] != ']' {
		return "", false
	}
	q := rest[0]
	inner := rest[:len(rest)-1]
	if (q != '\'' && q != '"') || inner[len(inner)-1] != q || len(inner) < 3 {
		return "", false
	}
	return inner[1 : len(inner)-1], true
}

// podName is t.PodName or a stable DNS label made of the task's name and a
// hash of the run and task path.
func podName(t Task) string {
	if t.PodName != "" {
		return t.PodName
	}
	sum := sha256.Sum256([]byte(t.RunID + "\x00" + t.TaskPath))
	h := hex.EncodeToString(sum[:5])
	base := t.TaskPath
	if i := strings.LastIndex(base, "/"); i >= 0 {
		base = base[i+1:]
	}
	var b strings.Builder
	dash := true // no leading '-'
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if s == "" {
		s = "task"
	}
	return s + "-" + h
}

// podUID is a name-based UUID (version 5 layout) of the run and task path.
func podUID(t Task) string {
	sum := sha256.Sum256([]byte("uid\x00" + t.RunID + "\x00" + t.TaskPath))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

func (m *mapper) podMetadata() {
	md := m.c.PodMetadata
	if md == nil || len(md.Labels)+len(md.Annotations) == 0 {
		return
	}
	m.out.Labels = map[string]string{}
	for _, k := range sortedKeys(md.Labels) {
		m.out.Labels[LabelPrefix+k] = md.Labels[k]
	}
	for _, k := range sortedKeys(md.Annotations) {
		m.out.Labels[AnnotationPrefix+k] = md.Annotations[k]
	}
	m.mapped("podMetadata: %d labels and %d annotations as container labels %s* and %s*",
		len(md.Labels), len(md.Annotations), LabelPrefix, AnnotationPrefix)
}

func (m *mapper) runtime() {
	c := m.c
	if c.ImagePullPolicy != "" {
		m.out.PullPolicy = c.ImagePullPolicy
		m.mapped("imagePullPolicy: %s", c.ImagePullPolicy)
	}
	if c.ActiveDeadlineSeconds > 0 {
		m.out.Timeout = time.Duration(c.ActiveDeadlineSeconds) * time.Second
		m.mapped("activeDeadlineSeconds: task timeout %s", m.out.Timeout)
	}
}

// volumes maps genericEphemeralVolume, emptyDirMounts and
// enabledSharedMemory; Validate has checked their quantities.
func (m *mapper) volumes() error {
	c := m.c
	for _, v := range c.GenericEphemeralVolume {
		e := EmptyDir{MountPath: v.MountPath}
		detail := "no size limit"
		if v.Size != "" {
			e.SizeLimit, _ = ParseQuantity(v.Size)
			detail = "size " + FormatBytes(e.SizeLimit)
		}
		m.out.EmptyDirs = append(m.out.EmptyDirs, e)
		m.mapped("genericEphemeralVolume: empty directory at %s (%s; storage class and access modes do not apply)", v.MountPath, detail)
	}
	for i, v := range c.EmptyDirMounts {
		e := EmptyDir{MountPath: v.MountPath}
		if v.Medium != nil {
			e.Medium = *v.Medium
		}
		if strings.HasPrefix(e.Medium, "HugePages") {
			m.warn("emptyDirMounts[%d]: medium %s not applicable on one machine; a plain directory", i, e.Medium)
			e.Medium = ""
		}
		detail := "disk"
		if e.Medium != "" {
			detail = e.Medium
		}
		if v.SizeLimit != nil && *v.SizeLimit != "" {
			e.SizeLimit, _ = ParseQuantity(*v.SizeLimit)
			detail += ", limit " + FormatBytes(e.SizeLimit)
		}
		m.out.EmptyDirs = append(m.out.EmptyDirs, e)
		m.mapped("emptyDirMounts: empty directory at %s (%s)", v.MountPath, detail)
	}
	if sm := c.EnabledSharedMemory; sm != nil {
		if sm.Size == "" {
			m.mapped("enabledSharedMemory: /dev/shm of the default size")
		} else {
			m.out.ShmSize, _ = ParseQuantity(sm.Size)
			m.mapped("enabledSharedMemory: /dev/shm of %s", FormatBytes(m.out.ShmSize))
		}
	}
	return nil
}
