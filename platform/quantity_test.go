package platform

import "testing"

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{in: "0", want: 0},
		{in: "100", want: 100},
		{in: "+5", want: 5},
		{in: "1k", want: 1000},
		{in: "1K", want: 1000},
		{in: "2M", want: 2_000_000},
		{in: "3G", want: 3_000_000_000},
		{in: "1T", want: 1e12},
		{in: "1P", want: 1e15},
		{in: "2E", want: 2e18},
		{in: "1Ki", want: 1024},
		{in: "64Mi", want: 64 << 20},
		{in: "1Gi", want: 1 << 30},
		{in: "1.5Gi", want: 3 << 29},
		{in: ".5Ki", want: 512},
		{in: "2Ti", want: 2 << 40},
		{in: "1Pi", want: 1 << 50},
		{in: "7Ei", want: 7 << 60},
		{in: "1500m", want: 2}, // 1.5 bytes, rounded up
		{in: "1e3", want: 1000},
		{in: "5E-1", want: 1},
		{in: "1.0000001", want: 2},
		{in: "", err: `invalid quantity "": empty`},
		{in: "-1Gi", err: `invalid quantity "-1Gi": must not be negative`},
		{in: "Gi", err: `invalid quantity "Gi": want a number with an optional suffix like 512Mi or 1.5G`},
		{in: "1..5", err: `invalid quantity "1..5": want a number with an optional suffix like 512Mi or 1.5G`},
		{in: "1 Gi", err: `invalid quantity "1 Gi": unknown suffix " Gi"`},
		{in: "1gi", err: `invalid quantity "1gi": unknown suffix "gi"`},
		{in: "1e", err: `invalid quantity "1e": unknown suffix "e"`},
		{in: "1e99", err: `invalid quantity "1e99": unknown suffix "e99"`},
		{in: "8Ei", err: `invalid quantity "8Ei": too large`},
		{in: "99999999999999999999", err: `invalid quantity "99999999999999999999": too large`},
	}
	for _, tt := range tests {
		got, err := ParseQuantity(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseQuantity(%q) = %d, %v; want error %s", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 100: "100", 1024: "1Ki", 1536: "1536", 3 << 29: "1536Mi", 2 << 30: "2Gi", 7 << 60: "7Ei"} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}
