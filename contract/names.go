package contract

import (
	"regexp"
	"strings"
)

// DisplayName turns a task path into what people read: generated groups are
// dropped and loop indexes kept ("exit-handler-1/for-loop-2[0]/train" ->
// "train[0]").
func DisplayName(path string) string {
	parts := strings.Split(path, "/")
	var out []string
	idx := ""
	for _, p := range parts {
		base, index := p, ""
		if i := strings.IndexByte(p, '['); i >= 0 {
			base, index = p[:i], p[i:]
		}
		if generatedGroup.MatchString(base) {
			idx += index
			continue
		}
		out = append(out, base+idx+index)
		idx = ""
	}
	if len(out) == 0 {
		return path
	}
	return strings.Join(out, "/")
}

var generatedGroup = regexp.MustCompile(`^(condition|condition-branches|for-loop|exit-handler)-[0-9]+$`)

// IsTarget reports whether a task (display name) is the benchmark target:
// the task itself or one of its loop iterations. The runner always runs it
// and skips what comes after it; bench keeps only its records.
func IsTarget(name, target string) bool {
	return target != "" && (name == target || strings.HasPrefix(name, target+"["))
}
