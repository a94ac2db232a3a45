package control

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// Reader reads paragraphs one at a time from a stream, so an index of any
// size is read in constant memory beyond the paragraph being returned.
type Reader struct {
	br    *bufio.Reader
	name  string
	line  int   // lines read so far
	err   error // sticky: returned by every Next after the first failure
	eof   bool  // the underlying reader is exhausted
	long  []byte
	text  []byte // the current paragraph's names and values, back to back
	spans []span // where each field sits in text
}

// span locates one field of the paragraph being read inside Reader.text.
type span struct {
	name, value, end int // text[name:value] is the name, text[value:end] the value
	line             int
}

// readerBufSize fits any line of a real index (long Description lines,
// Provides of big packages) so that lines are returned without copying.
const readerBufSize = 64 << 10

// NewReader returns a Reader for r; name (a file name or URL) appears in
// errors.
func NewReader(r io.Reader, name string) *Reader {
	return newReaderSize(r, name, readerBufSize)
}

func newReaderSize(r io.Reader, name string, size int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, size), name: name}
}

// readLine returns the next line without its "\n" or "\r\n". The slice is
// valid until the next call. At the end of input it returns io.EOF; a last
// line without a newline is returned first, with a nil error.
func (r *Reader) readLine() ([]byte, error) {
	if r.eof {
		return nil, io.EOF
	}
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.long = append(r.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	switch {
	case err == io.EOF:
		r.eof = true
		if len(line) == 0 {
			return nil, io.EOF
		}
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", r.name, err)
	}
	r.line++
	line = bytes.TrimSuffix(line, []byte{'\n'})
	// "\r\n" ends a line too; stray extra carriage returns go with it, so
	// no value ever ends in one and every value read can be written back.
	line = bytes.TrimRight(line, "\r")
	if r.line == 1 {
		// Editors on other systems may prefix a UTF-8 byte order mark.
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	return line, nil
}

// Next returns the next paragraph, or io.EOF when there are no more. Runs of
// blank lines (empty or only spaces and tabs) between paragraphs are
// skipped, as are comment lines starting with '#'. A malformed paragraph
// gives a *ParseError; after any error Next keeps returning it.
func (r *Reader) Next() (*Paragraph, error) {
	if r.err != nil {
		return nil, r.err
	}
	p, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	return p, nil
}

func (r *Reader) next() (*Paragraph, error) {
	r.text = r.text[:0]
	r.spans = r.spans[:0]
	for {
		line, err := r.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if isBlank(line) {
			if len(r.spans) > 0 {
				break
			}
			continue
		}
		switch line[0] {
		case '#':
			continue
		case ' ', '\t':
			if len(r.spans) == 0 {
				return nil, r.syntaxError("", "continuation line outside a field")
			}
			r.text = append(r.text, '\n')
			r.text = append(r.text, line...)
			r.spans[len(r.spans)-1].end = len(r.text)
			continue
		}
		if err := r.addField(line); err != nil {
			return nil, err
		}
	}
	if len(r.spans) == 0 {
		return nil, io.EOF
	}
	return r.paragraph(), nil
}

func (r *Reader) addField(line []byte) error {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return r.syntaxError("", fmt.Sprintf("missing colon in %q", truncate(line, 60)))
	}
	name := line[:colon]
	if reason := checkName(name); reason != "" {
		return r.syntaxError(string(name), reason)
	}
	// Quadratic, but paragraphs have a few dozen fields and most names
	// differ in length, so this stays cheap next to reading the line.
	for _, s := range r.spans {
		if s.value-s.name == len(name) && equalFoldASCII(r.text[s.name:s.value], name) {
			return r.syntaxError(string(name), fmt.Sprintf("duplicate field (first on line %d)", s.line))
		}
	}
	s := span{name: len(r.text), line: r.line}
	r.text = append(r.text, name...)
	s.value = len(r.text)
	r.text = append(r.text, trimSpace(line[colon+1:])...)
	s.end = len(r.text)
	r.spans = append(r.spans, s)
	return nil
}

// paragraph builds the result with one string for all its text, so a
// paragraph costs three allocations however many fields it has.
func (r *Reader) paragraph() *Paragraph {
	text := string(r.text)
	p := &Paragraph{Fields: make([]Field, len(r.spans)), Line: r.spans[0].line}
	for i, s := range r.spans {
		p.Fields[i] = Field{Name: text[s.name:s.value], Value: text[s.value:s.end]}
	}
	return p
}

func (r *Reader) syntaxError(field, reason string) error {
	return &ParseError{Name: r.name, Line: r.line, Field: field, Reason: reason}
}

// equalFoldASCII compares field names, which are ASCII, without regard to
// case; a and b have the same length.
func equalFoldASCII(a, b []byte) bool {
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// ParseParagraph parses data holding exactly one paragraph, such as a
// package's DEBIAN/control; blank and comment lines around it are allowed.
// name appears in errors.
func ParseParagraph(data []byte, name string) (*Paragraph, error) {
	// A buffer the size of the data: a control file is small, 64 KiB is not.
	r := newReaderSize(bytes.NewReader(data), name, min(len(data)+1, readerBufSize))
	p, err := r.Next()
	if err == io.EOF {
		return nil, &ParseError{Name: name, Line: max(r.line, 1), Reason: "no paragraph"}
	}
	if err != nil {
		return nil, err
	}
	switch q, err := r.Next(); {
	case err == nil:
		return nil, &ParseError{Name: name, Line: q.Line, Field: q.Fields[0].Name, Reason: "more than one paragraph"}
	case err != io.EOF:
		return nil, err
	}
	return p, nil
}
