package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestImageCreateRefusesBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	cfg := filepath.Join(t.TempDir(), "none.conf")
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		code  int
		match string
	}{
		{[]string{"x", "/bin/ls"}, 2, "needs --from-host"},
		{[]string{"x", "--from-host"}, 2, "takes a name, then --from-host"},
		{[]string{"bad/name", "--from-host", "/bin/ls"}, 2, `"bad/name" is not an image name`},
		{[]string{".hidden", "--from-host", "/bin/ls"}, 2, "is not an image name"},
		{[]string{"x", "--from-host", "bin/ls"}, 2, `"bin/ls" is not an absolute path`},
		{[]string{"x", "--from-host", "/bin/ls", "/nonexistent/tool"}, 1, "resolve /nonexistent/tool: /nonexistent: no such file or directory"},
		{[]string{"x", "--from-host", script}, 1, script + " is a script for /bin/sh; pass that interpreter instead"},
	} {
		code, _, stderr := jailmgr(t, append([]string{"--store", dir, "--config", cfg, "image", "create"}, tc.args...)...)
		if code != tc.code || !strings.HasPrefix(stderr, "jailmgr: ") || !strings.Contains(stderr, tc.match) {
			t.Errorf("image create %v: exit %d, %q; want %d and %q", tc.args, code, stderr, tc.code, tc.match)
		}
	}
	for _, sub := range []string{"images", "staging"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, sub)); len(ents) != 0 {
			t.Errorf("%s/ after refused input: %v", sub, ents)
		}
	}
}

// buildStatic builds jailmgr as 'make build' does. Sessions re-execute
// the binary inside the jail, so it must be static, which the test binary
// (linked with cgo when a C compiler is there) need not be.
func buildStatic(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go" // where the Makefile looks too
		if _, err := os.Stat(goBin); err != nil {
			t.Skip("no go command to build a static jailmgr with")
		}
	}
	out := filepath.Join(t.TempDir(), "jailmgr")
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build a static jailmgr: %v\n%s", err, b)
	}
	return out
}

func TestImageCreateFromHostRunsInSession(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("sessions need root (namespaces, mounts, cgroups); CI runs as root")
	}
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "none.conf")
	code, out, stderr := jailmgr(t, "--store", dir, "--config", cfg, "image", "create", "mini", "--from-host", "/bin/bash", "/bin/ls")
	if code != 0 || out != "mini:1\n" {
		t.Fatalf("image create: exit %d, %q, %q", code, out, stderr)
	}
	bin := buildStatic(t)
	runDir := t.TempDir()
	run := func(argv ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--store", dir, "--config", cfg, "run", "mini", "--"}, argv...)...)
		// The caller is root itself, not a sudo user whose home would be
		// mounted in.
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "JAILMGR_RUN_DIR=" + runDir}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("jailmgr run mini -- %v: %v\n%s%s", argv, err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}

	// ls / in the jail lists the image's top folder: nothing more (the
	// session mounts on folders the image has), nothing less.
	ents, err := os.ReadDir(filepath.Join(dir, "images/mini/1/rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range ents {
		want = append(want, e.Name())
	}
	got := run("ls", "/")
	if got != strings.Join(want, "\n")+"\n" || !strings.Contains(got, "lib64\n") || !strings.Contains(got, "proc\n") {
		t.Errorf("ls / in the jail:\n%s\nwant the image's top folder: %v", got, want)
	}
	// Users resolve by name through the image's /etc/passwd and group.
	if got := run("ls", "-l", "/etc/passwd"); !strings.Contains(got, " root root ") {
		t.Errorf("ls -l /etc/passwd: %q; want the owner by name", got)
	}
	if got := run("/bin/bash", "-c", "echo $((6*7)) $HOME; cd && pwd"); got != "42 /root\n/root\n" {
		t.Errorf("bash in the jail: %q", got)
	}
	if ents, _ := os.ReadDir(runDir); len(ents) != 0 {
		t.Errorf("sessions left behind: %v", ents)
	}
}
