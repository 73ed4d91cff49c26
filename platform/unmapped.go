package platform

import (
	"fmt"
	"strings"
)

// The settings below have no meaning on one machine, or are not mapped;
// each becomes one warning that shows what the IR asked for.

const notApplicable = "not applicable on one machine"

func (m *mapper) scheduling() {
	c := m.c
	if ns := c.NodeSelector; ns != nil {
		if len(ns.Labels) > 0 {
			m.warn("nodeSelector %s: %s", formatMap(ns.Labels), notApplicable)
		}
		if !ns.NodeSelectorJSON.IsZero() {
			m.warn("nodeSelector (nodeSelectorJson from %s): %s", describeRef(*ns.NodeSelectorJSON), notApplicable)
		}
	}
	if len(c.Tolerations) > 0 {
		parts := make([]string, len(c.Tolerations))
		for i, t := range c.Tolerations {
			if !t.TolerationJSON.IsZero() {
				parts[i] = "tolerationJson from " + describeRef(*t.TolerationJSON)
				continue
			}
			parts[i] = strings.Join(nonEmpty(t.Key, t.Operator, t.Value, t.Effect), " ")
		}
		m.warn("tolerations [%s]: %s", strings.Join(parts, "; "), notApplicable)
	}
	if n := len(c.NodeAffinity); n > 0 {
		m.warn("nodeAffinity (%s): %s", plural(n, "term"), notApplicable)
	}
	if n := len(c.PodAffinity); n > 0 {
		m.warn("podAffinity (%s): %s", plural(n, "term"), notApplicable)
	}
	if len(c.ImagePullSecret) > 0 {
		names := make([]string, len(c.ImagePullSecret))
		for i, s := range c.ImagePullSecret {
			names[i] = s.SecretName
			if names[i] == "" && !s.SecretNameParameter.IsZero() {
				names[i] = "(" + describeRef(*s.SecretNameParameter) + ")"
			}
		}
		m.warn("imagePullSecret %s: %s; the container engine uses its own registry logins (docker login)",
			strings.Join(names, ", "), notApplicable)
	}
}

func (m *mapper) unmapped() {
	c := m.c
	if sc := c.SecurityContext; sc != nil {
		var parts []string
		if sc.RunAsUser != nil {
			parts = append(parts, fmt.Sprintf("runAsUser: %d", *sc.RunAsUser))
		}
		if sc.RunAsGroup != nil {
			parts = append(parts, fmt.Sprintf("runAsGroup: %d", *sc.RunAsGroup))
		}
		if sc.RunAsNonRoot != nil {
			parts = append(parts, fmt.Sprintf("runAsNonRoot: %t", *sc.RunAsNonRoot))
		}
		m.warn("securityContext {%s}: not mapped; the step runs as the image's user (docker) or as you (process)",
			strings.Join(parts, ", "))
	}
	if len(c.InitContainers) > 0 {
		parts := make([]string, len(c.InitContainers))
		for i, ic := range c.InitContainers {
			parts[i] = fmt.Sprintf("%s (%s)", ic.Name, ic.Image)
		}
		m.warn("initContainers [%s]: not mapped; they do not run before the step", strings.Join(parts, ", "))
	}
}

// describeRef says what a parameter reference names, for people.
func describeRef(r ParamRef) string {
	switch {
	case r.Constant != nil:
		return fmt.Sprintf("constant %s", truncate(fmt.Sprint(r.Constant), 80))
	case r.ComponentInputParameter != "":
		return fmt.Sprintf("input %s", r.ComponentInputParameter)
	case r.TaskOutputParameter != nil:
		return fmt.Sprintf("output %s of task %s", r.TaskOutputParameter.OutputParameterKey, r.TaskOutputParameter.ProducerTask)
	}
	return "nothing"
}

// formatMap writes {k: v, ...} in key order.
func formatMap(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+": "+m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// StaticWarnings returns the warnings of the config that depend neither on
// the run's values nor on the local stores (scheduling fields, settings
// that are not mapped, unknown fields), for the start of a run.
func (c *ExecutorConfig) StaticWarnings(t Task) []string {
	if c == nil {
		return nil
	}
	m := &mapper{c: c, t: t, out: &Local{}, warned: map[string]bool{}}
	m.scheduling()
	m.unmapped()
	for _, u := range c.Unknown {
		m.warn("unknown field %s: ignored (written by a newer KFP SDK, or a typo)", u)
	}
	return m.out.Warnings
}

// Refs returns the parameter references of the config that name secrets,
// config maps and PVCs and are not constants: what the engine resolves
// from the task's scope before Local runs. RefKey identifies each.
func (c *ExecutorConfig) Refs() []ParamRef {
	if c == nil {
		return nil
	}
	var out []ParamRef
	add := func(r *ParamRef) {
		if r != nil && r.Constant == nil && !r.IsZero() {
			out = append(out, *r)
		}
	}
	for _, v := range c.SecretAsVolume {
		add(v.SecretNameParameter)
	}
	for _, v := range c.SecretAsEnv {
		add(v.SecretNameParameter)
	}
	for _, v := range c.ConfigMapAsVolume {
		add(v.ConfigMapNameParameter)
	}
	for _, v := range c.ConfigMapAsEnv {
		add(v.ConfigMapNameParameter)
	}
	for i := range c.PVCMount {
		r := c.PVCMount[i].NameRef()
		add(&r)
	}
	return out
}

// RefKey identifies a parameter reference: "input NAME" or "output KEY of
// task TASK".
func RefKey(r ParamRef) string { return describeRef(r) }
