// Package dependency parses Debian relationship fields (Depends, Pre-Depends,
// Recommends, Conflicts, Breaks, Provides, Build-Depends and the like) into
// and-lists of or-lists of package relations.
//
// The syntax is that of Debian Policy §7.1 and build profiles (§7.1,
// BuildProfileSpec): name[:archqual] [(op version)] [[arch ...]] [<profile ...>...],
// alternatives joined by '|', relations by ','. A trailing comma is
// accepted, as dpkg-source accepts it; an empty relation elsewhere is an
// error. Substitution variables (${shlibs:Depends}) are not expanded and are
// rejected. Architecture and profile restrictions are parsed and kept but
// not evaluated: that needs the build's architecture and profiles.
package dependency

import (
	"errors"
	"fmt"
	"strings"

	"jailmgr/debian/version"
)

// ErrSyntax is wrapped by every *ParseError.
var ErrSyntax = errors.New("dependency: syntax error")

// ParseError reports a malformed relationship field.
type ParseError struct {
	Input    string // the whole string handed to Parse
	Offset   int    // byte offset in Input where the problem was found
	Relation string // the relation being parsed, as written (or Input, shortened, if that is empty)
	Reason   string
	Err      error // the version's parse error, if that was the problem
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s in %q: %s", ErrSyntax.Error(), e.Relation, e.Reason)
}

// Unwrap returns ErrSyntax and, for a bad version, the version's error, so
// both errors.Is(err, ErrSyntax) and errors.Is(err, version.ErrInvalid) hold.
func (e *ParseError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrSyntax, e.Err}
	}
	return []error{ErrSyntax}
}

// Op is a version relation operator.
type Op int

const (
	OpNone      Op = iota // no version restriction
	OpLess                // <<
	OpLessEq              // <= (or the deprecated <, which dpkg reads as <=)
	OpEq                  // =
	OpGreaterEq           // >= (or the deprecated >, which dpkg reads as >=)
	OpGreater             // >>
)

// String returns the operator as written in a control file; the deprecated
// forms come out as their modern spelling.
func (o Op) String() string {
	switch o {
	case OpNone:
		return ""
	case OpLess:
		return "<<"
	case OpLessEq:
		return "<="
	case OpEq:
		return "="
	case OpGreaterEq:
		return ">="
	case OpGreater:
		return ">>"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Relation is one package relation, e.g. "libc6:amd64 (>= 2.36) [linux-any] <!nocheck>".
type Relation struct {
	Name     string          // package name
	ArchQual string          // after ':' e.g. "any", "native", "amd64"; "" if none
	Op       Op              // OpNone if there is no version restriction
	Version  version.Version // valid when Op != OpNone
	Archs    []string        // restriction list "[amd64 !i386]" entries as written; nil if none
	// Profiles is the build profile restriction, "" if none: each group
	// "<...>" with its terms separated by one space, groups by one space,
	// e.g. "<!nocheck> <stage1 !cross>".
	Profiles string
}

// SatisfiedBy reports whether version v of the named package meets the
// version restriction; it is true for any v when there is none. Name,
// architecture and profiles are the caller's to check.
func (r Relation) SatisfiedBy(v version.Version) bool {
	if r.Op == OpNone {
		return true
	}
	c := version.Compare(v, r.Version)
	switch r.Op {
	case OpLess:
		return c < 0
	case OpLessEq:
		return c <= 0
	case OpEq:
		return c == 0
	case OpGreaterEq:
		return c >= 0
	case OpGreater:
		return c > 0
	}
	return false
}

// String returns the relation in canonical form, which Parse reads back to
// an equal Relation.
func (r Relation) String() string {
	var b strings.Builder
	r.write(&b)
	return b.String()
}

func (r Relation) write(b *strings.Builder) {
	b.WriteString(r.Name)
	if r.ArchQual != "" {
		b.WriteByte(':')
		b.WriteString(r.ArchQual)
	}
	if r.Op != OpNone {
		b.WriteString(" (")
		b.WriteString(r.Op.String())
		b.WriteByte(' ')
		b.WriteString(r.Version.String())
		b.WriteByte(')')
	}
	if len(r.Archs) > 0 {
		b.WriteString(" [")
		b.WriteString(strings.Join(r.Archs, " "))
		b.WriteByte(']')
	}
	if r.Profiles != "" {
		b.WriteByte(' ')
		b.WriteString(r.Profiles)
	}
}

// Alternatives is an or-list: "a | b | c" is satisfied by any one of them.
type Alternatives []Relation

// String returns the alternatives joined by " | ".
func (a Alternatives) String() string {
	var b strings.Builder
	a.write(&b)
	return b.String()
}

func (a Alternatives) write(b *strings.Builder) {
	for i, r := range a {
		if i > 0 {
			b.WriteString(" | ")
		}
		r.write(b)
	}
}

// Relations is an and-list: "a, b | c" needs a and one of b or c.
type Relations []Alternatives

// String returns the field in canonical form: ", " between relations.
func (rs Relations) String() string {
	var b strings.Builder
	for i, a := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		a.write(&b)
	}
	return b.String()
}
