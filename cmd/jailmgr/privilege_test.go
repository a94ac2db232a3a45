package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSetuidModel runs a setuid-root jailmgr as nobody: what only root may
// do is refused with a message that says so, and what a user of jails needs
// is open.
func TestSetuidModel(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("installs a setuid-root binary: run as root")
	}
	bin := buildStatic(t)
	dir, err := os.MkdirTemp("/var/tmp", "jailmgr-setuid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	suid := filepath.Join(dir, "jailmgr")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(suid, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(env []string, args ...string) (int, string) {
		cmd := exec.Command(suid, args...)
		cmd.Dir = "/"
		cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "list"}, "'image list' needs root"},
		{[]string{"bootstrap", "bookworm"}, "'bootstrap' needs root"},
		{[]string{"-q", "image", "gc", "--dry-run"}, "'image gc' needs root"},
		{[]string{"--store", dir, "session", "list"}, "--store is for root only"},
		{[]string{"--config=" + dir + "/x.conf", "jail", "list"}, "--config is for root only"},
		{[]string{"run", "bookworm", "--", "id"}, "only configured jails are open"},
	} {
		code, out := asNobody(nil, c.args...)
		if code != 1 || !strings.Contains(out, c.want) {
			t.Errorf("as nobody, jailmgr %v: exit %d, %q; want exit 1 and %q", c.args, code, out, c.want)
		}
	}
	// SUDO_UID names the caller only when root set it: nobody claiming to
	// be root is still nobody (a bare image would make its caller root).
	if code, out := asNobody([]string{"SUDO_UID=0", "SUDO_GID=0"}, "run", "bookworm", "--", "id"); code != 1 || !strings.Contains(out, "only configured jails") {
		t.Errorf("as nobody with SUDO_UID=0: exit %d, %q", code, out)
	}
	if code, out := asNobody(nil, "jail", "list"); code != 0 {
		t.Errorf("as nobody, jail list: exit %d, %q", code, out)
	}
}
