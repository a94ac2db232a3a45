package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"jailmgr/debian/archivetest"
)

// TestBootstrapAliasUnknownCodename: an alias is resolved from the
// archive before the store is touched, and a codename the suite table does
// not know is a usage error that names it.
func TestBootstrapAliasUnknownCodename(t *testing.T) {
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "testing", Codename: "duke"})
	dir := filepath.Join(t.TempDir(), "store")
	cfg := filepath.Join(t.TempDir(), "none.conf")
	code, _, stderr := jailmgr(t, "--store", dir, "--config", cfg, "bootstrap", "testing",
		"--mirror", srv.URL, "--keyring", srv.KeyringPath, "--pockets", "release")
	if code != 2 || !strings.Contains(stderr, "the archive says it is duke") || !strings.Contains(stderr, "known suites are") {
		t.Errorf("exit %d, stderr %q; want 2 and an error naming duke and the known suites", code, stderr)
	}
	if srv.Requests("dists/testing/InRelease") != 1 {
		t.Errorf("dists/testing/InRelease fetched %d times, want once", srv.Requests("dists/testing/InRelease"))
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("resolving the alias created the store: %v", err)
	}
}
