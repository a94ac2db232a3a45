// Package control reads and writes deb822 control data: paragraphs of
// "Name: value" fields separated by blank lines, as found in Packages and
// Sources indexes, Release files and a package's DEBIAN/control.
//
// Limits: it does not verify or strip an OpenPGP clear-signature (the release
// package does that first), and field values are kept as text; splitting a
// field into its parts (dependencies, file lists) is left to the caller.
// Comment lines ('#' in the first column) are skipped when reading and not
// kept, so a round trip through Reader and WriteTo drops them.
package control

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrSyntax is wrapped by every *ParseError.
var ErrSyntax = errors.New("control: syntax error")

// ErrInvalidField is returned by WriteTo for a field that cannot be written
// in a form that reads back unchanged.
var ErrInvalidField = errors.New("control: invalid field")

// ParseError reports malformed control data.
type ParseError struct {
	Name   string // the input's name as given to NewReader or ParseParagraph
	Line   int    // 1-based line number
	Field  string // the field being read, "" if none
	Reason string
}

func (e *ParseError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s at %s:%d: field %q: %s", ErrSyntax.Error(), e.Name, e.Line, e.Field, e.Reason)
	}
	return fmt.Sprintf("%s at %s:%d: %s", ErrSyntax.Error(), e.Name, e.Line, e.Reason)
}

// Unwrap returns ErrSyntax.
func (e *ParseError) Unwrap() error { return ErrSyntax }

// Field is one "Name: value" field.
//
// For a single-line field Value is the text after the colon with surrounding
// spaces and tabs removed. For a multi-line field it is that first line
// (possibly "") followed, for each continuation line, by "\n" and the line
// exactly as written, leading space or tab included; there is no trailing
// newline.
type Field struct {
	Name, Value string
}

// Paragraph is one deb822 paragraph: its fields in input order.
type Paragraph struct {
	Fields []Field
	Line   int // 1-based line of the first field in the input; 0 if built in code
}

// Get returns the value of the field called name (compared without regard
// to case), or "" if there is none.
func (p *Paragraph) Get(name string) string {
	v, _ := p.Lookup(name)
	return v
}

// Lookup returns the value of the field called name (compared without regard
// to case) and whether it is present.
func (p *Paragraph) Lookup(name string) (string, bool) {
	if i := p.index(name); i >= 0 {
		return p.Fields[i].Value, true
	}
	return "", false
}

func (p *Paragraph) index(name string) int {
	for i := range p.Fields {
		if len(p.Fields[i].Name) == len(name) && strings.EqualFold(p.Fields[i].Name, name) {
			return i
		}
	}
	return -1
}

// Set sets the field called name to value, in place if present (keeping its
// position and the spelling of its name), else appended at the end.
func (p *Paragraph) Set(name, value string) {
	if i := p.index(name); i >= 0 {
		p.Fields[i].Value = value
		return
	}
	p.Fields = append(p.Fields, Field{Name: name, Value: value})
}

// Delete removes the field called name, if present.
func (p *Paragraph) Delete(name string) {
	p.Fields = deleteFunc(p.Fields, name)
}

func deleteFunc(fs []Field, name string) []Field {
	out := fs[:0]
	for _, f := range fs {
		if len(f.Name) == len(name) && strings.EqualFold(f.Name, name) {
			continue
		}
		out = append(out, f)
	}
	clear(fs[len(out):])
	return out
}

// WriteTo writes the paragraph's fields as "Name: value" lines, each ending in
// "\n"; a multi-line field whose first line is empty is written "Name:" and
// its continuation lines. It writes no blank line after the paragraph: a
// caller writing several separates them with "\n". Reading the output back
// yields the same fields.
//
// Nothing is written when a field could not be read back unchanged (a bad
// name, a continuation line that does not start with a space or tab, or one
// that is blank and so would end the paragraph); the error wraps
// ErrInvalidField.
func (p *Paragraph) WriteTo(w io.Writer) (int64, error) {
	size := 0
	for _, f := range p.Fields {
		if err := checkField(f); err != nil {
			return 0, err
		}
		size += len(f.Name) + len(f.Value) + 3
	}
	buf := make([]byte, 0, size)
	for _, f := range p.Fields {
		buf = append(buf, f.Name...)
		buf = append(buf, ':')
		if f.Value != "" && f.Value[0] != '\n' {
			buf = append(buf, ' ')
		}
		buf = append(buf, f.Value...)
		buf = append(buf, '\n')
	}
	n, err := w.Write(buf)
	return int64(n), err
}

func checkField(f Field) error {
	if reason := checkName(f.Name); reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidField, f.Name, reason)
	}
	first, rest, multi := strings.Cut(f.Value, "\n")
	if trimSpace(first) != first {
		return fmt.Errorf("%w %q: first line has surrounding white space, which is not kept", ErrInvalidField, f.Name)
	}
	for n := 2; multi; n++ {
		var line string
		line, rest, multi = strings.Cut(rest, "\n")
		switch {
		case line == "" || (line[0] != ' ' && line[0] != '\t'):
			return fmt.Errorf("%w %q: continuation line %d does not start with a space or tab", ErrInvalidField, f.Name, n)
		case isBlank(line):
			return fmt.Errorf("%w %q: continuation line %d is blank and would end the paragraph", ErrInvalidField, f.Name, n)
		case strings.HasSuffix(line, "\r"):
			return fmt.Errorf("%w %q: continuation line %d ends in a carriage return, which is not kept", ErrInvalidField, f.Name, n)
		}
	}
	return nil
}

// checkName returns why name cannot be a field name, or "". deb822 allows
// printable ASCII except ':' and white space, not starting with '#' or '-'.
func checkName[T string | []byte](name T) string {
	if len(name) == 0 {
		return "empty field name"
	}
	if name[0] == '#' || name[0] == '-' {
		return fmt.Sprintf("field name starts with %q", name[0])
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return "invalid character " + quoteByte(c) + " in field name"
		}
	}
	return ""
}

// quoteByte names c for an error message; bytes outside printable ASCII are
// shown in hex because they are usually part of a multi-byte sequence.
func quoteByte(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("%#02x", c)
	}
	return strconv.QuoteRune(rune(c))
}

// isBlank reports whether line holds only spaces and tabs; such lines
// separate paragraphs, as Debian Policy §5.1 allows parsers to accept.
func isBlank[T string | []byte](line T) bool {
	for i := 0; i < len(line); i++ {
		if line[i] != ' ' && line[i] != '\t' {
			return false
		}
	}
	return true
}

// trimSpace removes leading and trailing spaces and tabs, the white space
// of deb822, and carriage returns, which a CRLF file leaves behind.
func trimSpace[T string | []byte](s T) T {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t' || s[j-1] == '\r') {
		j--
	}
	return s[i:j]
}
