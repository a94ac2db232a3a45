package version

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Version
	}{
		{"1.0", Version{0, "1.0", ""}},
		{"1.0-1", Version{0, "1.0", "1"}},
		{"0:1.0-1", Version{0, "1.0", "1"}},
		{"2:1.0-1", Version{2, "1.0", "1"}},
		{"1:2.30-1+deb12u1", Version{1, "2.30", "1+deb12u1"}},
		{"1.2-3-4", Version{0, "1.2-3", "4"}}, // revision after the last hyphen
		{"1:2:3-4", Version{1, "2:3", "4"}},   // epoch before the first colon
		{"1.0~rc1-2~bpo12+1", Version{0, "1.0~rc1", "2~bpo12+1"}},
		{"  1.0-1\n", Version{0, "1.0", "1"}},          // dpkg trims surrounding space
		{"2147483647:1", Version{2147483647, "1", ""}}, // dpkg's maximum epoch
		{"007:1", Version{7, "1", ""}},
		{"1.0+dfsg.1-0ubuntu1", Version{0, "1.0+dfsg.1", "0ubuntu1"}},
		{"3.0a", Version{0, "3.0a", ""}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): unexpected error %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct{ in, reason string }{
		{"", "empty version"},
		{"   ", "empty version"},
		{"1.0 1", "embedded whitespace"},
		{"1.0\t-1", "embedded whitespace"},
		{":1.0", "empty epoch"},
		{"a:1.0", "epoch is not a number"},
		{"-1:1.0", "epoch is not a number"},
		{"+1:1.0", "epoch is not a number"},
		{"2147483648:1.0", "epoch is too big"},
		{"99999999999999999999999:1.0", "epoch is too big"},
		{"1.0-", "empty revision"},
		{"1:", "empty upstream version"},
		{"-1", "empty upstream version"},
		{"1:-1", "empty upstream version"},
		{"a1.0", "upstream version does not start with a digit"},
		{"~1", "upstream version does not start with a digit"},
		{"1:.0-1", "upstream version does not start with a digit"},
		{"1.0_1", `invalid character '_' in upstream version`},
		{"1.0@", `invalid character '@' in upstream version`},
		{"1:1.0-1:2", `invalid character ':' in revision`},
		{"1.0-1_2", `invalid character '_' in revision`},
		{"1.0-é", `invalid character 0xc3 in revision`},
	}
	for _, tt := range tests {
		v, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) = %#v, want error %q", tt.in, v, tt.reason)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error %v does not wrap ErrInvalid", tt.in, err)
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error %T is not a *ParseError", tt.in, err)
			continue
		}
		if pe.Input != tt.in || pe.Reason != tt.reason {
			t.Errorf("Parse(%q) error = {Input %q, Reason %q}, want {%q, %q}", tt.in, pe.Input, pe.Reason, tt.in, tt.reason)
		}
	}
}

func TestParseErrorText(t *testing.T) {
	_, err := Parse("1.0-")
	want := `version: invalid version "1.0-": empty revision`
	if err == nil || err.Error() != want {
		t.Errorf("Parse(%q) error = %v, want %q", "1.0-", err, want)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		v    Version
		want string
	}{
		{Version{0, "1.0", ""}, "1.0"},
		{Version{0, "1.0", "1"}, "1.0-1"},
		{Version{3, "1.0", "1"}, "3:1.0-1"},
		{Version{0, "1:2", "1"}, "0:1:2-1"}, // the epoch keeps the colon in upstream
		{Version{}, ""},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.v, got, tt.want)
		}
	}
	// "0:" is dropped when it changes nothing.
	if got := MustParse("0:1.0-1").String(); got != "1.0-1" {
		t.Errorf("MustParse(%q).String() = %q, want %q", "0:1.0-1", got, "1.0-1")
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse(\"\") did not panic")
		}
	}()
	MustParse("")
}

// TestCompare checks hand-picked orderings; each pair is checked both ways so
// a Compare that ignores its arguments' order fails.
func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		// equal forms
		{"1.0", "1.0", 0},
		{"0:1.0", "1.0", 0},
		{"1.0-0", "1.0", 0}, // an empty revision compares like "0"
		{"1.00", "1.0", 0},  // leading zeros in digit runs do not count
		{"1.001", "1.1", 0},
		{"1.0-00", "1.0-0", 0},
		// digits compare numerically
		{"1.2", "1.10", -1},
		{"1.9", "1.10", -1},
		{"10", "9", 1},
		{"1.0.1", "1.0", 1},
		{"123456789012345678901234567890", "123456789012345678901234567891", -1}, // longer than int64
		// tilde sorts before everything, even the end
		{"1.0~rc1", "1.0", -1},
		{"1.0~~", "1.0~", -1},
		{"1.0~~a", "1.0~~", 1},
		{"1.0~", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0~beta", "1.0~rc", -1},
		{"1.0-1~bpo1", "1.0-1", -1},
		{"1.0-1", "1.0-1+b1", -1},
		{"1.0-1~", "1.0-1", -1},
		// letters sort before non-letters, and by ASCII among themselves
		{"1.0a", "1.0+", -1},
		{"1.0a", "1.0.", -1},
		{"1.0+", "1.0.", -1}, // '+' (43) before '.' (46), both +256
		{"1.0-", "1.0.", -1}, // not valid but Compare still orders it: '-' before '.'
		{"1.0-", "1.0-", 0},
		{"1.0A", "1.0a", -1},
		{"1.0Z", "1.0a", -1},
		{"1.0a", "1.0", 1}, // a letter sorts after the end
		{"1.0+", "1.0", 1}, // so does any other non-tilde character
		{"1.0a", "1.0.1", -1},
		{"1a", "1.", -1},
		// a digit run is read to its end before anything after it counts
		{"1.0", "1.01", -1},
		{"1a", "10", -1},
		{"1.0b", "1.0a1", 1},
		// epochs dominate
		{"1:0.1", "9.9", 1},
		{"1:1.0", "2:0.1", -1},
		{"2147483647:1", "2147483646:99", 1},
		// revisions break ties in upstream only
		{"1.0-2", "1.0-10", -1},
		{"1.0-1ubuntu1", "1.0-1", 1},
		{"1.0-1ubuntu1", "1.0-1build1", 1},
		{"1.0-1+deb12u1", "1.0-1", 1},
		{"1.1-1", "1.0-9", 1},
		{"2.0-1", "2.0+dfsg-1", -1},
		{"7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
		{"1:9.18.28-1~deb12u2", "1:9.18.28-1", -1},
	}
	for _, tt := range tests {
		a, b := mustParseLoose(t, tt.a), mustParseLoose(t, tt.b)
		if got := Compare(a, b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Compare(b, a); got != -tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

// mustParseLoose parses s, falling back to a hand split for the few cases
// above that are deliberately invalid, so Compare's behaviour on any Version
// is pinned too.
func mustParseLoose(t *testing.T, s string) Version {
	t.Helper()
	if v, err := Parse(s); err == nil {
		return v
	}
	return Version{Upstream: s}
}

func TestCompareZeroValue(t *testing.T) {
	if got := Compare(Version{}, MustParse("0")); got != 0 {
		t.Errorf("Compare(zero, 0) = %d, want 0 (empty and \"0\" compare equal in dpkg)", got)
	}
	if got := Compare(Version{}, MustParse("0~")); got != 1 {
		t.Errorf("Compare(zero, 0~) = %d, want 1", got)
	}
	if got := Compare(Version{}, MustParse("0.1")); got != -1 {
		t.Errorf("Compare(zero, 0.1) = %d, want -1", got)
	}
}

func BenchmarkCompare(b *testing.B) {
	x, y := MustParse("1:2.36.1-8+deb12u1"), MustParse("1:2.36.1-8+deb12u10")
	for b.Loop() {
		Compare(x, y)
	}
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("1:2.36.1-8+deb12u1"); err != nil {
			b.Fatal(err)
		}
	}
}
