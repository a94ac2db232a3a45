package session

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// buildLeanInit builds cmd/jailmgr-init, as 'make build' does, next to
// this test binary, where initProgram looks for it, and stamps both.
func buildLeanInit(t *testing.T, stamp string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(filepath.Dir(self), "jailmgr-init")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-tags", "jailmgr_init",
		"-ldflags", "-X jailmgr/session.buildStamp="+stamp, "-o", out, "jailmgr/cmd/jailmgr-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build jailmgr-init: %v\n%s", err, b)
	}
	t.Cleanup(func() { os.Remove(out) })
	return out
}

// The lean jailmgr-init of the same build runs the session: the jail is as
// isolated as with jailmgr itself as the init (the probes are the ones
// TestIsolation runs). One of another build is refused with what to do,
// and nothing is left behind.
func TestLeanInit(t *testing.T) {
	spec, runDir := testJail(t, "lean")
	before := takeSnapshot(t, spec)
	defer func(s string) { buildStamp = s }(buildStamp)
	lean := buildLeanInit(t, "test-stamp")

	buildStamp = "test-stamp"
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(st.InitPid), "exe"))
	if err != nil || exe != lean {
		t.Errorf("the session's init runs %q (%v); want %s", exe, err, lean)
	}
	marker := filepath.Join(t.TempDir(), "host-only-marker")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkIsolation(t, st, marker)
	if err := End(runDir, st.ID); err != nil {
		t.Fatal(err)
	}

	if p, ok, detail := initCheck(); !ok || p != lean || !strings.Contains(detail, "this build") {
		t.Errorf("doctor's session init: %s, %v, %s", p, ok, detail)
	}

	// The client's build is not the init's.
	buildStamp = "other-stamp"
	if _, ok, detail := initCheck(); ok || !strings.Contains(detail, "make install") {
		t.Errorf("doctor passes a jailmgr-init of another build: %v, %s", ok, detail)
	}
	spec.Name = "lean-other"
	_, err = Begin(spec)
	if err == nil || !strings.Contains(err.Error(), "another build") || !strings.Contains(err.Error(), "make install") {
		t.Errorf("Begin with a jailmgr-init of another build: %v; want a refusal that says to install both", err)
	}
	if after := takeSnapshot(t, spec); !after.same(before) {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}

	// Without a stamp (a plain 'go build'), jailmgr is its own init.
	buildStamp = ""
	if p, err := initProgram(); err != nil || p == lean {
		t.Errorf("initProgram without a stamp = %s, %v; want jailmgr itself", p, err)
	}
	// Nor is a jailmgr-init used that others may write.
	buildStamp = "test-stamp"
	os.Chmod(lean, 0o777)
	if p, _ := initProgram(); p == lean {
		t.Error("a world-writable jailmgr-init was used")
	}
}
