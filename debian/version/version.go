// Package version parses and compares Debian package version strings
// ([epoch:]upstream_version[-debian_revision]) with the ordering dpkg uses.
//
// Parse is stricter than dpkg: where dpkg only warns (an upstream version that
// does not start with a digit, a character outside the allowed set) Parse
// returns an error, because such versions never appear in a Debian or Ubuntu
// archive and accepting them would hide a corrupt index. Compare does not
// validate and orders any Version, valid or not, exactly as dpkg would.
package version

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("version: invalid version")

// ParseError describes a version string that Parse rejected.
type ParseError struct {
	Input  string // the string handed to Parse
	Reason string // what is wrong with it
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s %q: %s", ErrInvalid.Error(), e.Input, e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *ParseError) Unwrap() error { return ErrInvalid }

// Version is a parsed Debian version. The zero value is not a valid version
// (its upstream part is empty) but compares lower than every valid one.
type Version struct {
	Epoch    uint
	Upstream string
	Revision string // "" for native packages
}

// maxEpoch is dpkg's limit: it stores the epoch in an int.
const maxEpoch = math.MaxInt32

// Parse parses s as a Debian version. Surrounding whitespace is ignored, as
// dpkg ignores it; whitespace inside is an error.
func Parse(s string) (Version, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return Version{}, &ParseError{Input: in, Reason: "empty version"}
	}
	if strings.ContainsAny(s, " \t\n\r\v\f") {
		return Version{}, &ParseError{Input: in, Reason: "embedded whitespace"}
	}
	var v Version
	// The epoch ends at the first colon, so later colons belong to upstream.
	if i := strings.IndexByte(s, ':'); i >= 0 {
		e := s[:i]
		if e == "" {
			return Version{}, &ParseError{Input: in, Reason: "empty epoch"}
		}
		for j := 0; j < len(e); j++ {
			if !isDigit(e[j]) {
				return Version{}, &ParseError{Input: in, Reason: "epoch is not a number"}
			}
		}
		n, err := strconv.ParseUint(e, 10, 64)
		if err != nil || n > maxEpoch {
			return Version{}, &ParseError{Input: in, Reason: "epoch is too big"}
		}
		v.Epoch = uint(n)
		s = s[i+1:]
	}
	// The revision starts after the last hyphen, so upstream may contain hyphens.
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		v.Revision = s[i+1:]
		s = s[:i]
		if v.Revision == "" {
			return Version{}, &ParseError{Input: in, Reason: "empty revision"}
		}
	}
	v.Upstream = s
	if v.Upstream == "" {
		return Version{}, &ParseError{Input: in, Reason: "empty upstream version"}
	}
	if !isDigit(v.Upstream[0]) {
		return Version{}, &ParseError{Input: in, Reason: "upstream version does not start with a digit"}
	}
	for i := 0; i < len(v.Upstream); i++ {
		if c := v.Upstream[i]; !isAlnum(c) && !strings.ContainsRune(".+~-:", rune(c)) {
			return Version{}, &ParseError{Input: in, Reason: "invalid character " + quoteByte(c) + " in upstream version"}
		}
	}
	for i := 0; i < len(v.Revision); i++ {
		if c := v.Revision[i]; !isAlnum(c) && !strings.ContainsRune(".+~", rune(c)) {
			return Version{}, &ParseError{Input: in, Reason: "invalid character " + quoteByte(c) + " in revision"}
		}
	}
	return v, nil
}

// MustParse is like Parse but panics on error. It is meant for constants in
// tests and tables, never for input.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the version in canonical form: the epoch is written only
// when it is not zero, except that a zero epoch is kept when the upstream part
// contains a colon, since without it the string would parse differently.
func (v Version) String() string {
	var b strings.Builder
	b.Grow(len(v.Upstream) + len(v.Revision) + 12)
	if v.Epoch > 0 || strings.IndexByte(v.Upstream, ':') >= 0 {
		b.WriteString(strconv.FormatUint(uint64(v.Epoch), 10))
		b.WriteByte(':')
	}
	b.WriteString(v.Upstream)
	if v.Revision != "" {
		b.WriteByte('-')
		b.WriteString(v.Revision)
	}
	return b.String()
}

// Compare returns -1, 0 or +1 as a sorts before, equal to or after b in
// dpkg's ordering: by epoch, then upstream, then revision, where each part is
// compared as alternating non-digit and digit runs, letters sort before
// other characters and '~' sorts before everything, even the end of the part.
func Compare(a, b Version) int {
	switch {
	case a.Epoch < b.Epoch:
		return -1
	case a.Epoch > b.Epoch:
		return 1
	}
	if c := compareString(a.Upstream, b.Upstream); c != 0 {
		return c
	}
	return compareString(a.Revision, b.Revision)
}

// order is dpkg's character weight for the non-digit runs; 0 is the end of
// the string (and digits, which never reach it).
func order(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

// compareString is dpkg's verrevcmp, normalised to -1, 0, +1. Digit runs are
// compared as numbers without converting them, so any length works.
func compareString(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := order(a, i), order(b, j)
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		firstDiff := 0
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return sign(firstDiff)
		}
	}
	return 0
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// quoteByte names c for an error message; bytes outside printable ASCII are
// shown in hex because they are usually part of a multi-byte sequence.
func quoteByte(c byte) string {
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf("%#02x", c)
	}
	return strconv.QuoteRune(rune(c))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
