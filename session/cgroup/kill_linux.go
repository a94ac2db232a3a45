package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// killTimeout bounds Kill. Tasks that do not die within it are stuck in
// the kernel (uninterruptible sleep on a dead NFS server, say); waiting
// longer would not help, and the caller needs to report them.
const killTimeout = 10 * time.Second

// Kill sends SIGKILL to every process in the group and waits until the
// group is empty, for at most a few seconds; survivors are a *KillError.
// A group holding the calling process is refused.
//
// Where the unified hierarchy has cgroup.kill (Linux 5.14), one write
// kills everything. Otherwise, and for any process cgroup.kill missed, the
// group is frozen (v1 freezer, or v2 cgroup.freeze), each listed process
// is sent SIGKILL, and the group is thawed, until it is empty.
func (g *Group) Kill() error { return g.kill(true, killTimeout) }

// kill is Kill with the cgroup.kill fast path optional, so tests reach the
// freezer path on kernels that have both.
func (g *Group) kill(useKillFile bool, timeout time.Duration) error {
	start := time.Now()
	pids, err := g.Procs()
	if err != nil {
		return fmt.Errorf("kill group %s: %w", g.name, err)
	}
	if len(pids) == 0 {
		return nil
	}
	if slices.Contains(pids, os.Getpid()) {
		return fmt.Errorf("kill group %s: %w", g.name, ErrContainsSelf)
	}
	if useKillFile && g.unified != "" {
		path := filepath.Join(g.unified, "cgroup.kill")
		if _, err := os.Stat(path); err == nil {
			// The kernel signals every task of the group and its
			// descendants and fails forks that race with it, so one write
			// leaves nothing to chase; dying still takes a moment.
			if err := writeFile(path, "1"); err != nil {
				return fmt.Errorf("kill group %s: %w", g.name, err)
			}
			empty, err := g.waitEmpty(min(time.Second, timeout))
			if err != nil || empty {
				return err
			}
		}
	}
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		pids, err := g.Procs()
		if err != nil {
			return fmt.Errorf("kill group %s: %w", g.name, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if slices.Contains(pids, os.Getpid()) {
			return fmt.Errorf("kill group %s: %w", g.name, ErrContainsSelf)
		}
		if time.Since(start) > timeout {
			return &KillError{Group: g.name, Pids: pids, After: timeout}
		}
		if err := g.signalFrozen(); err != nil {
			return fmt.Errorf("kill group %s: %w", g.name, err)
		}
		time.Sleep(delay)
	}
}

// waitEmpty polls until the group has no process, or for timeout.
func (g *Group) waitEmpty(timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	// A killed session empties in a few milliseconds; polling starts fine
	// so as not to oversleep that by much.
	for delay := 250 * time.Microsecond; ; delay = min(2*delay, 50*time.Millisecond) {
		pids, err := g.Procs()
		if err != nil {
			return false, fmt.Errorf("kill group %s: %w", g.name, err)
		}
		if len(pids) == 0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(delay)
	}
}

// signalFrozen sends SIGKILL to every process of the frozen group.
//
// Without freezing, a process could fork between our reading cgroup.procs
// and its death, and a fork loop could outrun us forever. Frozen, the set
// cannot grow, and its pids cannot be reused: a frozen task cannot exit,
// so it is not reaped. A task frozen by the v1 freezer does not act on
// SIGKILL until thawed; the signal stays pending and the thaw lets it die.
// v2's cgroup.freeze lets fatal signals through at once.
func (g *Group) signalFrozen() (err error) {
	thaw, err := g.freeze()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, thaw()) }()
	pids, err := g.Procs()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if pid == os.Getpid() {
			return ErrContainsSelf
		}
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("kill process %d: %w", pid, err)
		}
	}
	return nil
}

// freezeWait bounds the wait for a freeze to complete. A task in
// uninterruptible sleep delays it indefinitely (v1 stays FREEZING); the
// signals go out anyway and reach every task that is already stopped.
const freezeWait = 200 * time.Millisecond

// freeze stops every task in the group and returns how to thaw it. With
// no freezer at all it does nothing: Kill then only loops.
func (g *Group) freeze() (thaw func() error, err error) {
	if d, ok := g.ctl["freezer"]; ok {
		state := filepath.Join(d.path, "freezer.state")
		if err := writeFile(state, "FROZEN"); err != nil {
			return nil, err
		}
		thaw := func() error { return writeFile(state, "THAWED") }
		if err := waitFor(state, "FROZEN"); err != nil {
			return nil, errors.Join(err, thaw())
		}
		return thaw, nil
	}
	if g.unified != "" {
		path := filepath.Join(g.unified, "cgroup.freeze")
		if _, err := os.Stat(path); err == nil {
			if err := writeFile(path, "1"); err != nil {
				return nil, err
			}
			thaw := func() error { return writeFile(path, "0") }
			if err := waitForEvent(filepath.Join(g.unified, "cgroup.events"), "frozen"); err != nil {
				return nil, errors.Join(err, thaw())
			}
			return thaw, nil
		}
	}
	return func() error { return nil }, nil
}

// waitFor polls a v1 freezer.state until it reads want, for freezeWait.
func waitFor(path, want string) error {
	deadline := time.Now().Add(freezeWait)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read freezer state: %w", err)
		}
		if strings.TrimSpace(string(b)) == want || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}

// waitForEvent polls a v2 cgroup.events until key is 1, for freezeWait.
func waitForEvent(path, key string) error {
	deadline := time.Now().Add(freezeWait)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read cgroup events: %w", err)
		}
		v, err := parseKeyed(b, path, key)
		if err != nil {
			return err
		}
		if v == 1 || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}
