package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestLayoutReal(t *testing.T) {
	p := realPlan(t)
	s, err := Layout()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, p.kind+": ") || !slices.Contains([]string{"v1", "v2", "hybrid"}, p.kind) {
		t.Errorf("Layout() = %q, kind %q", s, p.kind)
	}
	t.Log(s)
}

func TestPidsLimit(t *testing.T) {
	p := realPlan(t)
	needController(t, p, "pids")
	g := newGroup(t, p, testName(t), Limits{Pids: 20})
	if got := readFile(t, g, "pids", "pids.max"); got != "20" {
		t.Fatalf("pids.max = %q, want 20", got)
	}

	// One task for the shell, so 19 sleeps fit; the 20th fork fails, and
	// dash exits on a failed fork. "done" means no fork ever failed.
	script := `read go; i=0; while [ $i -lt 100 ]; do sleep 1000 </dev/null >/dev/null 2>&1 & i=$((i+1)); echo $i; done; echo done`
	var out, errOut bytes.Buffer
	cmd := exec.Command(shell(t), "-c", script)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	c := startInGroup(t, g, cmd)
	c.release(t)
	err := c.wait()
	lines := strings.Fields(out.String())
	t.Logf("shell: %v, %d forks, stderr %q", err, len(lines), errOut.String())
	if slices.Contains(lines, "done") {
		t.Fatalf("all 100 forks succeeded under pids.max=20")
	}
	forked := len(lines)
	if forked < 10 || forked > 19 {
		t.Errorf("%d forks succeeded, want 10 to 19 under pids.max=20", forked)
	}

	u, err := g.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Pids > 20 || u.Pids < forked {
		t.Errorf("Usage().Pids = %d, want %d..20", u.Pids, forked)
	}
	pids, err := g.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > 20 || len(pids) < forked {
		t.Errorf("Procs() has %d processes, want %d..20", len(pids), forked)
	}
	assertEmptyAndRemoved(t, g)
}

func TestMemoryLimit(t *testing.T) {
	p := realPlan(t)
	needController(t, p, "memory")
	g := newGroup(t, p, testName(t), Limits{Memory: 64 << 20})
	d := g.ctl["memory"]
	limitFile, eventsFile, swapFile := "memory.limit_in_bytes", "memory.oom_control", "memory.memsw.limit_in_bytes"
	if d.v2 {
		limitFile, eventsFile, swapFile = "memory.max", "memory.events", "memory.swap.max"
	}
	if got := readFile(t, g, "memory", limitFile); got != "67108864" {
		t.Fatalf("%s = %q, want 67108864", limitFile, got)
	}
	if _, err := os.Stat(filepath.Join(d.path, swapFile)); err == nil {
		want := "67108864"
		if d.v2 {
			want = "0"
		}
		if got := readFile(t, g, "memory", swapFile); got != want {
			t.Errorf("%s = %q, want %s", swapFile, got, want)
		}
	} else {
		t.Logf("no %s: the kernel does not account swap", swapFile)
	}

	var out bytes.Buffer
	cmd := selfChild(t, "alloc")
	cmd.Stdout, cmd.Stderr = &out, &out
	c := startInGroup(t, g, cmd)
	c.release(t)
	err := c.wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child touching 256 MiB under a 64 MiB limit: %v, want killed; output %q", err, out.String())
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want SIGKILL; output %q", ws, out.String())
	}
	kills, err := parseKeyed([]byte(readFile(t, g, "memory", eventsFile)), eventsFile, "oom_kill")
	if err != nil {
		t.Fatal(err)
	}
	if kills < 1 {
		t.Errorf("%s oom_kill = %d, want the group's own OOM killer to have fired", eventsFile, kills)
	}
	assertEmptyAndRemoved(t, g)
}

func TestCPULimit(t *testing.T) {
	p := realPlan(t)
	needController(t, p, "cpu")
	if !p.has("cpuacct") && p.unified == nil {
		t.Skip("no CPU time accounting here (no cpuacct, no cgroup2)")
	}
	g := newGroup(t, p, testName(t), Limits{CPUs: 0.5})
	if d := g.ctl["cpu"]; d.v2 {
		if got := readFile(t, g, "cpu", "cpu.max"); got != "50000 100000" {
			t.Fatalf("cpu.max = %q, want 50000 100000", got)
		}
	} else if q, per := readFile(t, g, "cpu", "cpu.cfs_quota_us"), readFile(t, g, "cpu", "cpu.cfs_period_us"); q != "50000" || per != "100000" {
		t.Fatalf("cfs quota %s period %s, want 50000 100000", q, per)
	}

	c := startInGroup(t, g, selfChild(t, "spin"))
	before, err := g.Usage()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.release(t)
	if err := c.wait(); err != nil {
		t.Fatalf("spinning child: %v", err)
	}
	wall := time.Since(start)
	after, err := g.Usage()
	if err != nil {
		t.Fatal(err)
	}
	share := float64(after.CPUTime-before.CPUTime) / float64(wall)
	t.Logf("%v of CPU in %v: %.0f%% of a core", after.CPUTime-before.CPUTime, wall, 100*share)
	// The quota is a ceiling: above it the limit failed. Below it, other
	// tests running at once on a small machine can take the rest, so the
	// floor only checks that the child ran at all.
	if share < 0.10 || share > 0.65 {
		t.Errorf("busy child got %.0f%% of a core under CPUs=0.5, want at most 65%% (and at least 10%%)", 100*share)
	}
	assertEmptyAndRemoved(t, g)
}

// treeScript starts a shell with background sleeps, a subshell with its
// own, and a second shell with its own: 9 processes over three levels.
const treeScript = `read go; sleep 1000 & sleep 1000 & (sleep 1000 & sleep 1000 & wait) & sh -c 'sleep 1000 & sleep 1000 & wait' & wait`

func TestKillTree(t *testing.T) {
	p := realPlan(t)
	for _, tt := range []struct {
		name     string
		killFile bool
	}{{"killfile", true}, {"freeze", false}} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGroup(t, p, testName(t), Limits{})
			c := startInGroup(t, g, exec.Command(shell(t), "-c", treeScript))
			c.release(t)
			pids := waitProcs(t, g, 9)
			if err := g.kill(tt.killFile, killTimeout); err != nil {
				t.Fatal(err)
			}
			if left, err := g.Procs(); err != nil || len(left) != 0 {
				t.Fatalf("after kill, processes %v (err %v), want none", left, err)
			}
			for _, pid := range pids {
				if !gone(pid) {
					t.Errorf("process %d of the tree still runs", pid)
				}
			}
			err := c.wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Errorf("shell ended with %v, want SIGKILL", err)
			}
			assertEmptyAndRemoved(t, g)
		})
	}
}

func TestListAndOpen(t *testing.T) {
	p := realPlan(t)
	keep := newGroup(t, p, testName(t)+"-keep", Limits{})
	removed := newGroup(t, p, testName(t)+"-removed", Limits{})
	if err := removed.Remove(); err != nil {
		t.Fatal(err)
	}
	names, err := List(testPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, keep.Name()) || slices.Contains(names, removed.Name()) {
		t.Errorf("List(%q) = %v, want %s and not %s", testPrefix, names, keep.Name(), removed.Name())
	}
	if names, err := List(testPrefix + "/nothing-here"); err != nil || len(names) != 0 {
		t.Errorf("List of a missing prefix = %v, %v; want nothing", names, err)
	}
	if _, err := List("../etc"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("List(../etc): %v, want ErrInvalidName", err)
	}

	g, err := Open(keep.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.dirs, keep.dirs) {
		t.Errorf("Open found %v, Create made %v", g.dirs, keep.dirs)
	}
	for c, d := range keep.ctl {
		if g.ctl[c] != d {
			t.Errorf("Open: %s served by %+v, Create made %+v", c, g.ctl[c], d)
		}
	}
	if _, err := Open(removed.Name()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a removed group: %v, want ErrNotFound", err)
	}
	if _, err := create(p, keep.Name(), Limits{}); !errors.Is(err, ErrExists) {
		t.Errorf("second Create of %s: %v, want ErrExists", keep.Name(), err)
	}
	if err := keep.Add(0); !errors.Is(err, ErrInvalidPID) {
		t.Errorf("Add(0): %v, want ErrInvalidPID", err)
	}
}

func TestCreateRefuses(t *testing.T) {
	p := realPlan(t)
	for _, name := range []string{"../escape", "/sys/fs/cgroup/x", testPrefix + "/../../x"} {
		if _, err := Create(name, Limits{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q): %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := Create(testName(t), Limits{Memory: -5}); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("Create with memory -5: %v, want ErrInvalidLimit", err)
	}
	for _, base := range p.bases() {
		if _, err := os.Stat(filepath.Join(base, testName(t))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("refused Create left %s: %v", filepath.Join(base, testName(t)), err)
		}
	}
}

// TestCreateRollback makes the group exist in one hierarchy beforehand, so
// Create fails after it has made directories in the others; those must go.
func TestCreateRollback(t *testing.T) {
	p := realPlan(t)
	bases := p.bases()
	if len(bases) < 2 {
		t.Skipf("one hierarchy only (%s): no partial Create to undo", p.describe())
	}
	name := testName(t)
	pre := filepath.Join(bases[len(bases)-1], name)
	if err := os.MkdirAll(pre, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Rmdir(pre); err != nil {
			t.Errorf("cleanup: rmdir %s: %v", pre, err)
		}
	})
	if _, err := create(p, name, Limits{}); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over an existing %s: %v, want ErrExists", pre, err)
	}
	for _, base := range bases[:len(bases)-1] {
		if _, err := os.Stat(filepath.Join(base, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("failed Create left %s: %v", filepath.Join(base, name), err)
		}
	}
	if _, err := os.Stat(pre); err != nil {
		t.Errorf("failed Create removed %s, which it did not make: %v", pre, err)
	}
}

// TestUnifiedOnly runs a group on the cgroup2 hierarchy alone, as on a
// v2-only machine, whatever controllers it offers: cgroup.procs,
// process listing, cpu.stat, cgroup.kill and cgroup.freeze.
func TestUnifiedOnly(t *testing.T) {
	p := realPlan(t)
	if p.unified == nil {
		t.Skipf("no cgroup2 hierarchy mounted (%s)", p.describe())
	}
	only := &plan{kind: "v2", unified: p.unified, avail: p.avail, v2: p.v2, v1ctl: map[string]*hierarchy{}}

	if !only.has("pids") {
		refused := testName(t) + "-refused"
		if _, err := create(only, refused, Limits{Pids: 5}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("pids limit without a pids controller: %v, want ErrUnsupported", err)
		}
		if _, err := os.Stat(filepath.Join(p.unified.mount, refused)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("refused Create left its directory: %v", err)
		}
	}

	name := testName(t)
	g := newGroup(t, only, name, Limits{})
	want := filepath.Join(p.unified.mount, name)
	if g.unified != want || !slices.Equal(g.dirs, []string{want}) {
		t.Fatalf("group in %v (unified %q), want only %s", g.dirs, g.unified, want)
	}
	for _, file := range []string{"cgroup.kill", "cgroup.freeze"} {
		if _, err := os.Stat(filepath.Join(want, file)); err != nil {
			t.Logf("no %s (kernel too old?): Kill falls back", file)
		}
	}
	for _, tt := range []struct {
		name     string
		killFile bool
	}{{"killfile", true}, {"freeze", false}} {
		t.Run(tt.name, func(t *testing.T) {
			c := startInGroup(t, g, exec.Command(shell(t), "-c", `read go; sleep 1000 & sleep 1000 & wait`))
			c.release(t)
			pids := waitProcs(t, g, 3)
			for _, pid := range pids {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
				if err != nil {
					t.Fatal(err)
				}
				// The path is relative to the cgroup namespace's root, which
				// may sit above the mount's root: compare the tail.
				in := false
				for _, line := range strings.Split(string(b), "\n") {
					in = in || strings.HasPrefix(line, "0::/") && strings.HasSuffix(line, "/"+name)
				}
				if !in {
					t.Errorf("process %d is not in the v2 group: %q", pid, b)
				}
			}
			u, err := g.Usage()
			if err != nil {
				t.Fatal(err)
			}
			if u.Pids != len(pids) {
				t.Errorf("Usage().Pids = %d, want %d", u.Pids, len(pids))
			}
			if err := g.kill(tt.killFile, killTimeout); err != nil {
				t.Fatal(err)
			}
			for _, pid := range pids {
				if !gone(pid) {
					t.Errorf("process %d still runs", pid)
				}
			}
			if left, err := g.Procs(); err != nil || len(left) != 0 {
				t.Errorf("after kill, processes %v (err %v), want none", left, err)
			}
		})
	}
	u, err := g.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if u.CPUTime <= 0 {
		t.Errorf("Usage().CPUTime = %v after two shells ran, want > 0 from cpu.stat", u.CPUTime)
	}
	if u.Pids != 0 {
		t.Errorf("Usage().Pids = %d on an empty group, want 0", u.Pids)
	}
	assertEmptyAndRemoved(t, g)
}

// TestEnableV2 hands a controller down a new v2 path the way Create does
// for memory, cpu and pids, with a controller the unified root offers here
// (on a hybrid machine often only hugetlb, which groups do not use). A
// controller the root did not enable yet is disabled again at the end.
func TestEnableV2(t *testing.T) {
	p := realPlan(t)
	if p.unified == nil || len(p.avail) == 0 {
		t.Skipf("the unified hierarchy offers no controller here (%s)", p.describe())
	}
	root := p.unified.mount
	b, err := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
	if err != nil {
		t.Fatal(err)
	}
	enabled := strings.Fields(string(b))
	c := p.avail[0]
	for _, a := range p.avail {
		if slices.Contains(enabled, a) {
			c = a
			break
		}
	}
	name := testName(t) + "/child"
	_, made, err := makeDir(root, name)
	t.Cleanup(func() {
		if err := rollback(made); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if slices.Contains(enabled, c) {
			return
		}
		// Children must give a controller up before their parent can.
		for _, dir := range []string{filepath.Join(root, testPrefix), root} {
			err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "-"+c)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case errors.Is(err, unix.EBUSY):
				t.Logf("cleanup: %v (another run uses it)", err)
				return
			case err != nil:
				t.Errorf("cleanup: %v", err)
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := enableV2(root, name, []string{c}); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(filepath.Join(root, name, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(b)), c) {
		t.Errorf("%s/cgroup.controllers = %q, want %s handed down", name, b, c)
	}
	if err := enableV2(root, name, []string{"no-such-controller"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("enabling a controller nobody offers: %v, want ErrUnsupported", err)
	}
}
