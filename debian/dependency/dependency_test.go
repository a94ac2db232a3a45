package dependency

import (
	"errors"
	"reflect"
	"testing"

	"jailmgr/debian/version"
)

func v(s string) version.Version { return version.MustParse(s) }

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Relations
	}{
		{"", nil},
		{" \n\t", nil},
		{"libc6", Relations{{{Name: "libc6"}}}},
		{"libc6 (>= 2.36)", Relations{{{Name: "libc6", Op: OpGreaterEq, Version: v("2.36")}}}},
		{"a (<< 1), b (<= 2), c (= 3), d (>= 4), e (>> 5)", Relations{
			{{Name: "a", Op: OpLess, Version: v("1")}},
			{{Name: "b", Op: OpLessEq, Version: v("2")}},
			{{Name: "c", Op: OpEq, Version: v("3")}},
			{{Name: "d", Op: OpGreaterEq, Version: v("4")}},
			{{Name: "e", Op: OpGreater, Version: v("5")}},
		}},
		// the deprecated single-character forms mean <= and >=, as in dpkg
		{"a (< 1), b (> 2)", Relations{
			{{Name: "a", Op: OpLessEq, Version: v("1")}},
			{{Name: "b", Op: OpGreaterEq, Version: v("2")}},
		}},
		{"default-mta | mail-transport-agent", Relations{{{Name: "default-mta"}, {Name: "mail-transport-agent"}}}},
		{"a, b | c (>= 1:2.0~rc1-1) | d, e", Relations{
			{{Name: "a"}},
			{{Name: "b"}, {Name: "c", Op: OpGreaterEq, Version: v("1:2.0~rc1-1")}, {Name: "d"}},
			{{Name: "e"}},
		}},
		{"python3:any (>= 3.11~), libfoo:amd64, bar:native", Relations{
			{{Name: "python3", ArchQual: "any", Op: OpGreaterEq, Version: v("3.11~")}},
			{{Name: "libfoo", ArchQual: "amd64"}},
			{{Name: "bar", ArchQual: "native"}},
		}},
		{"libc6-dev [amd64 !i386 linux-any]", Relations{{{Name: "libc6-dev", Archs: []string{"amd64", "!i386", "linux-any"}}}}},
		{"foo (>= 1) [!hurd-i386] <!nocheck> <stage1 !cross>", Relations{{{
			Name: "foo", Op: OpGreaterEq, Version: v("1"), Archs: []string{"!hurd-i386"}, Profiles: "<!nocheck> <stage1 !cross>",
		}}}},
		{"foo <!nocheck>, bar", Relations{{{Name: "foo", Profiles: "<!nocheck>"}}, {{Name: "bar"}}}},
		// white space variants: none at all, lots, tabs, folded lines
		{"foo(>=1.0)[amd64]<!nocheck>|bar,baz", Relations{
			{{Name: "foo", Op: OpGreaterEq, Version: v("1.0"), Archs: []string{"amd64"}, Profiles: "<!nocheck>"}, {Name: "bar"}},
			{{Name: "baz"}},
		}},
		{"  foo  (  >=  1.0  )  [  amd64   !i386 ]  <  !nocheck   stage1 >  |\tbar\n ,\n baz  ", Relations{
			{{Name: "foo", Op: OpGreaterEq, Version: v("1.0"), Archs: []string{"amd64", "!i386"}, Profiles: "<!nocheck stage1>"}, {Name: "bar"}},
			{{Name: "baz"}},
		}},
		{"a,\n b,\n c,\n", Relations{{{Name: "a"}}, {{Name: "b"}}, {{Name: "c"}}}}, // trailing comma
		{"g++ (>= 4:12), libstdc++6, x.org, Foo_Bar", Relations{
			{{Name: "g++", Op: OpGreaterEq, Version: v("4:12")}},
			{{Name: "libstdc++6"}},
			{{Name: "x.org"}},
			{{Name: "Foo_Bar"}},
		}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): unexpected error %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, want string
		offset   int
	}{
		{",", `dependency: syntax error in ",": missing package name before ','`, 0},
		{"a,,b", `dependency: syntax error in "a,,b": missing package name before ','`, 2},
		{"a, , b", `dependency: syntax error in "a, , b": missing package name before ','`, 3},
		{"a |", `dependency: syntax error in "a |": missing package name at end of input`, 3},
		{"a | | b", `dependency: syntax error in "a | | b": missing package name before '|'`, 4},
		{"| a", `dependency: syntax error in "| a": missing package name before '|'`, 0},
		{"-foo", `dependency: syntax error in "-foo": package name "-foo" does not start with a letter or digit`, 4},
		{"foo bar", `dependency: syntax error in "foo bar": unexpected 'b' after relation`, 4},
		{"${shlibs:Depends}", `dependency: syntax error in "${shlibs:Depends}": missing package name before '$'`, 0},
		{"foo:", `dependency: syntax error in "foo:": missing architecture qualifier after "foo:"`, 4},
		{"foo :any", `dependency: syntax error in "foo :any": unexpected ':' after relation`, 4},
		{"foo (1.0)", `dependency: syntax error in "foo (1.0)": missing version operator in version restriction`, 5},
		{"foo (=> 1.0)", `dependency: syntax error in "foo (=> 1.0)": unknown version operator "=>"`, 5},
		{"foo (== 1.0)", `dependency: syntax error in "foo (== 1.0)": unknown version operator "=="`, 5},
		{"foo (>= )", `dependency: syntax error in "foo (>= )": missing version in version restriction`, 8},
		{"foo (>= 1.0", `dependency: syntax error in "foo (>= 1.0": missing ')' after version "1.0"`, 11},
		{"foo (>= 1.0 2.0)", `dependency: syntax error in "foo (>= 1.0 2.0)": unexpected '2' after version "1.0", want ')'`, 12},
		{"foo (>= 1,0), bar", `dependency: syntax error in "foo (>= 1": unexpected ',' after version "1", want ')'`, 9},
		{"foo (>= a1)", `dependency: syntax error in "foo (>= a1)": invalid version "a1": upstream version does not start with a digit`, 8},
		{"foo []", `dependency: syntax error in "foo []": empty architecture list`, 5},
		{"foo [amd64", `dependency: syntax error in "foo [amd64": missing ']' after architecture list`, 10},
		{"foo [amd64,i386]", `dependency: syntax error in "foo [amd64": invalid character ',' in architecture name "amd64"`, 10},
		{"foo [!]", `dependency: syntax error in "foo [!]": invalid architecture name starting at ']'`, 6},
		{"foo [amd64 <!nocheck>]", `dependency: syntax error in "foo [amd64 <!nocheck>]": invalid architecture name starting at '<'`, 11},
		{"foo <>", `dependency: syntax error in "foo <>": empty build profile list`, 5},
		{"foo <!nocheck", `dependency: syntax error in "foo <!nocheck": missing '>' after build profile list`, 13},
		{"foo <!no]check>", `dependency: syntax error in "foo <!no]check>": invalid character ']' in build profile name "no"`, 8},
		{"foo <nocheck> [amd64]", `dependency: syntax error in "foo <nocheck> [amd64]": unexpected '[' after relation`, 14},
		{"foo (>= 1) (<< 2)", `dependency: syntax error in "foo (>= 1) (<< 2)": unexpected '(' after relation`, 11},
	}
	for _, tt := range tests {
		rels, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error %q", tt.in, rels, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q) error\n got %q\nwant %q", tt.in, err, tt.want)
		}
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) error %v (%T) is not a *ParseError wrapping ErrSyntax", tt.in, err, err)
			continue
		}
		if pe.Input != tt.in || pe.Offset != tt.offset {
			t.Errorf("Parse(%q) error has Input %q, Offset %d; want %q, %d", tt.in, pe.Input, pe.Offset, tt.in, tt.offset)
		}
		if rels != nil {
			t.Errorf("Parse(%q) returned %v along with an error", tt.in, rels)
		}
	}
}

func TestParseErrorWrapsVersionError(t *testing.T) {
	_, err := Parse("foo (>= 1.0-)")
	if !errors.Is(err, ErrSyntax) || !errors.Is(err, version.ErrInvalid) {
		t.Errorf("Parse error %v should wrap both ErrSyntax and version.ErrInvalid", err)
	}
	var ve *version.ParseError
	if !errors.As(err, &ve) || ve.Input != "1.0-" {
		t.Errorf("Parse error %v should carry the *version.ParseError for %q", err, "1.0-")
	}
}

func TestLongInputErrorIsShortened(t *testing.T) {
	in := "a, , " + string(make([]byte, 200))
	_, err := Parse(in)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse error %v is not a *ParseError", err)
	}
	if len(pe.Relation) > 83 {
		t.Errorf("error quotes %d bytes of input; want at most 83", len(pe.Relation))
	}
}

func TestSatisfiedBy(t *testing.T) {
	tests := []struct {
		rel  string
		ver  string
		want bool
	}{
		{"a", "0", true},
		{"a (<< 2)", "1.9", true},
		{"a (<< 2)", "2", false},
		{"a (<< 2)", "2~rc1", true},
		{"a (<= 2)", "2", true},
		{"a (<= 2)", "2-0", true},
		{"a (<= 2)", "2.0", false},
		{"a (<= 2)", "2+b1", false},
		{"a (< 2)", "2", true}, // deprecated: <=
		{"a (= 2-1)", "2-1", true},
		{"a (= 2-1)", "0:2-1", true},
		{"a (= 2-1)", "2-1+b1", false},
		{"a (>= 1:1)", "9", false},
		{"a (>= 1:1)", "1:1", true},
		{"a (> 1)", "1", true}, // deprecated: >=
		{"a (>> 1)", "1", false},
		{"a (>> 1)", "1.0.1", true},
		{"a (>> 1~)", "1", true},
	}
	for _, tt := range tests {
		rels, err := Parse(tt.rel)
		if err != nil {
			t.Fatal(err)
		}
		r := rels[0][0]
		if got := r.SatisfiedBy(v(tt.ver)); got != tt.want {
			t.Errorf("%q.SatisfiedBy(%q) = %v, want %v", tt.rel, tt.ver, got, tt.want)
		}
	}
	if (Relation{Name: "a", Op: Op(42), Version: v("1")}).SatisfiedBy(v("1")) {
		t.Error("a relation with an unknown operator is satisfied; want false")
	}
}

func TestString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"libc6", "libc6"},
		{"a (< 1) | b:any(>2)", "a (<= 1) | b:any (>= 2)"},
		{"  foo  (  >=  0:1.0  )  [  amd64   !i386 ]  <  !nocheck   stage1 > <cross>,bar,", "foo (>= 1.0) [amd64 !i386] <!nocheck stage1> <cross>, bar"},
		{"x (= 0:1:2-3)", "x (= 0:1:2-3)"},
	}
	for _, tt := range tests {
		rels, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		got := rels.String()
		if got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		again, err := Parse(got)
		if err != nil || !reflect.DeepEqual(again, rels) {
			t.Errorf("Parse(%q) = %v, %v; want %#v back", got, again, err, rels)
		}
	}
	for op, want := range map[Op]string{OpNone: "", OpLess: "<<", OpLessEq: "<=", OpEq: "=", OpGreaterEq: ">=", OpGreater: ">>", Op(9): "Op(9)"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", int(op), got, want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	const field = "libc6 (>= 2.34), libgcc-s1 (>= 3.0), libstdc++6 (>= 12), debconf (>= 0.5) | debconf-2.0, " +
		"python3:any (>= 3.11~), perl:any, default-mta | mail-transport-agent, libfoo-dev [linux-any] <!nocheck>"
	for b.Loop() {
		if _, err := Parse(field); err != nil {
			b.Fatal(err)
		}
	}
}
