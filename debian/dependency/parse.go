package dependency

import (
	"fmt"
	"strings"

	"jailmgr/debian/version"
)

// Parse parses a relationship field such as
// "libc6 (>= 2.36), default-mta | mail-transport-agent". White space
// (including the newlines of a folded field) may appear between any two
// parts of a relation, but not inside a name, an operator or a version, nor
// around the ':' of an architecture qualifier. An empty or blank string gives
// nil and no error.
func Parse(s string) (Relations, error) {
	p := parser{in: s}
	p.skipSpace()
	if p.eof() {
		return nil, nil
	}
	// All relations share one backing array, sized by counting separators
	// (an upper bound), so a field costs two allocations, not one per
	// relation.
	p.all = make([]Relation, 0, strings.Count(s, ",")+strings.Count(s, "|")+1)
	rels := make(Relations, 0, strings.Count(s, ",")+1)
	for {
		alts, err := p.alternatives()
		if err != nil {
			return nil, err
		}
		rels = append(rels, alts)
		if p.eof() {
			return rels, nil
		}
		if p.peek() != ',' {
			return nil, p.errorf("unexpected %q after relation", p.peek())
		}
		p.pos++
		p.skipSpace()
		if p.eof() {
			// A trailing comma, as debian/control files often have.
			return rels, nil
		}
	}
}

type parser struct {
	in       string
	pos      int
	relStart int // where the relation being parsed starts, for errors
	all      []Relation
}

func (p *parser) eof() bool { return p.pos >= len(p.in) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.in[p.pos]
}

func (p *parser) skipSpace() {
	for !p.eof() && isSpace(p.in[p.pos]) {
		p.pos++
	}
}

// scan advances over the bytes for which ok holds and returns them.
func (p *parser) scan(ok func(byte) bool) string {
	start := p.pos
	for !p.eof() && ok(p.in[p.pos]) {
		p.pos++
	}
	return p.in[start:p.pos]
}

// errorf returns a *ParseError for the relation being parsed; the relation
// is quoted up to the next separator so that a long field does not bury it.
func (p *parser) errorf(format string, args ...any) *ParseError {
	end := p.pos
	for end < len(p.in) && p.in[end] != ',' && p.in[end] != '|' {
		end++
	}
	rel := strings.TrimSpace(p.in[min(p.relStart, end):end])
	if rel == "" {
		// An empty relation ("a, , b"): show the field around it instead.
		rel = p.in
		if len(rel) > 80 {
			rel = rel[:80] + "..."
		}
	}
	return &ParseError{Input: p.in, Offset: p.pos, Relation: rel, Reason: fmt.Sprintf(format, args...)}
}

// alternatives parses "rel | rel | ..." and the white space after it.
func (p *parser) alternatives() (Alternatives, error) {
	start := len(p.all)
	for {
		r, err := p.relation()
		if err != nil {
			return nil, err
		}
		p.all = append(p.all, r)
		if p.peek() != '|' {
			// Full slice expression: appending to one Alternatives must
			// not overwrite the next.
			return Alternatives(p.all[start:len(p.all):len(p.all)]), nil
		}
		p.pos++
		p.skipSpace()
	}
}

// relation parses one relation and the white space after it.
func (p *parser) relation() (Relation, error) {
	p.skipSpace()
	p.relStart = p.pos
	var r Relation
	r.Name = p.scan(isNameByte)
	if r.Name == "" {
		if p.eof() {
			return r, p.errorf("missing package name at end of input")
		}
		return r, p.errorf("missing package name before %q", p.peek())
	}
	if !isAlnum(r.Name[0]) {
		return r, p.errorf("package name %q does not start with a letter or digit", r.Name)
	}
	if p.peek() == ':' {
		p.pos++
		r.ArchQual = p.scan(isArchByte)
		if r.ArchQual == "" {
			return r, p.errorf("missing architecture qualifier after %q", r.Name+":")
		}
	}
	p.skipSpace()
	if p.peek() == '(' {
		if err := p.versionRestriction(&r); err != nil {
			return r, err
		}
	}
	if p.peek() == '[' {
		if err := p.archRestriction(&r); err != nil {
			return r, err
		}
	}
	var groups []string
	for p.peek() == '<' {
		g, err := p.profileGroup()
		if err != nil {
			return r, err
		}
		groups = append(groups, g)
	}
	r.Profiles = strings.Join(groups, " ")
	return r, nil
}

// versionRestriction parses "(op version)" and the white space after it.
func (p *parser) versionRestriction(r *Relation) error {
	p.pos++ // '('
	p.skipSpace()
	opStart := p.pos
	switch op := p.scan(isOpByte); op {
	case "<<":
		r.Op = OpLess
	case "<=", "<":
		r.Op = OpLessEq
	case "=":
		r.Op = OpEq
	case ">=", ">":
		r.Op = OpGreaterEq
	case ">>":
		r.Op = OpGreater
	case "":
		return p.errorf("missing version operator in version restriction")
	default:
		p.pos = opStart
		return p.errorf("unknown version operator %q", op)
	}
	p.skipSpace()
	verStart := p.pos
	vs := p.scan(func(c byte) bool { return c != ')' && !isSpace(c) && c != ',' && c != '|' })
	if vs == "" {
		return p.errorf("missing version in version restriction")
	}
	v, err := version.Parse(vs)
	if err != nil {
		p.pos = verStart
		e := p.errorf("invalid version %q: %s", vs, reasonOf(err))
		e.Err = err
		return e
	}
	r.Version = v
	p.skipSpace()
	if p.peek() != ')' {
		if p.eof() {
			return p.errorf("missing ')' after version %q", vs)
		}
		return p.errorf("unexpected %q after version %q, want ')'", p.peek(), vs)
	}
	p.pos++
	p.skipSpace()
	return nil
}

// reasonOf returns a version error's reason without the repeated input.
func reasonOf(err error) string {
	if pe, ok := err.(*version.ParseError); ok {
		return pe.Reason
	}
	return err.Error()
}

// archRestriction parses "[arch !arch ...]" and the white space after it.
func (p *parser) archRestriction(r *Relation) error {
	p.pos++ // '['
	for {
		p.skipSpace()
		if p.eof() {
			return p.errorf("missing ']' after architecture list")
		}
		if p.peek() == ']' {
			break
		}
		a, err := p.term("architecture", isArchByte, ']')
		if err != nil {
			return err
		}
		r.Archs = append(r.Archs, a)
	}
	if len(r.Archs) == 0 {
		return p.errorf("empty architecture list")
	}
	p.pos++ // ']'
	p.skipSpace()
	return nil
}

// profileGroup parses "<term term ...>" and the white space after it, and
// returns it with its terms separated by single spaces.
func (p *parser) profileGroup() (string, error) {
	p.pos++ // '<'
	var terms []string
	for {
		p.skipSpace()
		if p.eof() {
			return "", p.errorf("missing '>' after build profile list")
		}
		if p.peek() == '>' {
			break
		}
		t, err := p.term("build profile", isProfileByte, '>')
		if err != nil {
			return "", err
		}
		terms = append(terms, t)
	}
	if len(terms) == 0 {
		return "", p.errorf("empty build profile list")
	}
	p.pos++ // '>'
	p.skipSpace()
	return "<" + strings.Join(terms, " ") + ">", nil
}

// term parses one entry of an architecture or profile list: an optional
// '!' and a name made of bytes for which ok holds, ended by white space or
// the list's closing byte.
func (p *parser) term(what string, ok func(byte) bool, closing byte) (string, error) {
	start := p.pos
	if p.peek() == '!' {
		p.pos++
	}
	name := p.scan(ok)
	if name == "" {
		return "", p.errorf("invalid %s name starting at %q", what, p.peek())
	}
	if !isAlnum(name[0]) {
		return "", p.errorf("%s name %q does not start with a letter or digit", what, name)
	}
	if !p.eof() && !isSpace(p.peek()) && p.peek() != closing {
		return "", p.errorf("invalid character %q in %s name %q", p.peek(), what, name)
	}
	return p.in[start:p.pos], nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// isNameByte follows dpkg, which allows '_' (deprecated) and upper case in
// package names although Policy does not.
func isNameByte(c byte) bool { return isAlnum(c) || c == '-' || c == '+' || c == '.' || c == '_' }

// isArchByte covers architecture names and wildcards (linux-any, any-amd64).
func isArchByte(c byte) bool { return isAlnum(c) || c == '-' }

// isProfileByte covers build profile names, lower case letters, digits and
// '-' by convention; '.', '+' and '_' are accepted as Dpkg::BuildProfiles does.
func isProfileByte(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '+' || c == '_'
}

func isOpByte(c byte) bool { return c == '<' || c == '>' || c == '=' }
