package session

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/session/cgroup"
)

func TestForkBombStopsAtPids(t *testing.T) {
	spec, runDir := testJail(t, "pids")
	spec.Jail.Pids = 40
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	out, _ := runIn(t, st, false, nil, "/bin/sh", "-c", "for i in $(seq 200); do sleep 30 >/dev/null 2>&1 & done; echo all 200 started")
	g, err := cgroup.Open(st.Cgroup)
	if err != nil {
		t.Fatal(err)
	}
	procs, _ := g.Procs()
	// The limit counts tasks: the init's threads take their share, more
	// of them on a busy machine, so processes alone say little of how
	// far the bomb got.
	u, err := g.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) > 40 || u.Pids > 40 || u.Pids < 35 {
		t.Errorf("session holds %d processes, %d tasks; want the bomb stopped at its pids limit of 40", len(procs), u.Pids)
	}
	if strings.Contains(out, "all 200 started") {
		t.Errorf("all 200 forks succeeded under a pids limit of 40")
	}
	t.Logf("%d processes, %d tasks after the bomb; the shell said %q", len(procs), u.Pids, out)
	// A kill of the whole cgroup takes the init too. Its exit is seen on
	// a pidfd (a zombie has exited, however long its parent, this test,
	// takes to reap it), opened while it surely is this session's init.
	initFD, err := unix.PidfdOpen(st.InitPid, 0)
	if err != nil || !st.Alive() {
		t.Fatalf("the session's init is gone before the kill: %v", err)
	}
	defer unix.Close(initFD)
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	fds := []unix.PollFd{{Fd: int32(initFD), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int((30 * time.Second).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			t.Errorf("the init survived a kill of the whole cgroup: %v", err)
		}
		break
	}
}

func TestMemoryHogKilledInsideItsSession(t *testing.T) {
	spec, runDir := testJail(t, "mem")
	spec.Jail.Memory = 64 << 20
	hog, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, hog.ID)
	spec2, runDir2 := testJail(t, "other")
	other, err := Begin(spec2)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir2, other.ID)
	out, code := runIn(t, hog, false, []string{probeEnv + "=memhog"}, "/probe")
	if code != 128+9 {
		t.Errorf("memory hog exited %d (%q), want 137: killed by SIGKILL", code, out)
	}
	// Both the hog's session and the other one go on.
	if out, code := runIn(t, hog, false, nil, "/bin/echo", "alive"); code != 0 || out != "alive\n" {
		t.Errorf("the hog's session after the OOM kill: %d %q", code, out)
	}
	if out, code := runIn(t, other, false, nil, "/bin/echo", "alive"); code != 0 || out != "alive\n" {
		t.Errorf("the other session: %d %q", code, out)
	}
}

func TestCPUShare(t *testing.T) {
	spec, runDir := testJail(t, "cpu")
	spec.Jail.CPUs = 0.5
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	g, err := cgroup.Open(st.Cgroup)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := g.Usage()
	start := time.Now()
	if _, code := runIn(t, st, false, []string{probeEnv + "=spin"}, "/probe"); code != 0 {
		t.Fatalf("spin exited %d", code)
	}
	after, _ := g.Usage()
	share := float64(after.CPUTime-before.CPUTime) / float64(time.Since(start))
	t.Logf("%.0f%% of a core under cpus = 0.5", 100*share)
	// The quota is a ceiling; other tests may take the rest on 2 cores.
	if share > 0.65 || share < 0.10 {
		t.Errorf("a spinning command got %.0f%% of a core under cpus = 0.5, want at most 65%%", 100*share)
	}
}
