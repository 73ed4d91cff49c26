package platform

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// quantitySuffixes are the Kubernetes quantity suffixes and their factors.
var quantitySuffixes = map[string]*big.Rat{
	"":   big.NewRat(1, 1),
	"m":  big.NewRat(1, 1000),
	"k":  big.NewRat(1e3, 1),
	"K":  big.NewRat(1e3, 1), // not Kubernetes, but common and unambiguous
	"M":  big.NewRat(1e6, 1),
	"G":  big.NewRat(1e9, 1),
	"T":  big.NewRat(1e12, 1),
	"P":  big.NewRat(1e15, 1),
	"E":  big.NewRat(1e18, 1),
	"Ki": big.NewRat(1<<10, 1),
	"Mi": big.NewRat(1<<20, 1),
	"Gi": big.NewRat(1<<30, 1),
	"Ti": big.NewRat(1<<40, 1),
	"Pi": big.NewRat(1<<50, 1),
	"Ei": big.NewRat(1<<60, 1),
}

// ParseQuantity parses a Kubernetes quantity used as a size in bytes: a
// decimal number ("1", "1.5", ".5") with an optional suffix: k/K, M, G, T,
// P, E (powers of 1000), Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024), m
// (thousandths), or a decimal exponent ("1e3", "5E-1"). A fractional
// number of bytes is rounded up, as Kubernetes does. Negative sizes and
// sizes beyond int64 are errors; the empty string is an error too.
func ParseQuantity(s string) (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("invalid quantity %q: %s", truncate(s, 40), why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > 64 {
		return bad("too long")
	}
	t := strings.TrimPrefix(s, "+")
	if strings.HasPrefix(t, "-") {
		return bad("must not be negative")
	}
	// The number: digits with at most one '.'.
	i := 0
	digits, dots := 0, 0
	for ; i < len(t); i++ {
		c := t[i]
		if c >= '0' && c <= '9' {
			digits++
		} else if c == '.' {
			dots++
		} else {
			break
		}
	}
	if digits == 0 || dots > 1 {
		return bad("want a number with an optional suffix like 512Mi or 1.5G")
	}
	num, ok := new(big.Rat).SetString(t[:i])
	if !ok {
		return bad("not a number")
	}
	suffix := t[i:]
	if f, ok := quantitySuffixes[suffix]; ok {
		num.Mul(num, f)
	} else if suffix[0] == 'e' || suffix[0] == 'E' {
		exp, err := strconv.Atoi(suffix[1:])
		if err != nil || exp < -30 || exp > 30 {
			return bad("unknown suffix " + strconv.Quote(suffix))
		}
		f := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil))
		if exp < 0 {
			f.Inv(f)
		}
		num.Mul(num, f)
	} else {
		return bad("unknown suffix " + strconv.Quote(suffix))
	}
	// Round up to whole bytes.
	q, r := new(big.Int).QuoRem(num.Num(), num.Denom(), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return bad("too large")
	}
	return q.Int64(), nil
}

// FormatBytes writes a byte count for people, in the largest binary unit
// that divides it ("512Mi", "1536Ki", "100").
func FormatBytes(n int64) string {
	units := []string{"Ei", "Pi", "Ti", "Gi", "Mi", "Ki"}
	for i, u := range units {
		f := int64(1) << (10 * (len(units) - i))
		if n != 0 && n%f == 0 {
			return strconv.FormatInt(n/f, 10) + u
		}
	}
	return strconv.FormatInt(n, 10)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
