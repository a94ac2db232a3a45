package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"jailmgr/session"
	"jailmgr/session/cgroup"
)

// TestRunClientKilled kills 'jailmgr run' while its command runs. The
// command dies with it (the session's init is killed with its caller);
// killed early, before a monitor was worth starting, the session is left
// dead for 'session recover'; killed later, its monitor removes it. Either
// way nothing is left in the end.
func TestRunClientKilled(t *testing.T) {
	for _, c := range []struct {
		name    string
		wait    time.Duration
		cleaned bool
	}{{"early", 0, false}, {"watched", 4 * watchDelay, true}} {
		t.Run(c.name, func(t *testing.T) {
			h := newE2E(t)
			jm := filepath.Join(filepath.Dir(h.schroot), "jailmgr")
			groupsBefore, _ := cgroup.List("jailmgr")
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
			time.Sleep(c.wait)
			cmd.Process.Kill()
			cmd.Wait()
			deadline := time.Now().Add(5 * time.Second)
			for st.Alive() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if st.Alive() {
				t.Fatalf("the session's init outlived 'jailmgr run'")
			}
			if c.cleaned {
				for time.Now().Before(deadline) {
					if _, err := os.Stat(st.Dir); os.IsNotExist(err) {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
			} else if _, err := os.Stat(st.Dir); err == nil {
				// Left dead (unless this machine was slow enough for the
				// monitor to start): recover removes it.
				r := exec.Command(jm, "session", "recover")
				r.Env = h.env
				if out, err := r.CombinedOutput(); err != nil || !strings.Contains(string(out), st.ID) {
					t.Fatalf("session recover: %v %s", err, out)
				}
			}
			if _, err := os.Stat(st.Dir); !os.IsNotExist(err) {
				t.Errorf("state folder left: %v", err)
			}
			if n := mountsBelow(h.runDir); n != 0 {
				t.Errorf("%d mounts left", n)
			}
			if groups, _ := cgroup.List("jailmgr"); len(groups) != len(groupsBefore) {
				t.Errorf("cgroups %v, before %v", groups, groupsBefore)
			}
		})
	}
}
