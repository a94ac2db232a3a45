// Package names holds the one rule for the names jailmgr makes files and
// folders of: images, jails and sessions.
package names

// Valid reports whether s can name an image, a jail or a session: ASCII
// letters, digits, '.', '-' and '_', not first a '.' or a '-' (no hidden
// file, nothing a command line reads as a flag), at most max bytes.
func Valid(s string, max int) bool {
	if s == "" || len(s) > max || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
