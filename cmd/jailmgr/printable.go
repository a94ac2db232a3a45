package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable makes a message safe to print on a terminal: control bytes,
// invalid UTF-8 and the other unprintable runes a config file, a tarball's
// names or a user's argument may hold are shown escaped (\x1b, \u202e), so
// that an error never moves the cursor, rewrites what was printed or
// smuggles escape sequences to the caller's terminal. Newlines and tabs,
// which the messages themselves use, stay.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if !safeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case safeRune(r):
			b.WriteString(s[i : i+n])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

func safeRune(r rune) bool {
	return r == '\n' || r == '\t' || (r != utf8.RuneError && unicode.IsPrint(r))
}
