package control

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads every paragraph of input, failing the test on error.
func readAll(t testing.TB, input string) []*Paragraph {
	t.Helper()
	r := NewReader(strings.NewReader(input), "test")
	var ps []*Paragraph
	for {
		p, err := r.Next()
		if err == io.EOF {
			return ps
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		ps = append(ps, p)
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []*Paragraph
	}{
		{"empty", "", nil},
		{"only blank lines", "\n\n  \n\t\n", nil},
		{"only comments", "# a\n#b\n\n", nil},
		{"one field", "Package: hello\n", []*Paragraph{{Fields: []Field{{"Package", "hello"}}, Line: 1}}},
		{"no final newline", "Package: hello", []*Paragraph{{Fields: []Field{{"Package", "hello"}}, Line: 1}}},
		{"value trimmed", "A:   x y \t\nB:x\nC:\n", []*Paragraph{{Fields: []Field{{"A", "x y"}, {"B", "x"}, {"C", ""}}, Line: 1}}},
		{"colon in value", "Homepage: https://x/y:z\n", []*Paragraph{{Fields: []Field{{"Homepage", "https://x/y:z"}}, Line: 1}}},
		{
			"two paragraphs and blank-line runs",
			"\n\n# header\nPackage: a\nVersion: 1\n\n\n \n\t\nPackage: b\n\n\n",
			[]*Paragraph{
				{Fields: []Field{{"Package", "a"}, {"Version", "1"}}, Line: 4},
				{Fields: []Field{{"Package", "b"}}, Line: 10},
			},
		},
		{
			"multi-line field",
			"Package: a\nDescription: short  \n long line one\n .\n\tindented with tab  \nSection: x\n",
			[]*Paragraph{{Fields: []Field{
				{"Package", "a"},
				{"Description", "short\n long line one\n .\n\tindented with tab  "},
				{"Section", "x"},
			}, Line: 1}},
		},
		{
			"multi-line field with empty first line",
			"Files:\n abc 12 a.dsc\n def 34 a.tar.xz\n",
			[]*Paragraph{{Fields: []Field{{"Files", "\n abc 12 a.dsc\n def 34 a.tar.xz"}}, Line: 1}},
		},
		{
			"comments between fields and continuation lines",
			"# top\nA: 1\n# mid\nB: x\n# inside\n  y\n#end\n",
			[]*Paragraph{{Fields: []Field{{"A", "1"}, {"B", "x\n  y"}}, Line: 2}},
		},
		{
			"CRLF",
			"A: 1\r\nB:\r\n x\r\n\r\nC: 2\r\n",
			[]*Paragraph{
				{Fields: []Field{{"A", "1"}, {"B", "\n x"}}, Line: 1},
				{Fields: []Field{{"C", "2"}}, Line: 5},
			},
		},
		{"byte order mark", "\xef\xbb\xbfA: 1\n", []*Paragraph{{Fields: []Field{{"A", "1"}}, Line: 1}}},
		{"odd but valid names", "X-Foo_Bar.1!~: v\n", []*Paragraph{{Fields: []Field{{"X-Foo_Bar.1!~", "v"}}, Line: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, tt.input)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("read %q:\n got %s\nwant %s", tt.input, dump(got), dump(tt.want))
			}
		})
	}
}

func dump(ps []*Paragraph) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("{")
		for _, f := range p.Fields {
			b.WriteString(strings.Join([]string{f.Name, f.Value}, "="))
			b.WriteString(";")
		}
		fmt.Fprintf(&b, "}@%d ", p.Line)
	}
	if b.Len() == 0 {
		return "none"
	}
	return strings.ReplaceAll(b.String(), "\n", `\n`)
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name, input string
		want        ParseError
	}{
		{"no colon", "A: 1\nthis line has none\n", ParseError{Name: "test", Line: 2, Reason: `missing colon in "this line has none"`}},
		{"no colon in second paragraph", "A: 1\n\nB: 2\nbroken\n", ParseError{Name: "test", Line: 4, Reason: `missing colon in "broken"`}},
		{"continuation first", " x\nA: 1\n", ParseError{Name: "test", Line: 1, Reason: "continuation line outside a field"}},
		{"continuation after blank", "A: 1\n\n x\n", ParseError{Name: "test", Line: 3, Reason: "continuation line outside a field"}},
		{"empty name", ": x\n", ParseError{Name: "test", Line: 1, Reason: "empty field name"}},
		{"space in name", "A: 1\nBad Name: x\n", ParseError{Name: "test", Line: 2, Field: "Bad Name", Reason: "invalid character ' ' in field name"}},
		{"space before colon", "Name : x\n", ParseError{Name: "test", Line: 1, Field: "Name ", Reason: "invalid character ' ' in field name"}},
		{"hyphen first", "-A: x\n", ParseError{Name: "test", Line: 1, Field: "-A", Reason: "field name starts with '-'"}},
		{"non-ASCII name", "Ä: x\n", ParseError{Name: "test", Line: 1, Field: "Ä", Reason: "invalid character 0xc3 in field name"}},
		{"duplicate", "Package: a\nVersion: 1\npackage: b\n", ParseError{Name: "test", Line: 3, Field: "package", Reason: "duplicate field (first on line 1)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.input), "test")
			var err error
			for err == nil {
				_, err = r.Next()
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("read %q: error %v, want *ParseError %+v", tt.input, err, tt.want)
			}
			if *pe != tt.want {
				t.Errorf("read %q: error %+v, want %+v", tt.input, *pe, tt.want)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("read %q: error %v does not wrap ErrSyntax", tt.input, err)
			}
			if _, again := r.Next(); again != err {
				t.Errorf("Next after error = %v, want the same error %v again", again, err)
			}
		})
	}
}

func TestParseErrorText(t *testing.T) {
	e := &ParseError{Name: "Packages", Line: 12, Field: "Depends", Reason: "bad"}
	if got, want := e.Error(), `control: syntax error at Packages:12: field "Depends": bad`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e.Field = ""
	if got, want := e.Error(), `control: syntax error at Packages:12: bad`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("A: 1\n"), iotest.ErrReader(boom)), "idx")
	_, err := r.Next()
	if !errors.Is(err, boom) {
		t.Fatalf("Next = %v, want an error wrapping %v", err, boom)
	}
	if !strings.Contains(err.Error(), "idx") {
		t.Errorf("error %q does not name the input", err)
	}
}

func TestReaderLongLine(t *testing.T) {
	long := strings.Repeat("x", 3*readerBufSize+17)
	input := "A: 1\nProvides: " + long + "\n more " + long + "\nB: 2\n\nC: 3\n"
	ps := readAll(t, input)
	if len(ps) != 2 {
		t.Fatalf("got %d paragraphs, want 2", len(ps))
	}
	if got, want := ps[0].Get("Provides"), long+"\n more "+long; got != want {
		t.Errorf("long value has %d bytes, want %d", len(got), len(want))
	}
	if ps[0].Get("B") != "2" || ps[1].Get("C") != "3" || ps[1].Line != 6 {
		t.Errorf("fields after the long line are wrong: %s", dump(ps))
	}
}

func TestReaderShortReads(t *testing.T) {
	input := "A: 1\nB:\n x\n\n# c\nC: 3"
	want := readAll(t, input)
	r := NewReader(iotest.OneByteReader(strings.NewReader(input)), "t")
	var got []*Paragraph
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("one byte at a time: got %s, want %s", dump(got), dump(want))
	}
}

func TestParagraphAccessors(t *testing.T) {
	p := &Paragraph{Fields: []Field{{"Package", "a"}, {"Version", "1"}, {"Depends", "b"}}}
	if got := p.Get("package"); got != "a" {
		t.Errorf("Get(package) = %q, want %q", got, "a")
	}
	if v, ok := p.Lookup("DEPENDS"); !ok || v != "b" {
		t.Errorf("Lookup(DEPENDS) = %q, %v; want %q, true", v, ok, "b")
	}
	if v, ok := p.Lookup("Missing"); ok || v != "" {
		t.Errorf("Lookup(Missing) = %q, %v; want \"\", false", v, ok)
	}
	if got := p.Get("Pack"); got != "" {
		t.Errorf("Get(Pack) = %q, want \"\" (no prefix match)", got)
	}
	p.Set("VERSION", "2")
	p.Set("Essential", "yes")
	p.Delete("depends")
	p.Delete("nothing")
	want := []Field{{"Package", "a"}, {"Version", "2"}, {"Essential", "yes"}}
	if !reflect.DeepEqual(p.Fields, want) {
		t.Errorf("after Set and Delete: %v, want %v", p.Fields, want)
	}
}

func TestWriteTo(t *testing.T) {
	p := &Paragraph{Fields: []Field{
		{"Package", "a"},
		{"Empty", ""},
		{"Description", "short\n long\n .\n\tmore"},
		{"Files", "\n x 1 f"},
	}}
	var buf bytes.Buffer
	n, err := p.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := "Package: a\nEmpty:\nDescription: short\n long\n .\n\tmore\nFiles:\n x 1 f\n"
	if buf.String() != want {
		t.Errorf("WriteTo wrote %q, want %q", buf.String(), want)
	}
	if n != int64(len(want)) {
		t.Errorf("WriteTo returned %d, want %d", n, len(want))
	}
	back, err := ParseParagraph(buf.Bytes(), "written")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Fields, p.Fields) {
		t.Errorf("read back %v, want %v", back.Fields, p.Fields)
	}
}

func TestWriteToInvalid(t *testing.T) {
	tests := []struct {
		f    Field
		want string
	}{
		{Field{"", "x"}, `control: invalid field "": empty field name`},
		{Field{"A B", "x"}, `control: invalid field "A B": invalid character ' ' in field name`},
		{Field{"A:", "x"}, `control: invalid field "A:": invalid character ':' in field name`},
		{Field{"#A", "x"}, `control: invalid field "#A": field name starts with '#'`},
		{Field{"A", " x"}, `control: invalid field "A": first line has surrounding white space, which is not kept`},
		{Field{"A", "x\r"}, `control: invalid field "A": first line has surrounding white space, which is not kept`},
		{Field{"A", "x\ny"}, `control: invalid field "A": continuation line 2 does not start with a space or tab`},
		{Field{"A", "x\n y\n"}, `control: invalid field "A": continuation line 3 does not start with a space or tab`},
		{Field{"A", "x\n \t"}, `control: invalid field "A": continuation line 2 is blank and would end the paragraph`},
		{Field{"A", "x\n y\r"}, `control: invalid field "A": continuation line 2 ends in a carriage return, which is not kept`},
	}
	for _, tt := range tests {
		p := &Paragraph{Fields: []Field{{"Package", "ok"}, tt.f}}
		var buf bytes.Buffer
		n, err := p.WriteTo(&buf)
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalidField) {
			t.Errorf("WriteTo(%q: %q) error = %v, want %q wrapping ErrInvalidField", tt.f.Name, tt.f.Value, err, tt.want)
		}
		if n != 0 || buf.Len() != 0 {
			t.Errorf("WriteTo(%q: %q) wrote %q despite the error", tt.f.Name, tt.f.Value, buf.String())
		}
	}
}

func TestWriteToWriterError(t *testing.T) {
	p := &Paragraph{Fields: []Field{{"A", "1"}}}
	boom := errors.New("boom")
	if _, err := p.WriteTo(errWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("WriteTo to a failing writer = %v, want %v", err, boom)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// TestRoundTrip reads a canonical index, writes every paragraph back with
// blank lines between them and expects the very same bytes.
func TestRoundTrip(t *testing.T) {
	input := generateIndex(200)
	ps := readAll(t, input)
	if len(ps) != 200 {
		t.Fatalf("read %d paragraphs, want 200", len(ps))
	}
	var buf bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			buf.WriteByte('\n')
		}
		if _, err := p.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
	}
	if buf.String() != input {
		a, b := buf.String(), input
		i := 0
		for i < len(a) && i < len(b) && a[i] == b[i] {
			i++
		}
		t.Fatalf("round trip differs at byte %d: got %q, want %q", i, a[i:min(i+80, len(a))], b[i:min(i+80, len(b))])
	}
}

func TestParseParagraph(t *testing.T) {
	p, err := ParseParagraph([]byte("\n# c\nPackage: a\nVersion: 1\n\n\n"), "DEBIAN/control")
	if err != nil {
		t.Fatal(err)
	}
	if p.Get("Package") != "a" || p.Get("Version") != "1" || p.Line != 3 {
		t.Errorf("ParseParagraph = %+v", p)
	}

	tests := []struct {
		input string
		want  ParseError
	}{
		{"", ParseError{Name: "DEBIAN/control", Line: 1, Reason: "no paragraph"}},
		{"\n\n# only a comment\n", ParseError{Name: "DEBIAN/control", Line: 3, Reason: "no paragraph"}},
		{"A: 1\n\nB: 2\n", ParseError{Name: "DEBIAN/control", Line: 3, Field: "B", Reason: "more than one paragraph"}},
		{"A: 1\n\nbad\n", ParseError{Name: "DEBIAN/control", Line: 3, Reason: `missing colon in "bad"`}},
	}
	for _, tt := range tests {
		_, err := ParseParagraph([]byte(tt.input), "DEBIAN/control")
		var pe *ParseError
		if !errors.As(err, &pe) || *pe != tt.want || !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseParagraph(%q) error = %v, want %+v", tt.input, err, tt.want)
		}
	}
}
