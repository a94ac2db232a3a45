package names

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, s := range []string{"bookworm", "focal-build", "a.b_c-1", "X", strings.Repeat("a", 11)} {
		if !Valid(s, 11) {
			t.Errorf("Valid(%q) = false", s)
		}
	}
	for _, s := range []string{"", ".hidden", "-flag", "a/b", "a:b", "a b", "..", "é", "a\x00", strings.Repeat("a", 12)} {
		if Valid(s, 11) {
			t.Errorf("Valid(%q) = true", s)
		}
	}
}
