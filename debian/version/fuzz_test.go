package version

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors are typed, and
// that a parsed version survives String and Parse again unchanged in order.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"1.0", "1:2.30-1+deb12u1", "1.0~rc1-2~bpo12+1", "0:1:2-3", "1.2-3-4",
		"", " ", "1.0-", ":1", "a1", "2147483648:1", "1.0_1", "\x00", "1~~a-0.~",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v (%T) is not a *ParseError wrapping ErrInvalid", s, err, err)
			}
			return
		}
		str := v.String()
		w, err := Parse(str)
		if err != nil {
			t.Fatalf("Parse(%q) = %#v whose String %q does not parse: %v", s, v, str, err)
		}
		if w != v {
			t.Fatalf("Parse(%q) = %#v but Parse(String()) = %#v", s, v, w)
		}
		if c := Compare(v, w); c != 0 {
			t.Fatalf("Compare(Parse(%q), Parse(%q)) = %d, want 0", s, str, c)
		}
	})
}
