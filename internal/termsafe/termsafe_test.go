package termsafe

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSecurityEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text\twith tab\n", "plain text\twith tab\n"},
		{"accents: é ü 日本", "accents: é ü 日本"},
		{"\x1b[2J\x1b[Hclear", `\x1b[2J\x1b[Hclear`},
		{"title\x1b]0;pwned\x07", `title\x1b]0;pwned\x07`},
		{"over\rwrite", `over\x0dwrite`},
		{"del\x7f", `del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"bad \xff utf8", `bad \xff utf8`},
		{"", ""},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, Escape(tc.in)); diff != "" {
			t.Errorf("Escape(%q) (-want +got):\n%s", tc.in, diff)
		}
		if got := string(Line([]byte(tc.in))); got != tc.want {
			t.Errorf("Line(%q) = %q", tc.in, got)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"a", "\x1b[31m", "\xff\xfe", "\u202e", "x\ty\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for i := 0; i < len(out); i++ {
			if c := out[i]; (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f {
				t.Fatalf("Escape(%q) = %q keeps control byte %#x", s, out, c)
			}
		}
		if Escape(out) != out {
			t.Fatalf("Escape is not idempotent on %q", s)
		}
	})
}
