package session

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNothingReachableWhileTheInitSetsUp: the init's setup goes by path
// (guards over /proc, read-only binds, /dev), so the owner must not reach
// the session's tree before it is done. With the host's view and its ACL
// made before "go", the owner could rename /proc away from under the
// guards and be root over an unguarded /proc (core_pattern: host root).
func TestNothingReachableWhileTheInitSetsUp(t *testing.T) {
	jailRoot(t)
	nobody, err := LookupUser(65534, 65534)
	if err != nil {
		t.Skip("no user 65534 on this host")
	}
	spec, _ := userJail(t, "setupwin", nobody)
	var during error
	testHookBeforeRelease = func(st *State) {
		if out, err := runAs(65534, 65534, "/bin/ls", st.Root+"/"); err == nil {
			during = errors.New("the owner listed the session's root before the init set it up: " + strings.TrimSpace(out))
		}
	}
	defer func() { testHookBeforeRelease = nil }()
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(spec.RunDir, st.ID)
	if during != nil {
		t.Error(during)
	}
	// Once it is set up, the owner gets through.
	if out, err := runAs(65534, 65534, "/bin/ls", st.Root+"/"); err != nil {
		t.Errorf("the owner cannot list the session's root once it is up: %v: %s", err, out)
	}
}

// TestNameReusedByAnotherSession: a caller checks a session it owns, then
// acts on it; meanwhile that session ends and another user's session takes
// its name. Acting on the state it checked must not reach the new one:
// End leaves it alone, Run refuses to talk to its init.
func TestNameReusedByAnotherSession(t *testing.T) {
	spec, _ := testJail(t, "reuse")
	spec.Name = "reused-name"
	old, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := End(spec.RunDir, old.ID); err != nil {
		t.Fatal(err)
	}
	victim, err := Begin(spec)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(spec.RunDir, spec.Name, "init.log"))
		t.Fatalf("%v: %s", err, log)
	}
	defer End(spec.RunDir, victim.ID)
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	if _, err := Run(old, RunOptions{Argv: []string{"/bin/true"}, Stdin: devnull, Stdout: devnull, Stderr: devnull}); !errors.Is(err, ErrSessionGone) {
		t.Errorf("run through a stale state reached the new session: %v", err)
	}
	if err := EndState(old); err != nil {
		t.Errorf("end of a stale state: %v", err)
	}
	if !victim.Alive() {
		t.Fatal("ending a stale state killed the session that took its name")
	}
	if _, err := os.Stat(filepath.Join(victim.Dir, "state.json")); err != nil {
		t.Errorf("ending a stale state removed the new session's state: %v", err)
	}
	if out, code := runIn(t, victim, false, nil, "/bin/true"); code != 0 {
		t.Errorf("the new session no longer runs commands: %d %s", code, out)
	}
}

// TestUpperThatExistsIsLeftAlone: a session's upper folder in a jail's
// overlay-dir is named after the session, which a user may choose; a
// folder already there is not the session's, and neither its mode nor its
// contents are touched, even when the begin fails.
func TestUpperThatExistsIsLeftAlone(t *testing.T) {
	spec, _ := testJail(t, "upperexists")
	spec.Jail.OverlayDir = t.TempDir()
	spec.Name = "chosen"
	victim := filepath.Join(spec.Jail.OverlayDir, "chosen")
	os.Mkdir(victim, 0o755)
	os.WriteFile(filepath.Join(victim, "precious"), []byte("x"), 0o644)
	if st, err := Begin(spec); err == nil {
		End(spec.RunDir, st.ID)
		t.Fatal("a session began over a folder that was already there")
	}
	fi, err := os.Stat(victim)
	if err != nil {
		t.Fatalf("the folder that was there is gone: %v", err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("its mode changed to %v", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(victim, "precious")); err != nil {
		t.Errorf("its contents are gone: %v", err)
	}
}

// TestSelfIsRunByDescriptor: jailmgr runs itself again (the session init,
// the monitor, the chroot helper) as /proc/self/exe, the file it runs, and
// never by its path, which a user who hard-linked the setuid binary into a
// folder of theirs can point at another program while it runs.
func TestSelfIsRunByDescriptor(t *testing.T) {
	p, err := initProgram()
	if err != nil {
		t.Fatal(err)
	}
	if p != selfExe {
		t.Errorf("initProgram() = %q; without a jailmgr-init beside it, want %q", p, selfExe)
	}
	cmd, err := Chroot("/", "/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Path != selfExe {
		t.Errorf("Chroot runs %q, want %q", cmd.Path, selfExe)
	}
}

// TestLateMonitorLeavesANewSessionAlone: a monitor that starts late (a
// loaded machine) may find its session ended and another begun under its
// name, before that one has an init; it used to take that state for its
// own and tear the new session down mid-begin (TestNameReusedByAnotherSession
// failed so under load). It watches only the instance it was started for.
func TestLateMonitorLeavesANewSessionAlone(t *testing.T) {
	spec, _ := testJail(t, "latemonitor")
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(spec.RunDir, st.ID)
	// An earlier session's monitor, started only now: it returns at once
	// (one that took the state for its own would watch this init).
	done := make(chan int, 1)
	go func() { done <- runMonitor(st.Dir, "an-earlier-instance") }()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("runMonitor = %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a monitor of another instance watches this session")
	}
	if !st.Alive() {
		t.Fatal("a monitor of another instance killed the session")
	}
	if out, code := runIn(t, st, false, nil, "/bin/true"); code != 0 {
		t.Errorf("the session no longer runs commands: %d %s", code, out)
	}
}
