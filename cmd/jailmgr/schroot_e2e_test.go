package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"jailmgr/session"
	"jailmgr/session/sessiontest"
)

// End-to-end: the jailmgr binary, built as 'make build' builds it and
// called schroot, drives real sessions over a small root made of the
// host's packages, each command a process of its own, as sbuild runs
// them. They need root (namespaces, mounts, cgroups).

var (
	e2eOnce sync.Once
	e2eDir  string // holds bin/schroot and root/
	e2eErr  error
)

// e2eSetup builds, once, a static jailmgr linked as schroot and a root.
func e2eSetup(t *testing.T) (schroot, root string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("sessions need root (namespaces, mounts, cgroups); CI runs as root")
	}
	e2eOnce.Do(func() {
		if e2eDir, e2eErr = os.MkdirTemp("", "jailmgr-schroot-e2e-"); e2eErr != nil {
			return
		}
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		bin := filepath.Join(e2eDir, "bin", "jailmgr")
		build := exec.Command(goTool, "build", "-o", bin, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			e2eErr = fmt.Errorf("build jailmgr: %v\n%s", err, out)
			return
		}
		if e2eErr = os.Symlink("jailmgr", filepath.Join(e2eDir, "bin", "schroot")); e2eErr != nil {
			return
		}
		e2eErr = sessiontest.MinimalRoot(filepath.Join(e2eDir, "root"))
	})
	if e2eErr != nil {
		t.Fatal(e2eErr)
	}
	return filepath.Join(e2eDir, "bin", "schroot"), filepath.Join(e2eDir, "root")
}

// e2eHost is a schroot configuration and a session folder of one test.
type e2eHost struct {
	t       *testing.T
	schroot string
	env     []string
	runDir  string
	root    string // the chroot's directory (a copy of the test root)
	archive string // the file chroot's archive
}

func newE2E(t *testing.T) *e2eHost {
	schroot, root := e2eSetup(t)
	base := t.TempDir()
	h := &e2eHost{t: t, schroot: schroot, runDir: filepath.Join(base, "run"), root: filepath.Join(base, "chroot"),
		archive: filepath.Join(base, "root.tar.gz")}
	if out, err := exec.Command("cp", "-a", root, h.root).CombinedOutput(); err != nil {
		t.Fatalf("copy root: %v %s", err, out)
	}
	if out, err := exec.Command("tar", "-C", root, "-czf", h.archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("pack root: %v %s", err, out)
	}
	nobody := ""
	if _, err := session.LookupUser(65534, 65534); err == nil {
		nobody = ",nobody"
	}
	etc := filepath.Join(base, "etc")
	os.MkdirAll(filepath.Join(etc, "chroot.d"), 0o755)
	os.WriteFile(filepath.Join(etc, "chroot.d", "e2e"), []byte(fmt.Sprintf(`[e2e]
type=directory
description=end-to-end
directory=%s
union-type=overlay
users=root%s
root-groups=root
profile=minimal
aliases=e2e-alias

[e2e-plain]
type=plain
directory=%s
groups=root

[e2e-file]
type=file
file=%s
groups=root
source-groups=root
profile=minimal
`, h.root, nobody, h.root, h.archive)), 0o644)
	h.env = append(os.Environ(), "JAILMGR_SCHROOT_DIR="+etc, "JAILMGR_CONFIG="+filepath.Join(base, "none.conf"),
		"JAILMGR_RUN_DIR="+h.runDir, "JAILMGR_STORE="+filepath.Join(base, "store"))
	t.Cleanup(h.cleanup)
	return h
}

// cleanup ends what a failed test left open.
func (h *e2eHost) cleanup() {
	states, _ := session.List(h.runDir)
	for _, st := range states {
		session.End(h.runDir, st.ID)
	}
}

// result is how one schroot process ended.
type result struct {
	code           int
	stdout, stderr string
}

func (h *e2eHost) cmd(extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.Command(h.schroot, args...)
	cmd.Env = append(append([]string{}, h.env...), extraEnv...)
	cmd.Dir = "/"
	return cmd
}

// run runs schroot with args and stdin.
func (h *e2eHost) run(stdin []byte, extraEnv []string, args ...string) result {
	h.t.Helper()
	cmd := h.cmd(extraEnv, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("schroot %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

func (h *e2eHost) schrootOK(args ...string) string {
	h.t.Helper()
	r := h.run(nil, nil, args...)
	if r.code != 0 {
		h.t.Fatalf("schroot %v: exit %d\n%s", args, r.code, r.stderr)
	}
	return r.stdout
}

// mountsBelow counts the host's mounts below dir.
func mountsBelow(dir string) int {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			n++
		}
	}
	return n
}

var sessionName = regexp.MustCompile(`^e2e-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$`)

func TestSchrootSessionLifecycle(t *testing.T) {
	h := newE2E(t)
	// -b prints exactly the session's name.
	out := h.schrootOK("-b", "-c", "e2e-alias")
	if !sessionName.MatchString(out) {
		t.Fatalf("-b printed %q", out)
	}
	id := strings.TrimSpace(out)

	// Separate processes use it: the exit status is the command's.
	if r := h.run(nil, nil, "-r", "-c", id, "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("exit 3: got %d (%s)", r.code, r.stderr)
	}
	h.schrootOK("-r", "-c", "session:"+id, "-u", "root", "--", "sh", "-c", "echo kept > /etc/e2e-marker")
	if out := h.schrootOK("-r", "-c", id, "-q", "--", "cat", "/etc/e2e-marker"); out != "kept\n" {
		t.Errorf("a write did not persist across runs: %q", out)
	}
	env := h.schrootOK("-r", "-c", id, "-d", "/", "--", "env")
	for _, want := range []string{"SCHROOT_CHROOT_NAME=e2e\n", "SCHROOT_ALIAS_NAME=e2e-alias\n", "SCHROOT_SESSION_ID=" + id + "\n",
		"SCHROOT_USER=root\n", "SCHROOT_UID=0\n", "SCHROOT_GROUP=root\n", "SCHROOT_GID=0\n", "SCHROOT_COMMAND=env\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment lacks %q:\n%s", want, env)
		}
	}

	// --info shows where the root is mounted on the host, as clients
	// that copy files in and out need.
	info := h.schrootOK("-i", "-c", "session:"+id)
	root := filepath.Join(h.runDir, id, "root")
	for _, want := range []string{"  ─── Session ───\n", "  Path                                 " + root + "\n",
		"  Mount Location                       " + root + "\n", "  Session Purged                       true\n",
		"  Original Chroot Name                 e2e\n", "  Selected Chroot Name                 e2e-alias\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("--info lacks %q:\n%s", want, info)
		}
	}
	if data, err := os.ReadFile(filepath.Join(root, "etc/e2e-marker")); err != nil || string(data) != "kept\n" {
		t.Errorf("the session's root is not at its Path on the host: %q %v", data, err)
	}
	if loc := h.schrootOK("--location", "-c", "session:"+id); loc != root+"\n" {
		t.Errorf("--location = %q", loc)
	}
	if l := h.schrootOK("-l", "--all-sessions"); !strings.Contains(l, "session:"+id+"\n") {
		t.Errorf("--all-sessions lacks the session:\n%s", l)
	}

	// -e ends it: nothing of it is left, and the chroot's directory never
	// saw its writes.
	h.schrootOK("-e", "-c", id)
	if _, err := os.Stat(filepath.Join(h.runDir, id)); !os.IsNotExist(err) {
		t.Errorf("state left after -e: %v", err)
	}
	if n := mountsBelow(h.runDir); n != 0 {
		t.Errorf("%d mounts left after -e", n)
	}
	if _, err := os.Stat(filepath.Join(h.root, "etc/e2e-marker")); err == nil {
		t.Errorf("a union session wrote to the chroot's directory")
	}
	if r := h.run(nil, nil, "-r", "-c", id, "--", "true"); r.code != 1 || r.stderr != "E: "+id+": Chroot not found\n" {
		t.Errorf("-r after -e: %d %q", r.code, r.stderr)
	}
}

func TestSchrootAutomaticSession(t *testing.T) {
	h := newE2E(t)
	if r := h.run(nil, nil, "-c", "e2e", "--", "true"); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("-c e2e -- true: %+v", r)
	}
	if r := h.run(nil, nil, "-c", "e2e", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exit 7: %+v", r)
	}
	// The source chroot writes to the directory itself.
	h.schrootOK("-c", "source:e2e", "--", "sh", "-c", "echo source > /etc/from-source")
	if data, err := os.ReadFile(filepath.Join(h.root, "etc/from-source")); err != nil || string(data) != "source\n" {
		t.Errorf("a source session's write did not reach the directory: %q %v", data, err)
	}
	// A plain chroot runs too, in a throwaway session.
	if out := h.schrootOK("-c", "e2e-plain", "--", "cat", "/etc/from-source"); out != "source\n" {
		t.Errorf("plain: %q", out)
	}
	if out := h.schrootOK("-b", "-c", "e2e-plain"); out != "e2e-plain\n" {
		t.Errorf("-b of a plain chroot printed %q, want its name", out)
	}
	// A file chroot unpacks its archive; its source chroot packs changes back.
	h.schrootOK("-c", "source:e2e-file", "--", "sh", "-c", "echo packed > /etc/packed")
	if out := h.schrootOK("-c", "e2e-file", "--", "cat", "/etc/packed"); out != "packed\n" {
		t.Errorf("file chroot after repack: %q", out)
	}
	// A command whose directory is missing inside fails as schroot's does.
	r := h.run(nil, nil, "-c", "e2e", "-d", "/nonexistent", "--", "true")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "E: Failed to change to directory ‘/nonexistent’: No such file or directory\n") {
		t.Errorf("-d /nonexistent: %+v", r)
	}
	if states, _ := session.List(h.runDir); len(states) != 0 || mountsBelow(h.runDir) != 0 {
		t.Errorf("automatic sessions left %d sessions, %d mounts", len(states), mountsBelow(h.runDir))
	}
}

func TestSchrootBinaryStdio(t *testing.T) {
	h := newE2E(t)
	data := make([]byte, 3<<20)
	rand.Read(data)
	// cat ends only when stdin reaches EOF; the bytes come back unchanged.
	r := h.run(data, nil, "-c", "e2e", "--", "sh", "-c", "cat; echo eof-seen >&2")
	if r.code != 0 || r.stdout != string(data) || r.stderr != "eof-seen\n" {
		t.Errorf("binary round trip: exit %d, %d of %d bytes equal=%v, stderr %q", r.code, len(r.stdout), len(data), r.stdout == string(data), r.stderr)
	}
	// -p keeps the caller's variables, minus the filtered ones.
	r = h.run(nil, []string{"E2E_VAR=kept", "LD_PRELOAD=/nonexistent.so", "IFS=x"}, "-p", "-c", "e2e", "--", "env")
	if !strings.Contains(r.stdout, "E2E_VAR=kept\n") || strings.Contains(r.stdout, "LD_PRELOAD") || strings.Contains(r.stdout, "IFS=") {
		t.Errorf("-p environment:\n%s", r.stdout)
	}
	if r = h.run(nil, []string{"E2E_VAR=kept"}, "-c", "e2e", "--", "env"); strings.Contains(r.stdout, "E2E_VAR") {
		t.Errorf("the caller's environment leaked without -p:\n%s", r.stdout)
	}
}

func TestSchrootSignals(t *testing.T) {
	h := newE2E(t)
	r := h.run(nil, nil, "-c", "e2e", "--", "sh", "-c", "kill -KILL $$")
	if r.code != 1 || r.stderr != "E: Child terminated by signal ‘Killed’\n" {
		t.Errorf("killed command: %+v", r)
	}
	// SIGTERM reaches the command, which may act on it; schroot then
	// exits 1 whatever the command's status.
	cmd := h.cmd(nil, "-c", "e2e", "--", "sh", "-c", `trap "echo got-term; exit 5" TERM; echo ready; while :; do sleep 0.1; done`)
	var out, errb bytes.Buffer
	outR, outW, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = outW, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	buf := make([]byte, 6)
	if n, _ := outR.Read(buf); string(buf[:n]) != "ready\n" {
		t.Fatalf("command did not start: %q", buf[:n])
	}
	cmd.Process.Signal(syscall.SIGTERM)
	out.ReadFrom(outR)
	err := cmd.Wait()
	ee, _ := err.(*exec.ExitError)
	// (The shell may report its sleep, which got the signal too: it goes
	// to the command's process group.)
	if ee == nil || ee.ExitCode() != 1 || out.String() != "got-term\n" ||
		!strings.HasPrefix(errb.String(), "E: Caught signal ‘Terminated’: terminating immediately\n") ||
		!strings.HasSuffix(errb.String(), "E: Caught signal ‘Terminated’\n") {
		t.Errorf("SIGTERM: %v, stdout %q, stderr %q", err, out.String(), errb.String())
	}
	if states, _ := session.List(h.runDir); len(states) != 0 {
		t.Errorf("the automatic session outlived SIGTERM: %d", len(states))
	}
}

func TestSchrootRecoverSession(t *testing.T) {
	h := newE2E(t)
	id := strings.TrimSpace(h.schrootOK("-b", "-c", "e2e", "-n", "e2e-recover"))
	st, err := session.Get(h.runDir, id)
	if err != nil {
		t.Fatal(err)
	}
	// A live session: nothing to do.
	h.schrootOK("--recover-session", "-c", id)
	if again, _ := session.Get(h.runDir, id); again.InitPid != st.InitPid {
		t.Errorf("--recover-session replaced a live session")
	}
	// Its init killed (and its monitor first, which would clean up by
	// itself): recovery cleans what is left and begins it again.
	killMonitor(t, st.Dir)
	syscall.Kill(st.InitPid, syscall.SIGKILL)
	for i := 0; i < 100 && st.Alive(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	r := h.run(nil, nil, "--recover-session", "-c", id)
	if r.code != 0 || !strings.Contains(r.stderr, "it was begun again") {
		t.Errorf("--recover-session of a dead session: %+v", r)
	}
	if out := h.schrootOK("-r", "-c", id, "--", "echo", "alive"); out != "alive\n" {
		t.Errorf("the recovered session does not run: %q", out)
	}
	h.schrootOK("-e", "-c", id)
	if n := mountsBelow(h.runDir); n != 0 {
		t.Errorf("%d mounts left", n)
	}
}

// killMonitor kills the monitor of the session in dir, found by its
// command line, by pid.
func killMonitor(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "__jailmgr-session-monitor\x00"+dir) {
			syscall.Kill(pid, syscall.SIGKILL)
			return
		}
	}
	t.Fatalf("no monitor for %s", dir)
}

func TestSchrootSessionOwner(t *testing.T) {
	h := newE2E(t)
	nobody, err := session.LookupUser(65534, 65534)
	if err != nil {
		t.Skip("no user 65534 on this host")
	}
	other, err := session.LookupUser(1, 1)
	if err != nil {
		t.Skip("no user 1 on this host")
	}
	// Called through sudo by nobody, as jailmgr is until it has a
	// privilege model of its own.
	asUser := func(u session.User) []string {
		return []string{fmt.Sprintf("SUDO_UID=%d", u.UID), fmt.Sprintf("SUDO_GID=%d", u.GID)}
	}
	r := h.run(nil, asUser(nobody), "-b", "-c", "e2e")
	if r.code != 0 {
		t.Fatalf("-b as %s: %+v", nobody.Name, r)
	}
	id := strings.TrimSpace(r.stdout)
	var st session.State
	data, _ := os.ReadFile(filepath.Join(h.runDir, id, "state.json"))
	json.Unmarshal(data, &st)
	if st.UID != 65534 {
		t.Errorf("owner uid %d", st.UID)
	}
	if r := h.run(nil, asUser(nobody), "-r", "-c", id, "--", "id", "-u"); r.code != 0 || r.stdout != "65534\n" {
		t.Errorf("owner runs: %+v", r)
	}
	if r := h.run(nil, asUser(nobody), "-r", "-c", id, "-u", "root", "--", "id", "-u"); r.code != 1 || !strings.HasPrefix(r.stderr, "E: Access not authorised\n") {
		t.Errorf("owner as root without root-users: %+v", r)
	}
	for _, args := range [][]string{{"-r", "-c", id, "--", "true"}, {"-e", "-c", id}} {
		if r := h.run(nil, asUser(other), args...); r.code != 1 || !strings.HasPrefix(r.stderr, "E: Access not authorised\n") {
			t.Errorf("%s: %v: %+v", other.Name, args, r)
		}
	}
	if out := h.schrootOK("-r", "-c", id, "-u", nobody.Name, "--", "id", "-u"); out != "65534\n" {
		t.Errorf("root as the owner: %q", out)
	}
	h.schrootOK("-e", "-c", id) // root may end anyone's session
}

// TestSchrootLoginShell: with no command, schroot opens the user's login
// shell in the chroot (argv[0] starting with '-'), which reads its
// commands from stdin here, and its exit status is schroot's.
func TestSchrootLoginShell(t *testing.T) {
	h := newE2E(t)
	r := h.run([]byte("echo \"shell=$0 home=$HOME\"; exit 7\n"), nil, "-c", "e2e")
	if r.code != 7 || !regexp.MustCompile(`^shell=-\S*sh home=/root\n$`).MatchString(r.stdout) {
		t.Errorf("schroot -c e2e with no command: %+v; want a login shell's output and exit 7", r)
	}
	if states, _ := session.List(h.runDir); len(states) != 0 {
		t.Errorf("the login shell's session was left open: %d sessions", len(states))
	}
}

// TestSchrootKilledMidRun kills, mid-run, first the schroot process that
// runs a command, then the command's own processes, and ends the session:
// no mount, cgroup or state of it is left.
func TestSchrootKilledMidRun(t *testing.T) {
	h := newE2E(t)
	id := strings.TrimSpace(h.schrootOK("-b", "-c", "e2e", "-n", "e2e-killed"))
	st, err := session.Get(h.runDir, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, victim := range []string{"client", "command"} {
		cmd := h.cmd(nil, "-r", "-c", id, "--", "sh", "-c", "echo started; exec sleep 300")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		if n, _ := out.Read(buf); string(buf[:n]) != "started\n" {
			t.Fatalf("%s: the command did not start: %q", victim, buf[:n])
		}
		if victim == "client" {
			cmd.Process.Kill()
		} else {
			// The session's own processes, seen from the host: the
			// children of its init, whichever of its threads started them.
			files, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(st.InitPid), "task", "*", "children"))
			killed := 0
			for _, f := range files {
				procs, _ := os.ReadFile(f)
				for _, p := range strings.Fields(string(procs)) {
					pid, _ := strconv.Atoi(p)
					if syscall.Kill(pid, syscall.SIGKILL) == nil {
						killed++
					}
				}
			}
			if killed == 0 {
				t.Fatal("found no process of the session to kill")
			}
		}
		cmd.Wait()
	}
	h.schrootOK("-e", "-c", id)
	if n := mountsBelow(h.runDir); n != 0 {
		t.Errorf("%d mounts left below the run dir", n)
	}
	if _, err := os.Stat(st.Dir); !os.IsNotExist(err) {
		t.Errorf("the session's state folder %s is left: %v", st.Dir, err)
	}
	left, _ := filepath.Glob("/sys/fs/cgroup/*/" + st.Cgroup)
	if _, err := os.Stat("/sys/fs/cgroup/" + st.Cgroup); err == nil {
		left = append(left, "/sys/fs/cgroup/"+st.Cgroup)
	}
	if len(left) > 0 {
		t.Errorf("the session's cgroups are left: %v", left)
	}
	if st.Cgroup == "" {
		t.Error("the session's state names no cgroup: the check above proves nothing")
	}
}
