package control

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzReader checks that the reader never panics, that its errors are typed
// and name a line, and that whatever it reads can be written and read back
// unchanged.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"", "A: 1\n", "A: 1\nB:\n x\n .\n\n\nC: 2", "# c\nA: 1\n# d\n y\n",
		"A: 1\r\nB: 2\r\n\r\n", "no colon\n", " x\n", "A: 1\nA: 2\n", "\xef\xbb\xbfA:\t\r\n \t\r\n",
		generateIndex(2),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), "fuzz")
		var ps []*Paragraph
		for {
			p, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || !errors.Is(err, ErrSyntax) || pe.Line < 1 || pe.Name != "fuzz" {
					t.Fatalf("error %v (%T) is not a *ParseError naming input and line", err, err)
				}
				return
			}
			if len(p.Fields) == 0 || p.Line < 1 {
				t.Fatalf("paragraph %+v has no fields or no line", p)
			}
			ps = append(ps, p)
		}
		var buf bytes.Buffer
		for i, p := range ps {
			if i > 0 {
				buf.WriteByte('\n')
			}
			if _, err := p.WriteTo(&buf); err != nil {
				t.Fatalf("WriteTo of a paragraph read from %q: %v", data, err)
			}
		}
		r = NewReader(&buf, "again")
		for i := 0; ; i++ {
			p, err := r.Next()
			if err == io.EOF {
				if i != len(ps) {
					t.Fatalf("read back %d paragraphs, want %d", i, len(ps))
				}
				break
			}
			if err != nil {
				t.Fatalf("read back what WriteTo wrote: %v", err)
			}
			if i >= len(ps) || !reflect.DeepEqual(p.Fields, ps[i].Fields) {
				t.Fatalf("paragraph %d read back as %q", i, p.Fields)
			}
		}
	})
}
