package yamlnode

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseValuesAndPositions(t *testing.T) {
	src := "a: 1\nb: [x, 'y', 2.5, true, null]\nc:\n  d: |\n    line\n"
	n, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": int64(1), "b": []any{"x", "y", 2.5, true, nil}, "c": map[string]any{"d": "line\n"}}
	if diff := cmp.Diff(want, n.Value()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if p := n.Get("b").Items[1].Pos; p != (Pos{2, 8}) {
		t.Errorf("position of 'y' = %v", p)
	}
	if !n.Get("b").Items[1].Quoted || n.Get("b").Items[0].Quoted {
		t.Error("quoted flags wrong")
	}
}

func TestAnchorsAliasesAndMergeKeys(t *testing.T) {
	src := "base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n"
	n, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"x": int64(1), "y": int64(2)}, n.Get("use").Value()); diff != "" {
		t.Errorf("alias (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"x": int64(1), "y": int64(3)}, n.Get("merged").Value()); diff != "" {
		t.Errorf("merge: explicit keys win (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"duplicate key", "a: 1\na: 2\n", "already defined"},
		{"syntax", "a: [1, 2\n", ""},
		{"deep flow nesting", "a: " + strings.Repeat("[", 200) + strings.Repeat("]", 200), "nesting deeper than"},
		{"unknown alias", "a: *nope\n", ""},
		{"several documents", "a: 1\n---\nb: 2\n", "several"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestMultiDocument(t *testing.T) {
	docs, err := ParseAll([]byte("a: 1\n---\nb: 2\n"))
	if err != nil || len(docs) != 2 || docs[1].Get("b").Int != 2 {
		t.Fatalf("docs %v %v", docs, err)
	}
}

// aliasBytesBomb is a small file whose aliases expand into hundreds of
// megabytes while staying far below MaxNodes: lists of aliases to lists of
// long strings.
func aliasBytesBomb() string {
	var b strings.Builder
	b.WriteString("s: &s " + strings.Repeat("x", 4000) + "\n")
	prev := "s"
	for lvl := 1; lvl <= 3; lvl++ {
		name := "l" + string(rune('0'+lvl))
		b.WriteString(name + ": &" + name + " [")
		for i := 0; i < 40; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = name
	}
	return b.String()
}

func TestSecurityExpandedBytesAreBounded(t *testing.T) {
	src := aliasBytesBomb()
	if len(src) > 16<<10 {
		t.Fatalf("the bomb should be small, is %d bytes", len(src))
	}
	_, err := Parse([]byte(src))
	if err == nil {
		t.Fatal("a document expanding to 256 MB was accepted")
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Pos.Line != 4 || !strings.Contains(pe.Msg, "expands to more than") {
		t.Errorf("error = %v, want one at line 4 about the expansion", err)
	}
	// The same shape one level shallower (6.4 MB) is fine and its size is
	// what it expands to.
	small := strings.Join(strings.Split(src, "\n")[:3], "\n")
	n, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Get("l2").ExpandedSize(); got < 40*40*4000 || got > 40*40*4100 {
		t.Errorf("ExpandedSize = %d, want about %d", got, 40*40*4000)
	}
}
