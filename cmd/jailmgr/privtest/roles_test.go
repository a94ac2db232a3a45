package privtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testInternalRoles is class 3: jailmgr's internal roles (the exec helper,
// the chroot helper, the session init, the session monitor) run only when
// jailmgr started them as root. Run by a user through the setuid binary —
// or through the installed jailmgr-init — with a spec, a root or a state
// of the user's making, none may act as root. The attacks run in mount,
// uts, ipc and network namespaces of their own, so that a role that does
// work mounts and pivots there, not on the host.
func testInternalRoles(t *testing.T, s *suite) {
	u := s.u1
	progs := []struct{ name, path string }{{"jailmgr", s.bin}, {"lib/jailmgr/jailmgr-init", s.init}}

	// The exec helper: a command and its uid on descriptor 3.
	for _, p := range progs {
		mark := filepath.Join(s.evidence, "exec-"+filepath.Base(p.path))
		spec, _ := json.Marshal(map[string]any{
			"argv": []string{s.tool("sh"), "-c", s.tool("id") + " > " + mark}, "env": []string{"PATH=/usr/bin:/bin"},
			"dir": "/", "uid": 0, "gid": 0, "capabilities": []string{}, "personality": -1,
		})
		f := s.userFile(t, u, "exec-spec.json", spec, 0o644)
		fd3, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		s.attack(t, p.name+" __jailmgr-exec 3<spec.json (uid 0)", call{as: u, prog: p.path, args: []string{"__jailmgr-exec"}, files: []*os.File{fd3}, sandbox: true},
			func(r result) string {
				if exists(mark) {
					return "the exec helper ran the caller's command as root: it wrote " + mark
				}
				return ""
			})
		fd3.Close()
	}

	// The chroot helper, on a root of the user's.
	croot, err := s.userCopy(u, s.imageRoot("privimg", 1), "croot")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"ov-upper", "ov-work", "ov-root"} {
		s.userDir(t, u, d)
	}
	for _, p := range progs {
		base := filepath.Base(p.path)
		for _, sp := range []struct {
			name string
			args []string
			mark string
		}{
			{"__jailmgr-chroot-init DIR CMD", []string{"__jailmgr-chroot-init", croot}, filepath.Join(croot, "jmpriv-chroot-"+base)},
			{"__jailmgr-chroot-init --no-sync DIR CMD", []string{"__jailmgr-chroot-init", "--no-sync", croot}, filepath.Join(croot, "jmpriv-nosync-"+base)},
			{"__jailmgr-chroot-init --overlay LOWER UPPER WORK DIR CMD", []string{"__jailmgr-chroot-init", "--overlay", croot,
				filepath.Join(u.home, "ov-upper"), filepath.Join(u.home, "ov-work"), filepath.Join(u.home, "ov-root")}, filepath.Join(u.home, "ov-upper", "jmpriv-overlay-"+base)},
		} {
			args := append(sp.args, s.tool("sh"), "-c", s.tool("id")+" > /"+filepath.Base(sp.mark))
			s.attack(t, p.name+" "+sp.name, call{as: u, prog: p.path, args: args, sandbox: true}, func(r result) string {
				if exists(sp.mark) {
					return "the chroot helper ran the caller's command as root in the caller's root: it wrote " + sp.mark
				}
				return ""
			})
		}
	}

	// The session init, on a spec.json of the user's: root inside a root
	// of the user's, with a file written as root.
	for _, p := range progs {
		dir := filepath.Join(u.home, "sinit-"+filepath.Base(p.path))
		root, err := s.userCopy(u, s.imageRoot("privimg", 1), filepath.Base(dir)+"/root")
		if err != nil {
			t.Fatal(err)
		}
		spec, _ := json.Marshal(map[string]any{
			"root": root, "mounts": []string{"proc", "dev", "tmp"}, "hostname": "jmpriv", "network": "host",
			"seccomp": "none", "capabilities": []string{"CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE", "CAP_SETUID"},
			"user":   map[string]any{"name": "root", "uid": 0, "gid": 0, "home": "/root", "shell": "/bin/sh", "passwd": "root:x:0:0:root:/root:/bin/sh"},
			"files":  []map[string]any{{"path": "/etc/jmpriv-sinit", "data": []byte("written by a session init\n")}},
			"limits": map[string]any{}, "personality": -1, "build": s.stamp,
		})
		s.userFile(t, u, filepath.Base(dir)+"/spec.json", spec, 0o644)
		c := call{as: u, prog: p.path, args: []string{"__jailmgr-session-init", dir}, sandbox: true}
		r, report := s.runSessionInit(c)
		s.judge(t, p.name+" __jailmgr-session-init DIR (DIR/spec.json the caller's)", c, r, func() string {
			var ev []string
			if report == "ok" {
				ev = append(ev, "the session init set up a jail from the caller's spec.json as root and reported ok")
			}
			if exists(filepath.Join(root, "etc", "jmpriv-sinit")) {
				ev = append(ev, "it wrote "+filepath.Join(root, "etc", "jmpriv-sinit")+" as root")
			}
			if exists(filepath.Join(dir, "ctl.sock")) {
				ev = append(ev, "it opened a control socket in the caller's folder")
			}
			return strings.Join(ev, "; ")
		}())
	}

	// The monitor, on a state.json of the user's that names root's folder
	// as its upper dir and root's cgroup as its own.
	for _, p := range progs {
		dir := filepath.Join(u.home, "monitor-"+filepath.Base(p.path))
		state, _ := json.Marshal(map[string]any{
			"id": filepath.Base(dir), "instance": "jmprivmon", "jail": "eph", "type": "ephemeral", "root": filepath.Join(dir, "root"),
			"upper": s.victim.dir, "keep": false, "user": u.name, "uid": u.uid, "gid": u.gid,
			"init_pid": 0, "init_start": 0, "cgroup": s.victim.cgroup, "environment": "clean",
			"created": time.Now().UTC().Format(time.RFC3339),
		})
		s.userFile(t, u, filepath.Base(dir)+"/state.json", state, 0o644)
		s.userFile(t, u, filepath.Base(dir)+"/lock", nil, 0o644)
		s.userDir(t, u, filepath.Base(dir)+"/root")
		// As jailmgr starts it (the state folder and the instance it
		// watches), and as older builds did (the folder alone).
		for _, args := range [][]string{{"__jailmgr-session-monitor", dir, "jmprivmon"}, {"__jailmgr-session-monitor", dir}} {
			s.attack(t, p.name+" "+strings.Join(args, " ")+" (DIR/state.json the caller's)",
				call{as: u, prog: p.path, args: args, sandbox: true, timeout: 20 * time.Second},
				func(r result) string {
					if harm := s.victimHarm(); harm != "" {
						return "the monitor tore down what the caller's state.json named: " + harm
					}
					return ""
				})
			if s.victimHarm() != "" {
				if err := s.restoreVictim(); err != nil {
					t.Fatalf("restore the victim: %v", err)
				}
			}
		}
	}
}

// runSessionInit starts a session init as Begin does (descriptor 3 to
// say go, 4 for its report), says go, and returns its report ("ok" when
// it set the jail up); then it stops it.
func (s *suite) runSessionInit(c call) (result, string) {
	goR, goW, err := os.Pipe()
	if err != nil {
		return result{code: -1, err: err}, ""
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return result{code: -1, err: err}, ""
	}
	defer goW.Close()
	defer readyR.Close()
	c.files = []*os.File{goR, readyW}
	cmd, out, err := s.background(c)
	goR.Close()
	readyW.Close()
	r := result{cmdline: cmdline(c, c.prog), code: -1}
	if err != nil {
		r.err = err
		return r, ""
	}
	goW.Write([]byte("go\n"))
	reportc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(readyR).ReadString('\n')
		reportc <- strings.TrimSpace(line)
	}()
	var report string
	select {
	case report = <-reportc:
	case <-time.After(10 * time.Second):
		report = "(no report in 10s)"
	}
	// A working init would serve on; a refusing one has exited.
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(500 * time.Millisecond):
		cmd.Process.Kill()
		<-exited
	}
	r.code = cmd.ProcessState.ExitCode()
	r.stdout = out.String()
	r.stderr = fmt.Sprintf("(report on fd 4: %q)", report)
	return r, report
}
