package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootstrapPocketFlags: --pockets takes known names only and must keep
// the release; a bad value is a usage error that lists the valid ones and
// touches nothing.
func TestBootstrapPocketFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	cfg := filepath.Join(t.TempDir(), "none.conf")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--pockets", "release,backports"}, "release, updates, security"},
		{[]string{"--pockets", "updates,security"}, "release pocket is required"},
		{[]string{"--pockets", ""}, "release pocket is required"},
		{[]string{"--pockets", "release", "--security-mirror", "ftp://x.invalid/"}, ""},
	} {
		args := append([]string{"--store", dir, "--config", cfg, "bootstrap", "bookworm", "--mirror", "http://127.0.0.1:1/debian"}, c.args...)
		code, _, stderr := jailmgr(t, args...)
		if c.want == "" {
			// The security mirror is not used without its pocket: the
			// run gets as far as the keyring or the network.
			if code == 2 {
				t.Errorf("%v: exit 2 (%s), want no usage error", c.args, stderr)
			}
			continue
		}
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v: a bad command line created the store: %v", c.args, err)
		}
	}
}
