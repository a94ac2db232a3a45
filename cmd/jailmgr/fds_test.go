package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// descriptorCaller runs jailmgr as a shell would after 'exec 3<FILE
// 7</': it holds a file as descriptor 3 and the host's root as 7, both
// without close-on-exec.
type descriptorCaller struct {
	t      *testing.T
	h      *e2eHost
	jm     string
	file   *os.File // descriptor 3
	hostFS *os.File // descriptor 7
}

func newDescriptorCaller(t *testing.T) *descriptorCaller {
	h := newE2E(t)
	path := filepath.Join(t.TempDir(), "preserved")
	if err := os.WriteFile(path, []byte("preserved\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	root, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return &descriptorCaller{t: t, h: h, jm: filepath.Join(filepath.Dir(h.schroot), "jailmgr"), file: file, hostFS: root}
}

// run runs jailmgr with args; stdout and stderr apart.
func (c *descriptorCaller) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.Command(c.jm, args...)
	cmd.Env, cmd.Dir = c.h.env, "/"
	// Shared with every command that read it before.
	if _, err := c.file.Seek(0, 0); err != nil {
		c.t.Fatal(err)
	}
	// Entry i is descriptor 3+i; nil ones are closed.
	cmd.ExtraFiles = []*os.File{c.file, nil, nil, nil, c.hostFS}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// fdLine is one line of 'ls -l /proc/self/fd/': "... 3 -> /target".
var fdLine = regexp.MustCompile(`(?m) (\d+) -> (.*)$`)

// checkDescriptors fails unless a command's 'ls -l /proc/self/fd/' shows
// stdio, the descriptors in want (by where they lead), and ls's own
// listing of the folder, nothing else.
func checkDescriptors(t *testing.T, listing string, want map[string]*regexp.Regexp) {
	t.Helper()
	var seen []string
	for _, m := range fdLine.FindAllStringSubmatch(listing, -1) {
		fd, target := m[1], m[2]
		seen = append(seen, fd)
		switch {
		case fd == "0" || fd == "1" || fd == "2":
		case want[fd] != nil:
			if !want[fd].MatchString(target) {
				t.Errorf("descriptor %s leads to %s, want %v", fd, target, want[fd])
			}
		case regexp.MustCompile(`^/proc/\d+/fd$`).MatchString(target):
			// ls reading the folder
		default:
			t.Errorf("descriptor %s (%s) reached the command:\n%s", fd, target, listing)
		}
	}
	for _, fd := range append([]string{"0", "1", "2"}, mapKeys(want)...) {
		if !slices.Contains(seen, fd) {
			t.Errorf("descriptor %s did not reach the command:\n%s", fd, listing)
		}
	}
}

func mapKeys(m map[string]*regexp.Regexp) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// What the caller holds without close-on-exec stays out of the jail: the
// command sees its stdio, not the host's root that 'exec 7</' opened.
func TestRunOnlyStdio(t *testing.T) {
	c := newDescriptorCaller(t)
	out, stderr, code := c.run("run", "e2e", "--", "ls", "-l", "/proc/self/fd/")
	if code != 0 {
		t.Fatalf("ls: exit %d: %s", code, stderr)
	}
	checkDescriptors(t, out, nil)
	out, _, code = c.run("run", "e2e", "--", "ls", "/proc/self/fd/7/")
	if code == 0 {
		t.Errorf("the host's root, as descriptor 7, is open inside the jail:\n%s", out)
	}
	// The schroot front end passes stdio only, as schroot does.
	out, stderr, code = c.run("schroot", "-c", "e2e", "--", "ls", "-l", "/proc/self/fd/")
	if code != 0 {
		t.Fatalf("schroot ls: exit %d: %s", code, stderr)
	}
	checkDescriptors(t, out, nil)
}

// --preserve-fds N passes the caller's descriptors 3 to 3+N-1 as they
// are, and no more.
func TestPreserveFDs(t *testing.T) {
	c := newDescriptorCaller(t)
	script := "cat <&3; ls -l /proc/self/fd/"
	want := map[string]*regexp.Regexp{"3": regexp.MustCompile(`/preserved$`)}
	out, stderr, code := c.run("run", "e2e", "--preserve-fds", "1", "--", "sh", "-c", script)
	if code != 0 || !strings.HasPrefix(out, "preserved\n") {
		t.Fatalf("run --preserve-fds 1: exit %d, %q, %s", code, out, stderr)
	}
	checkDescriptors(t, out, want)

	id, stderr, code := c.run("session", "begin", "e2e")
	if code != 0 {
		t.Fatalf("session begin: %s", stderr)
	}
	id = strings.TrimSpace(id)
	out, stderr, code = c.run("session", "run", id, "--preserve-fds=1", "--", "sh", "-c", script)
	if code != 0 || !strings.HasPrefix(out, "preserved\n") {
		t.Fatalf("session run --preserve-fds 1: exit %d, %q, %s", code, out, stderr)
	}
	checkDescriptors(t, out, want)
	out, _, _ = c.run("session", "run", id, "--", "ls", "-l", "/proc/self/fd/")
	checkDescriptors(t, out, nil)

	// Descriptor 4 is not open in the caller; 7 is, past what is asked.
	for _, args := range [][]string{
		{"run", "e2e", "--preserve-fds", "2", "--", "true"},
		{"session", "run", id, "--preserve-fds", "5", "--", "true"},
	} {
		if _, stderr, code := c.run(args...); code != 2 || !strings.Contains(stderr, "descriptor 4: session: descriptor not passed by the caller") {
			t.Errorf("%v: exit %d, %q; want 2 and a word on descriptor 4", args, code, stderr)
		}
	}
}

func TestPreserveFDsUsage(t *testing.T) {
	for _, n := range []string{"x", "-1", "65", "1.5", ""} {
		for _, args := range [][]string{
			{"run", "nojail", "--preserve-fds", n, "--", "true"},
			{"session", "run", "nosession", "--preserve-fds=" + n, "--", "true"},
			{"shell", "nojail", "--preserve-fds", n},
		} {
			code, _, stderr := jailmgr(t, args...)
			if code != 2 || !strings.Contains(stderr, "preserve-fds") {
				t.Errorf("%q: exit %d, %q; want 2 and a word on --preserve-fds", args, code, stderr)
			}
		}
	}
}
