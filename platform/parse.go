package platform

import (
	"fmt"
	"math"
	"path"
	"reflect"
	"strings"
	"time"
)

const executorsPath = "platforms.kubernetes.deploymentSpec.executors"

// Parse reads the kubernetes platform spec from the second document of an
// IR file (kfpir.IR.Platform: the whole document, platforms: ...). A nil or
// empty document gives an empty Spec.
//
// A field this package does not know is recorded, never dropped: in
// ExecutorConfig.Unknown inside an executor config, in Spec.Unknown
// elsewhere. A field of the wrong shape, a missing required field or a value
// out of range is an error; the error is FieldErrors, every problem with its
// full field path.
func Parse(doc map[string]any) (*Spec, error) {
	s := &Spec{Executors: map[string]*ExecutorConfig{}}
	var errs FieldErrors
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	// mapping returns m[key] as a mapping; a missing or null one is empty.
	mapping := func(m map[string]any, key, path string) map[string]any {
		switch v := m[key].(type) {
		case nil:
			return nil
		case map[string]any:
			return v
		default:
			fail(path, "must be a mapping, not %s", shapeOf(v))
			return nil
		}
	}
	for _, k := range sortedKeys(doc) {
		if k != "platforms" {
			s.Unknown = append(s.Unknown, k)
		}
	}
	platforms := mapping(doc, "platforms", "platforms")
	for _, k := range sortedKeys(platforms) {
		if k != "kubernetes" {
			s.Unknown = append(s.Unknown, "platforms."+k)
		}
	}
	k8s := mapping(platforms, "kubernetes", "platforms.kubernetes")
	for _, k := range sortedKeys(k8s) {
		switch k {
		case "deploymentSpec", "deployment_spec":
		case "pipelineConfig", "pipeline_config":
			s.PipelineConfig = mapping(k8s, k, "platforms.kubernetes."+k)
		case "platform", "config": // SinglePlatformSpec strings, unused by the KFP backend
			if _, ok := k8s[k].(map[string]any); ok {
				s.Unknown = append(s.Unknown, "platforms.kubernetes."+k)
			}
		default:
			s.Unknown = append(s.Unknown, "platforms.kubernetes."+k)
		}
	}
	dep := mapping(k8s, "deploymentSpec", "platforms.kubernetes.deploymentSpec")
	if dep == nil {
		dep = mapping(k8s, "deployment_spec", "platforms.kubernetes.deployment_spec")
	}
	for _, k := range sortedKeys(dep) {
		if k != "executors" {
			s.Unknown = append(s.Unknown, "platforms.kubernetes.deploymentSpec."+k)
		}
	}
	execs := mapping(dep, "executors", executorsPath)
	for _, label := range sortedKeys(execs) {
		d := &decoder{base: executorsPath + "." + label}
		c := &ExecutorConfig{Label: label}
		if execs[label] == nil {
			s.Executors[label] = c
			continue
		}
		d.value("", execs[label], reflect.ValueOf(c).Elem())
		c.Unknown = d.unknown
		errs = append(errs, d.errs...)
		if len(d.errs) == 0 {
			errs = append(errs, c.validate(d.base)...)
		}
		s.Executors[label] = c
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// Validate checks what Parse checks beyond the shapes: required fields,
// enumerations, paths and quantities. Local calls it; a config built in code
// rather than by Parse should pass it too.
func (c *ExecutorConfig) Validate() error {
	if c == nil {
		return nil
	}
	if errs := c.validate(executorsPath + "." + c.Label); len(errs) > 0 {
		return errs
	}
	return nil
}

func (c *ExecutorConfig) validate(base string) FieldErrors {
	var errs FieldErrors
	at := func(field string, i int) string { return fmt.Sprintf("%s.%s[%d]", base, field, i) }
	fail := func(p, format string, args ...any) {
		errs = append(errs, &FieldError{Path: p, Msg: fmt.Sprintf(format, args...)})
	}
	mountPath := func(p, mp string) {
		switch {
		case mp == "":
			fail(p+".mountPath", "is required")
		case !path.IsAbs(mp):
			fail(p+".mountPath", "must be an absolute path, not %q", mp)
		}
	}
	named := func(p, nameField, name string, ref *ParamRef) {
		if name == "" && ref.IsZero() {
			fail(p, "%s or %sParameter is required", nameField, nameField)
		}
	}
	envVar := func(p, name string) {
		if err := checkEnvName(name); err != nil {
			fail(p, "%v", err)
		}
	}
	for i, v := range c.SecretAsVolume {
		named(at("secretAsVolume", i), "secretName", v.SecretName, v.SecretNameParameter)
		mountPath(at("secretAsVolume", i), v.MountPath)
	}
	for i, v := range c.SecretAsEnv {
		p := at("secretAsEnv", i)
		named(p, "secretName", v.SecretName, v.SecretNameParameter)
		for j, ke := range v.KeyToEnv {
			kp := fmt.Sprintf("%s.keyToEnv[%d]", p, j)
			if ke.SecretKey == "" {
				fail(kp+".secretKey", "is required")
			}
			envVar(kp+".envVar", ke.EnvVar)
		}
	}
	for i, v := range c.ConfigMapAsVolume {
		named(at("configMapAsVolume", i), "configMapName", v.ConfigMapName, v.ConfigMapNameParameter)
		mountPath(at("configMapAsVolume", i), v.MountPath)
	}
	for i, v := range c.ConfigMapAsEnv {
		p := at("configMapAsEnv", i)
		named(p, "configMapName", v.ConfigMapName, v.ConfigMapNameParameter)
		for j, ke := range v.KeyToEnv {
			kp := fmt.Sprintf("%s.keyToEnv[%d]", p, j)
			if ke.ConfigMapKey == "" {
				fail(kp+".configMapKey", "is required")
			}
			envVar(kp+".envVar", ke.EnvVar)
		}
	}
	for i, v := range c.PVCMount {
		p := at("pvcMount", i)
		ref := v.NameRef()
		if ref.IsZero() {
			fail(p, "pvcNameParameter (or constant, componentInputParameter, taskOutputParameter) is required")
		}
		mountPath(p, v.MountPath)
		if v.SubPath != nil && *v.SubPath != "" {
			sp := *v.SubPath
			if path.IsAbs(sp) || sp == ".." || strings.HasPrefix(sp, "../") || strings.Contains(sp, "/../") || strings.HasSuffix(sp, "/..") {
				fail(p+".subPath", "must be a relative path without '..', not %q", sp)
			}
		}
	}
	for i, v := range c.FieldPathAsEnv {
		p := at("fieldPathAsEnv", i)
		envVar(p+".name", v.Name)
		if v.FieldPath == "" {
			fail(p+".fieldPath", "is required")
		}
	}
	switch c.ImagePullPolicy {
	case "", "Always", "IfNotPresent", "Never":
	default:
		fail(base+".imagePullPolicy", "must be Always, IfNotPresent or Never, not %q", c.ImagePullPolicy)
	}
	if c.ActiveDeadlineSeconds < 0 || c.ActiveDeadlineSeconds > math.MaxInt64/int64(time.Second) {
		fail(base+".activeDeadlineSeconds", "must be between 0 and %d", math.MaxInt64/int64(time.Second))
	}
	for i, v := range c.GenericEphemeralVolume {
		p := at("genericEphemeralVolume", i)
		mountPath(p, v.MountPath)
		if _, err := ParseQuantity(v.Size); v.Size != "" && err != nil {
			fail(p+".size", "%v", err)
		}
	}
	for i, v := range c.EmptyDirMounts {
		p := at("emptyDirMounts", i)
		mountPath(p, v.MountPath)
		if v.SizeLimit != nil && *v.SizeLimit != "" {
			if _, err := ParseQuantity(*v.SizeLimit); err != nil {
				fail(p+".sizeLimit", "%v", err)
			}
		}
		if v.Medium != nil {
			switch m := *v.Medium; {
			case m == "", m == "Memory", strings.HasPrefix(m, "HugePages"):
			default:
				fail(p+".medium", `must be "", Memory or HugePages, not %q`, m)
			}
		}
	}
	if sm := c.EnabledSharedMemory; sm != nil && sm.Size != "" {
		if _, err := ParseQuantity(sm.Size); err != nil {
			fail(base+".enabledSharedMemory.size", "%v", err)
		}
	}
	return errs
}

// checkEnvName accepts what Kubernetes accepts as an env var name: any
// printable text without '='.
func checkEnvName(name string) error {
	if name == "" {
		return fmt.Errorf("is required")
	}
	for _, r := range name {
		if r == '=' || r < ' ' || r == 0x7f {
			return fmt.Errorf("%q is not a valid env var name", name)
		}
	}
	return nil
}
