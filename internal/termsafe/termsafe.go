// Package termsafe makes text from steps, parameters and IR files safe to
// print on a terminal: control characters (ANSI escape sequences that
// move the cursor, clear the screen, set the window title or change the
// keyboard; carriage returns that overwrite a line) are shown escaped
// instead of being interpreted. Tabs and newlines pass through.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// needs reports whether s holds anything Escape changes.
func needs(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f || c >= 0x80 {
			if c >= 0x80 {
				return needsRunes(s[i:])
			}
			return true
		}
	}
	return false
}

func needsRunes(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || isControl(r) {
			return true
		}
	}
	return false
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) ||
		r == '\u2028' || r == '\u2029' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// Escape returns s with every control character (but tab and newline),
// the Unicode line separators and bidirectional overrides written as \xHH
// or \uHHHH, and invalid UTF-8 bytes as \xHH.
func Escape(s string) string {
	if !needs(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Line is Escape for one line of output that may end in a newline (kept).
func Line(b []byte) []byte {
	s := string(b)
	if !needs(s) {
		return b
	}
	return []byte(Escape(s))
}
