package session

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// SuppressSync answers sync calls with success and nothing done, and
// leaves no_new_privs alone; without it they reach the kernel.
func TestSuppressSync(t *testing.T) {
	root := jailRoot(t)
	for _, suppress := range []bool{false, true} {
		cmd, err := Chroot(root, "/probe")
		if err != nil {
			t.Fatal(err)
		}
		if suppress {
			SuppressSync(cmd)
		}
		cmd.Env = []string{probeEnv + "=sync"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		want := "fsync=bad file descriptor\nno_new_privs=0\n"
		if suppress {
			want = "fsync=ok\nno_new_privs=0\n"
		}
		if got := string(out); !strings.HasSuffix(got, want) {
			t.Errorf("suppress=%v: probe says %q, want %q", suppress, got, want)
		}
	}
}

// The command runs chrooted under a pid 1 that is not, so that ischroot
// (and the maintainer scripts that ask it) sees a chroot, as under
// debootstrap; a bare command name is found on PATH inside the root.
func TestChrootIsAChroot(t *testing.T) {
	root := jailRoot(t)
	for _, name := range []string{"/probe", "probe"} {
		cmd, err := Chroot(root, name)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = []string{probeEnv + "=ischroot", "PATH=/nonexistent:/"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe %s: %v\n%s", name, err, out)
		}
		if got := string(out); !strings.HasSuffix(got, "chroot=true\n") {
			t.Errorf("probe %s says %q, want chroot=true", name, got)
		}
	}
	cmd, err := Chroot(root, "no-such-command")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = []string{"PATH=/"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 127 || !strings.Contains(string(out), "no-such-command") {
		t.Errorf("missing command: %v, %q; want exit 127 naming it", err, out)
	}
}
