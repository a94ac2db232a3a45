// Helpers for the tests that run as root on the real hierarchies: the
// re-executed children, and groups and processes that clean up after
// themselves.

package cgroup

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv makes the test binary act as a child process for the real
// tests instead of running tests.
const childEnv = "JAILMGR_CGROUP_TEST_CHILD"

// testPrefix holds every group the tests make, each named after runID so
// that concurrent runs do not meet.
const testPrefix = "jailmgr-test"

var runID string

func TestMain(m *testing.M) {
	switch mode := os.Getenv(childEnv); mode {
	case "":
	case "alloc":
		os.Exit(childAlloc())
	case "spin":
		os.Exit(childSpin())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, mode)
		os.Exit(2)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	runID = hex.EncodeToString(b[:])
	code := m.Run()
	if os.Geteuid() == 0 {
		if err := removeTestParents(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// removeTestParents removes the shared testPrefix group unless another
// run still has groups in it.
func removeTestParents() error {
	p, err := detect()
	if err != nil {
		return nil // no hierarchy, nothing made
	}
	for _, base := range p.bases() {
		err := unix.Rmdir(filepath.Join(base, testPrefix))
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
			return fmt.Errorf("remove %s: %w", filepath.Join(base, testPrefix), err)
		}
	}
	return nil
}

// waitGo blocks a child until the test has moved it into its group.
func waitGo() {
	var b [1]byte
	os.Stdin.Read(b[:])
}

// childAlloc touches 256 MiB, page by page, so the memory is really used.
func childAlloc() int {
	waitGo()
	buf := make([]byte, 256<<20)
	sum := 0
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = byte(i)
		sum += int(buf[i])
	}
	fmt.Println("allocated", len(buf), sum)
	return 0
}

// childSpin keeps one core busy for two seconds of wall time.
func childSpin() int {
	waitGo()
	n := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		n++
	}
	fmt.Println(n)
	return 0
}

// realPlan returns this machine's layout, or skips a test that needs one.
func realPlan(t *testing.T) *plan {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creating cgroups and moving processes into them is privileged (CI runs as root)")
	}
	p, err := detect()
	if errors.Is(err, ErrNoCgroups) {
		t.Skip("no cgroup hierarchy is mounted here")
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func needController(t *testing.T, p *plan, c string) {
	t.Helper()
	if !p.has(c) {
		t.Skipf("no %s controller in any hierarchy here (%s)", c, p.describe())
	}
}

func testName(t *testing.T) string {
	return testPrefix + "/" + runID + "-" + strings.ReplaceAll(t.Name(), "/", "-")
}

// newGroup creates a group for the test, killed and removed at its end.
func newGroup(t *testing.T, p *plan, name string, l Limits) *Group {
	t.Helper()
	g, err := create(p, name, l)
	if err != nil {
		t.Fatalf("create %s with %+v: %v", name, l, err)
	}
	t.Cleanup(func() {
		if err := g.Kill(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := g.Remove(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return g
}

// child is a process started blocked on its stdin, moved into a group,
// then let go: nothing it forks can be born outside the group.
type child struct {
	cmd  *exec.Cmd
	gate io.WriteCloser
	once sync.Once
	err  error
}

func startInGroup(t *testing.T, g *Group, cmd *exec.Cmd) *child {
	t.Helper()
	gate, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Background children may hold stdout and stderr open after the child
	// exits; Wait must not block on them.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, gate: gate}
	t.Cleanup(func() {
		cmd.Process.Kill()
		c.wait()
	})
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *child) release(t *testing.T) {
	t.Helper()
	if _, err := c.gate.Write([]byte("go\n")); err != nil {
		t.Fatalf("release child: %v", err)
	}
	c.gate.Close()
}

func (c *child) wait() error {
	c.once.Do(func() { c.err = c.cmd.Wait() })
	return c.err
}

func selfChild(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	return cmd
}

// shell prefers dash: on a failed fork it gives up at once, where bash
// retries with back-off for seconds.
func shell(t *testing.T) string {
	if sh, err := exec.LookPath("dash"); err == nil {
		return sh
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		return sh
	}
	t.Skip("no shell to start process trees with")
	return ""
}

// readFile reads a cgroup file of the group's controller c.
func readFile(t *testing.T, g *Group, c, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.ctl[c].path, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// waitProcs waits until the group holds at least n processes.
func waitProcs(t *testing.T, g *Group, n int) []int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := g.Procs()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s has %d processes %v after 5s, want %d", g.Name(), len(pids), pids, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gone reports whether pid has exited (a zombie waiting for its parent
// counts as gone: it runs nothing and holds nothing).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

func assertEmptyAndRemoved(t *testing.T, g *Group) {
	t.Helper()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if pids, err := g.Procs(); err != nil || len(pids) != 0 {
		t.Fatalf("after Kill, processes %v (err %v), want none", pids, err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range g.dirs {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Remove, stat %s: %v, want not exist", dir, err)
		}
	}
	if err := g.Remove(); err != nil {
		t.Errorf("second Remove: %v, want nil for a missing group", err)
	}
}
