package dependency

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors are typed and
// point inside the input, and that String gives text Parse reads back equal.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "libc6 (>= 2.36)", "a | b:any (<< 1~) [amd64 !i386] <!nocheck> <stage1>, c,",
		"foo(>=1)[amd64]<x>|bar", "a, , b", "foo (=> 1)", "foo [", "foo <", "foo (>= 1:2:3-4)",
		"${misc:Depends}", "x:y:z", "a\n , b\t|c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rels, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) error %v (%T) is not a *ParseError wrapping ErrSyntax", s, err, err)
			}
			if pe.Input != s || pe.Offset < 0 || pe.Offset > len(s) {
				t.Fatalf("Parse(%q) error has Input %q and Offset %d", s, pe.Input, pe.Offset)
			}
			return
		}
		str := rels.String()
		again, err := Parse(str)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, str, err)
		}
		if !reflect.DeepEqual(again, rels) {
			t.Fatalf("Parse(%q) = %#v but Parse(String()) = %#v", s, rels, again)
		}
	})
}
