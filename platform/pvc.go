package platform

import (
	"errors"
	"fmt"
	"strings"
)

// The images of the SDK's kubernetes.CreatePVC and DeletePVC tasks: there
// is no such image, the backend does the work itself.
const (
	CreatePVCImage = "argostub/createpvc"
	DeletePVCImage = "argostub/deletepvc"
)

// IsCreatePVC reports whether a container image marks a CreatePVC task.
func IsCreatePVC(image string) bool { return imageName(image) == CreatePVCImage }

// IsDeletePVC reports whether a container image marks a DeletePVC task.
func IsDeletePVC(image string) bool { return imageName(image) == DeletePVCImage }

// imageName strips the digest, the tag and a Docker Hub registry prefix.
func imageName(image string) string {
	s := strings.TrimSpace(image)
	if i := strings.Index(s, "@"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		s = s[:i]
	}
	for _, p := range []string{"docker.io/", "index.docker.io/", "registry-1.docker.io/"} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// CreatePVCName gives the name of the PVC a CreatePVC task creates from the
// task's input parameters: pvc_name, or <workflowName>-<pvc_name_suffix>.
// Exactly one of the two must be set (an empty string or null counts as
// unset), and the name must be a DNS-1123 subdomain. The SDK's own
// examples write suffixes with a leading '-'; it is not doubled.
func CreatePVCName(inputs map[string]any, workflowName string) (string, error) {
	name, err := stringInput(inputs, "pvc_name")
	if err != nil {
		return "", err
	}
	suffix, err := stringInput(inputs, "pvc_name_suffix")
	if err != nil {
		return "", err
	}
	switch {
	case name != "" && suffix != "":
		return "", errors.New("createpvc: set only one of pvc_name and pvc_name_suffix")
	case name == "" && suffix == "":
		return "", errors.New("createpvc: one of pvc_name and pvc_name_suffix is required")
	case suffix != "":
		if workflowName == "" {
			return "", errors.New("createpvc: pvc_name_suffix needs a workflow name")
		}
		name = workflowName + "-" + strings.TrimPrefix(suffix, "-")
	}
	if err := ValidPVCName(name); err != nil {
		return "", fmt.Errorf("createpvc: %w", err)
	}
	return name, nil
}

// DeletePVCName gives the name of the PVC a DeletePVC task deletes.
func DeletePVCName(inputs map[string]any) (string, error) {
	name, err := stringInput(inputs, "pvc_name")
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", errors.New("deletepvc: pvc_name is required")
	}
	if err := ValidPVCName(name); err != nil {
		return "", fmt.Errorf("deletepvc: %w", err)
	}
	return name, nil
}

func stringInput(inputs map[string]any, key string) (string, error) {
	switch v := inputs[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("input %s must be a string, not %s", key, shapeOf(v))
	}
}

// ValidPVCName checks that name is a DNS-1123 subdomain, as Kubernetes
// requires of a PVC name: at most 253 characters, lower-case letters,
// digits, '-' and '.', each dot-separated part starting and ending with a
// letter or digit. Such a name is also a safe single file name.
func ValidPVCName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("PVC name %q is not a DNS-1123 subdomain: %s", truncate(name, 80), why)
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > 253 {
		return bad("longer than 253 characters")
	}
	for _, part := range strings.Split(name, ".") {
		if part == "" {
			return bad("empty part between dots")
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
			if !alnum && c != '-' {
				return bad("only lower-case letters, digits, '-' and '.' are allowed")
			}
			if !alnum && (i == 0 || i == len(part)-1) {
				return bad("each part must start and end with a letter or digit")
			}
		}
	}
	return nil
}
