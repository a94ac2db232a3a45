package session

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"jailmgr/conf"
	"jailmgr/session/cgroup"
	"jailmgr/session/sessiontest"
)

func TestMain(m *testing.M) {
	MaybeRunInternal()
	if os.Getenv(probeEnv) != "" {
		os.Exit(runProbes())
	}
	code := m.Run()
	if testRoot != "" {
		os.RemoveAll(filepath.Dir(testRoot))
	}
	os.Exit(code)
}

var (
	rootOnce sync.Once
	testRoot string
	rootErr  error
)

// jailRoot builds, once, a small root from the host's own packages (dash,
// coreutils, libc...), plus this test binary as /probe.
func jailRoot(t *testing.T) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("sessions need root (namespaces, mounts, cgroups); CI runs as root")
	}
	rootOnce.Do(func() {
		base, err := os.MkdirTemp("", "jailmgr-session-test-")
		if err != nil {
			rootErr = err
			return
		}
		dir := filepath.Join(base, "root")
		rootErr = sessiontest.MinimalRoot(dir)
		if rootErr == nil {
			self, _ := os.Executable()
			rootErr = copyFile(self, filepath.Join(dir, "probe"), 0o755)
		}
		testRoot = dir
	})
	if rootErr != nil {
		t.Fatalf("cannot build a test root from the host's packages: %v", rootErr)
	}
	return testRoot
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// testJail is a jail over the test root with every isolation on.
func testJail(t *testing.T, name string) (*Spec, string) {
	root := jailRoot(t)
	j := conf.DefaultJail("")
	j.Name, j.Image, j.Directory, j.Type, j.Network = name, "", root, "ephemeral", "none"
	runDir := t.TempDir()
	store := t.TempDir()
	user, err := LookupUser(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &Spec{Jail: j, Lower: root, StoreDir: store, RunDir: runDir, User: user}, runDir
}

// runIn runs a command in a session and returns its output and status.
func runIn(t *testing.T, st *State, root bool, env []string, argv ...string) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { out.ReadFrom(r); close(done) }()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	code, err := Run(st, RunOptions{Argv: argv, Env: append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...), Root: root, Stdin: devnull, Stdout: w, Stderr: w})
	w.Close()
	<-done
	r.Close()
	if err != nil {
		t.Fatalf("run %v: %v", argv, err)
	}
	return out.String(), code
}

// snapshot is what a session may change on the host.
type snapshot struct {
	mounts  int
	cgroups []string
	states  int
}

// takeSnapshot counts what sessions of spec's jail left on the host: the
// mounts at its run folder (where session roots are mounted), the cgroups
// of sessions named after the jail, the state folders. Sessions of other
// tests (go test runs packages at once) do not count.
func takeSnapshot(t *testing.T, spec *Spec) snapshot {
	t.Helper()
	data, _ := os.ReadFile("/proc/self/mountinfo")
	mounts := 0
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], spec.RunDir+"/") {
			mounts++
		}
	}
	all, err := cgroup.List("jailmgr")
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, g := range all {
		if strings.HasPrefix(g, "jailmgr/"+spec.Jail.Name+"-") || (spec.Name != "" && g == "jailmgr/"+spec.Name) {
			groups = append(groups, g)
		}
	}
	ents, _ := os.ReadDir(spec.RunDir)
	return snapshot{mounts: mounts, cgroups: groups, states: len(ents)}
}

func (s snapshot) same(o snapshot) bool {
	return s.mounts == o.mounts && len(s.cgroups) == len(o.cgroups) && s.states == o.states
}

func TestIsolation(t *testing.T) {
	spec, runDir := testJail(t, "iso")
	marker := filepath.Join(t.TempDir(), "host-only-marker")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	checkIsolation(t, st, marker)
}

// checkIsolation runs the escape probes in a session with every isolation
// on; marker is a host file that must stay out of reach.
func checkIsolation(t *testing.T, st *State, marker string) {
	t.Helper()
	hostNS := map[string]string{}
	for _, ns := range []string{"mnt", "pid", "uts", "ipc", "net", "cgroup"} {
		hostNS[ns], _ = os.Readlink("/proc/self/ns/" + ns)
	}
	env := []string{probeEnv + "=1", "MARKER=" + marker, "HOST_PID=" + strconv.Itoa(os.Getpid())}
	for ns, link := range hostNS {
		env = append(env, "HOSTNS_"+ns+"="+link)
	}
	out, code := runIn(t, st, true, env, "/probe")
	if code != 0 {
		t.Fatalf("probe exited %d:\n%s", code, out)
	}
	results := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		results[k] = v
	}
	want := map[string]string{
		"ns.mnt": "new", "ns.pid": "new", "ns.uts": "new", "ns.ipc": "new", "ns.net": "new", "ns.cgroup": "new",
		"processes":         "few",
		"double-chroot":     "contained",
		"proc1-root":        "contained",
		"open_by_handle_at": "EPERM",
		"mount":             "EPERM",
		"unshare-user":      "EPERM",
		"mknod-block":       "EPERM",
		"sysrq-trigger":     "refused",
		"sys-readonly":      "refused",
		"kill-host":         "ESRCH",
		"ptrace-init":       "refused",
		"keyctl":            "EPERM",
		"bpf":               "EPERM",
	}
	for k, v := range want {
		if results[k] != v {
			t.Errorf("%s = %q, want %q", k, results[k], v)
		}
	}
	t.Logf("probe output:\n%s", out)
}

func TestEphemeralWritesDiscarded(t *testing.T) {
	spec, runDir := testJail(t, "eph")
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	if out, code := runIn(t, st, true, nil, "/bin/sh", "-c", "echo written > /etc/jailmgr-write && rm /bin/ls && cat /etc/jailmgr-write"); code != 0 || out != "written\n" {
		t.Fatalf("write inside: %d %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(st.Root, "etc/jailmgr-write")); err != nil {
		t.Errorf("the session's root on the host does not show the write: %v", err)
	}
	if err := End(runDir, st.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(spec.Lower, "etc/jailmgr-write")); err == nil {
		t.Errorf("a write in an ephemeral session reached the image")
	}
	if _, err := os.Stat(filepath.Join(spec.Lower, "bin/ls")); err != nil {
		t.Errorf("a removal in an ephemeral session reached the image: %v", err)
	}
}

func TestManySessionsLeaveNothing(t *testing.T) {
	spec, runDir := testJail(t, "many")
	before := takeSnapshot(t, spec)
	var ids []string
	for i := 0; i < 20; i++ {
		s := *spec
		st, err := Begin(&s)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		ids = append(ids, st.ID)
	}
	states, err := List(runDir)
	if err != nil || len(states) != 20 {
		t.Fatalf("List = %d sessions, %v; want 20", len(states), err)
	}
	for _, st := range states {
		if out, code := runIn(t, st, false, nil, "/bin/sh", "-c", "echo $$; sleep 30 >/dev/null 2>&1 & echo started"); code != 0 || !strings.Contains(out, "started") {
			t.Errorf("run in %s: %d %q", st.ID, code, out)
		}
	}
	for _, id := range ids {
		if err := End(runDir, id); err != nil {
			t.Errorf("end %s: %v", id, err)
		}
	}
	after := takeSnapshot(t, spec)
	if !before.same(after) {
		t.Errorf("host state changed: before %+v, after %+v", before, after)
	}
	if out, _ := exec.Command("pgrep", "-f", "__jailmgr-session-(init|monitor) "+runDir).Output(); len(out) > 0 {
		t.Errorf("processes survive: %s", out)
	}
}

func TestRecoverAfterInitKilled(t *testing.T) {
	spec, runDir := testJail(t, "rec")
	before := takeSnapshot(t, spec)
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	// Kill the monitor first: recover must do its work.
	if out, err := exec.Command("pkill", "-KILL", "-f", monitorArg+" "+st.Dir).CombinedOutput(); err != nil {
		t.Fatalf("kill monitor: %v %s", err, out)
	}
	syscall.Kill(st.InitPid, syscall.SIGKILL)
	for i := 0; i < 100 && st.Alive(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	ids, err := Recover(runDir, nil)
	if err != nil || len(ids) != 1 || ids[0] != st.ID {
		t.Fatalf("Recover = %v, %v; want [%s]", ids, err, st.ID)
	}
	if after := takeSnapshot(t, spec); !before.same(after) {
		t.Errorf("host state changed: before %+v, after %+v", before, after)
	}
}

func TestRecoverLeavesLiveSessions(t *testing.T) {
	spec, runDir := testJail(t, "live")
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	if ids, err := Recover(runDir, nil); err != nil || len(ids) != 0 {
		t.Errorf("Recover = %v, %v; want nothing", ids, err)
	}
	if _, code := runIn(t, st, false, nil, "/bin/true"); code != 0 {
		t.Errorf("session broken after recover")
	}
}

func TestIdleTimeoutEndsSession(t *testing.T) {
	spec, runDir := testJail(t, "idle")
	spec.Jail.IdleTimeout = 500 * time.Millisecond
	before := takeSnapshot(t, spec)
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(st.Dir); os.IsNotExist(err) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(st.Dir); err == nil {
		End(runDir, st.ID)
		t.Fatal("the idle session was not ended by itself")
	}
	if after := takeSnapshot(t, spec); !before.same(after) {
		t.Errorf("host state changed: before %+v, after %+v", before, after)
	}
}

func TestBadInputLeavesNothing(t *testing.T) {
	spec, runDir := testJail(t, "bad")
	before := takeSnapshot(t, spec)
	spec.Jail.Binds = []conf.Bind{{Source: "/nonexistent/source", Target: "/x"}}
	if _, err := Begin(spec); err == nil || !strings.Contains(err.Error(), "/nonexistent/source") {
		t.Errorf("missing bind source: err = %v", err)
	}
	spec.Jail.Binds = nil
	spec.Name = "bad name!"
	if _, err := Begin(spec); err == nil {
		t.Errorf("bad session name accepted")
	}
	if _, err := Get(runDir, "nosuch"); err == nil {
		t.Errorf("unknown session id accepted")
	}
	if after := takeSnapshot(t, spec); !before.same(after) {
		t.Errorf("host state changed: before %+v, after %+v", before, after)
	}
}

func TestCheckAccess(t *testing.T) {
	j := &conf.Jail{Name: "j", Users: []string{"alice"}, Groups: []string{"build"}, RootUsers: []string{"root-alice"}, RootGroups: []string{"admins"}}
	cases := []struct {
		u      User
		asRoot bool
		ok     bool
	}{
		{User{Name: "alice", UID: 1000}, false, true},
		{User{Name: "alice", UID: 1000}, true, false},
		{User{Name: "bob", UID: 1001, GroupNames: []string{"build"}}, false, true},
		{User{Name: "carol", UID: 1002}, false, false},
		{User{Name: "root-alice", UID: 1003}, true, true},
		{User{Name: "dave", UID: 1004, GroupNames: []string{"admins"}}, true, true},
		{User{Name: "root", UID: 0}, true, true},
	}
	for _, c := range cases {
		err := CheckAccess(j, c.u, c.asRoot)
		if (err == nil) != c.ok {
			t.Errorf("CheckAccess(%s, root=%v) = %v, want ok=%v", c.u.Name, c.asRoot, err, c.ok)
		}
	}
}

func TestDoctorOnThisHost(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the checks assume root; CI runs as root")
	}
	for _, c := range Doctor() {
		// CI runs on the kind of host the tests above need: every check passes.
		if !c.OK {
			t.Errorf("doctor: %s failed (%s): %s", c.Name, c.Detail, c.Affects)
		}
	}
}

func TestPersistentDirectoryKeepsWrites(t *testing.T) {
	spec, runDir := testJail(t, "persist")
	// A copy of the test root, so the shared one stays clean.
	dir := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", spec.Lower, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy root: %v %s", err, out)
	}
	spec.Lower, spec.Jail.Directory, spec.Jail.Type = dir, dir, "persistent"
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, code := runIn(t, st, true, nil, "/bin/sh", "-c", "echo kept > /etc/persist-marker"); code != 0 {
		t.Fatalf("write failed: %d", code)
	}
	if err := End(runDir, st.ID); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "etc/persist-marker")); err != nil || string(data) != "kept\n" {
		t.Errorf("a persistent jail lost its write: %q, %v", data, err)
	}
}

func TestMaxLifetimeEndsBusySession(t *testing.T) {
	spec, runDir := testJail(t, "maxlife")
	spec.Jail.MaxLifetime = 700 * time.Millisecond
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	// A command that would outlive the session's lifetime: its client is
	// told the session went away.
	done := make(chan error, 1)
	go func() {
		devnull, _ := os.Open(os.DevNull)
		defer devnull.Close()
		_, err := Run(st, RunOptions{Argv: []string{"/bin/sleep", "30"}, Env: []string{"PATH=/bin"}, Stdin: devnull, Stdout: devnull, Stderr: devnull})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrSessionGone) {
			t.Errorf("the client of a command cut short by the lifetime got %v, want ErrSessionGone", err)
		}
	case <-time.After(10 * time.Second):
		End(runDir, st.ID)
		t.Fatal("the session outlived its maximum lifetime")
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(st.Dir); os.IsNotExist(err) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	End(runDir, st.ID)
	t.Error("the session's state survived the end of its lifetime")
}
