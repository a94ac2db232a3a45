// Package sources reads apt's source lists: the one-line format of
// sources.list and *.list files, and the deb822 format of *.sources files.
//
// It returns every entry as written; options other than the ones apt uses to
// switch an entry off (Enabled: no) are kept as raw strings and not interpreted.
package sources

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"jailmgr/debian/control"
)

// ErrSyntax is wrapped by every parse error of this package.
var ErrSyntax = errors.New("sources: syntax error")

// Entry is one source: a type (deb or deb-src), a URI, suites and components.
type Entry struct {
	Types      []string
	URIs       []string
	Suites     []string
	Components []string
	Options    map[string]string
	File       string
	Line       int
}

// ParseError names the file and line of a malformed entry.
type ParseError struct {
	File   string
	Line   int
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("sources: %s:%d: %s", e.File, e.Line, e.Reason)
}

func (e *ParseError) Unwrap() error { return ErrSyntax }

// ParseList reads the one-line format: "deb [opts] URI SUITE [COMPONENT...]".
func ParseList(r io.Reader, name string) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		e := Entry{File: name, Line: line, Options: map[string]string{}}
		typ, rest, _ := strings.Cut(text, " ")
		if typ != "deb" && typ != "deb-src" {
			return nil, &ParseError{name, line, fmt.Sprintf("type %q is not deb or deb-src", typ)}
		}
		e.Types = []string{typ}
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, &ParseError{name, line, "options '[' without ']'"}
			}
			for _, o := range strings.Fields(rest[1:end]) {
				k, v, _ := strings.Cut(o, "=")
				e.Options[strings.ToLower(k)] = v
			}
			rest = strings.TrimSpace(rest[end+1:])
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return nil, &ParseError{name, line, "want URI and suite"}
		}
		e.URIs = []string{f[0]}
		e.Suites = []string{f[1]}
		e.Components = f[2:]
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// ParseDeb822 reads the deb822 format of *.sources files. Entries with
// "Enabled: no" are left out.
func ParseDeb822(r io.Reader, name string) ([]Entry, error) {
	var out []Entry
	cr := control.NewReader(r, name)
	for {
		p, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(p.Get("Enabled"), "no") {
			continue
		}
		e := Entry{
			Types:      strings.Fields(p.Get("Types")),
			URIs:       strings.Fields(p.Get("URIs")),
			Suites:     strings.Fields(p.Get("Suites")),
			Components: strings.Fields(p.Get("Components")),
			Options:    map[string]string{},
			File:       name,
			Line:       p.Line,
		}
		if len(e.Types) == 0 || len(e.URIs) == 0 || len(e.Suites) == 0 {
			return nil, &ParseError{name, p.Line, "entry needs Types, URIs and Suites"}
		}
		for _, f := range p.Fields {
			switch strings.ToLower(f.Name) {
			case "types", "uris", "suites", "components":
			default:
				e.Options[strings.ToLower(f.Name)] = f.Value
			}
		}
		out = append(out, e)
	}
}
