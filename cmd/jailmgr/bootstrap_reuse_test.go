package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"jailmgr/debian/archivetest"
)

// TestNothingToDo runs the jailmgr binary as a user does: a repeated
// bootstrap prints the version it reuses and says so, --force builds the
// next one, and an update with nothing new says the image is current and
// prints its reference; neither commits anything.
func TestNothingToDo(t *testing.T) {
	schroot, _ := e2eSetup(t) // skips unless root
	if testing.Short() {
		t.Skip("bootstraps two images with apt")
	}
	bin := filepath.Join(filepath.Dir(schroot), "jailmgr")
	pkgs, err := archivetest.MinimalSystem("apt", "perl-base", "sed", "grep", "findutils", "diffutils", "mawk", "debianutils")
	if err != nil {
		t.Skipf("cannot repack the host's apt into a test system: %v", err)
	}
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: pkgs})
	dir := t.TempDir()
	global := []string{"--store", filepath.Join(dir, "store"), "--config", filepath.Join(dir, "none.conf")}
	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, append(global, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("jailmgr %v: %v\n%s", args, err, errb.String())
		}
		return strings.TrimSpace(out.String()), errb.String()
	}
	bootstrap := []string{"bootstrap", "bookworm", "--variant", "minbase", "--mirror", srv.URL, "--keyring", srv.KeyringPath,
		"--pockets", "release", "--name", "r", "--jobs", "4",
		// apt in the image must trust the test archive's key.
		"--customize-hook", "cp " + srv.KeyringPath + ` "$1/etc/apt/trusted.gpg.d/jailmgr-test.gpg"`}
	if out, _ := run(bootstrap...); out != "r:1" {
		t.Fatalf("first bootstrap printed %q, want r:1", out)
	}
	if out, errs := run(bootstrap...); out != "r:1" || !strings.Contains(errs, "r:1 has the same inputs: reusing it (--force builds anyway)") {
		t.Errorf("repeated bootstrap printed %q, want r:1 reused; stderr:\n%s", out, errs)
	}
	if out, errs := run(append(bootstrap, "--force")...); out != "r:2" {
		t.Errorf("bootstrap --force printed %q, want r:2; stderr:\n%s", out, errs)
	}
	if out, errs := run("image", "update", "r"); out != "r:2" || !strings.Contains(errs, "r:2 is current\n") {
		t.Errorf("image update with nothing new printed %q, want r:2 and 'r:2 is current'; stderr:\n%s", out, errs)
	}
	list, _ := run("image", "list", "--json")
	var rows []imageRow
	if err := json.Unmarshal([]byte(list), &rows); err != nil {
		t.Fatalf("image list --json: %v\n%s", err, list)
	}
	if len(rows) != 2 || rows[1].Name != "r" || rows[1].Version != 2 {
		t.Errorf("image list: %+v, want r:1 and r:2", rows)
	}
}
