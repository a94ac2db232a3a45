package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/session"
	"jailmgr/session/cgroup"
)

// TestRunClientKilled kills 'jailmgr run' while its command runs. The
// command dies with it (the session's init is killed with its caller);
// killed early, before a monitor was worth starting, the session is left
// dead for 'session recover'; killed later, its monitor removes it. Either
// way nothing of the session is left in the end. Only what this test made
// counts: its own run folder, its session's cgroup.
func TestRunClientKilled(t *testing.T) {
	for _, c := range []struct {
		name    string
		watched bool
	}{{"early", false}, {"watched", true}} {
		t.Run(c.name, func(t *testing.T) {
			h := newE2E(t)
			jm := filepath.Join(filepath.Dir(h.schroot), "jailmgr")
			cmd := exec.Command(jm, "run", "e2e", "--", "sh", "-c", "echo started; exec sleep 300")
			cmd.Env, cmd.Dir = h.env, "/"
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 8)
			if n, _ := out.Read(buf); string(buf[:n]) != "started\n" {
				t.Fatalf("the command did not start: %q", buf[:n])
			}
			states, err := session.List(h.runDir)
			if err != nil || len(states) != 1 {
				t.Fatalf("sessions while the command runs: %v %v", states, err)
			}
			st := states[0]
			initFD := pidfdOf(t, st.InitPid)
			if initFD < 0 || !st.Alive() {
				t.Fatalf("the session's init is gone while its command runs")
			}
			monitorFD := -1
			if c.watched {
				// Started watchDelay into the run; it says nothing when it
				// is up, but its command line.
				deadline := time.Now().Add(10 * time.Second)
				for monitorFD < 0 && time.Now().Before(deadline) {
					if pid := findMonitor(st.Dir); pid > 0 {
						monitorFD = pidfdOf(t, pid)
					} else {
						time.Sleep(5 * time.Millisecond) // between looks at /proc
					}
				}
				if monitorFD < 0 {
					t.Fatalf("no monitor for the session of a command that runs")
				}
			}
			cmd.Process.Kill()
			cmd.Wait()
			if !waitPidfd(initFD, 10*time.Second) {
				t.Fatalf("the session's init outlived 'jailmgr run'")
			}
			if c.watched {
				// It tears the session down once the init is gone.
				if !waitPidfd(monitorFD, 10*time.Second) {
					t.Fatalf("the monitor did not finish")
				}
			} else {
				// Left dead (or, on a machine slow enough for the monitor
				// to start, being torn down by it: recover then waits for
				// it, under the session's lock).
				if pid := findMonitor(st.Dir); pid > 0 {
					waitPidfd(pidfdOf(t, pid), 10*time.Second)
				}
				r := exec.Command(jm, "session", "recover")
				r.Env = h.env
				if out, err := r.CombinedOutput(); err != nil {
					t.Fatalf("session recover: %v %s", err, out)
				}
			}
			if _, err := os.Stat(st.Dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state folder left: %v", err)
			}
			if n := mountsBelow(h.runDir); n != 0 {
				t.Errorf("%d mounts left", n)
			}
			if _, err := cgroup.Open(st.Cgroup); !errors.Is(err, cgroup.ErrNotFound) {
				t.Errorf("the session's cgroup %s left: %v", st.Cgroup, err)
			}
		})
	}
}

// pidfdOf opens a pidfd of pid, closed with the test; -1 when it is gone.
func pidfdOf(t *testing.T, pid int) int {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// waitPidfd waits until the process of a pidfd has exited (a zombie has),
// at most d; a pidfd of -1 is a process gone already.
func waitPidfd(fd int, d time.Duration) bool {
	if fd < 0 {
		return true
	}
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left/time.Millisecond)+1)
		if err == nil && n > 0 {
			return true
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false
		}
	}
}

// findMonitor is the pid of the monitor of the session in dir, 0 for none.
func findMonitor(dir string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "__jailmgr-session-monitor\x00"+dir+"\x00") {
			return pid
		}
	}
	return 0
}
