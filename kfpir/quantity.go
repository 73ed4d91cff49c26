package kfpir

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// IsQuantity reports whether s is a Kubernetes quantity ("500m", "2", "4Gi").
func IsQuantity(s string) bool { return quantityPattern.MatchString(s) }

var quantityPattern = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)

// PipelineName is the rule KFP API servers apply to pipeline names.
var PipelineName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,127}$`)

// ParseQuantity parses a Kubernetes quantity ("500m", "2", "4Gi", "1.5G").
func ParseQuantity(s string) (float64, error) {
	s = strings.TrimSpace(s)
	m := quantityPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a quantity", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a quantity", s)
	}
	mult := map[string]float64{"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
		"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}[m[3]]
	return f * mult, nil
}

// FormatBytes prints a byte count with a binary unit.
func FormatBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	s := strconv.FormatFloat(b, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + units[i]
}
