package privtest

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"jailmgr/session/cgroup"
)

// writeRootTarball writes a zstd tar of a root holding, at the top, each
// name of files (a copy of the host file it maps to) setuid, owned by root
// — as anyone can write a tar header.
func writeRootTarball(path string, files map[string]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := zstd.NewWriter(f)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	now := time.Now().Truncate(time.Second)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755, ModTime: now, Format: tar.FormatPAX}); err != nil {
		return err
	}
	dirs := map[string]bool{}
	for name, src := range files {
		if d := filepath.Dir(name); d != "." && !dirs[d] {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "./" + d + "/", Mode: 0o755, ModTime: now, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "./" + name, Mode: 0o4755, Size: int64(len(data)), ModTime: now, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// victim is root's: a folder with a file and a process in a cgroup, which
// a forged session state names as its own.
type victim struct {
	dir    string
	cgroup string
	pid    int
	cmd    *exec.Cmd // nil for one left by an earlier run
}

// victimFile records the victim for the sweep of a killed run.
func (s *suite) victimFile() string { return filepath.Join(s.prefix, "victim.json") }

func (s *suite) startVictim() error {
	v := &victim{dir: filepath.Join(s.prefix, "victim"), cgroup: "jailmgr/" + s.token + "-victim"}
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(v.dir, "precious"), []byte("root's\n"), 0o644); err != nil {
		return err
	}
	g, err := cgroup.Create(v.cgroup, cgroup.Limits{})
	if err != nil {
		return fmt.Errorf("victim cgroup: %w", err)
	}
	v.cmd = exec.Command("/bin/sleep", "3600")
	if err := v.cmd.Start(); err != nil {
		g.Remove()
		return err
	}
	v.pid = v.cmd.Process.Pid
	s.victim = v
	data, _ := json.Marshal(map[string]any{"pid": v.pid, "cgroup": v.cgroup})
	os.WriteFile(s.victimFile(), data, 0o600)
	if err := g.Add(v.pid); err != nil {
		return fmt.Errorf("victim cgroup: %w", err)
	}
	return nil
}

// loadVictim finds the victim of an earlier run.
func (s *suite) loadVictim() {
	data, err := os.ReadFile(s.victimFile())
	if err != nil {
		return
	}
	var v struct {
		Pid    int    `json:"pid"`
		Cgroup string `json:"cgroup"`
	}
	if json.Unmarshal(data, &v) == nil && strings.HasPrefix(v.Cgroup, "jailmgr/jmpriv-") {
		s.victim = &victim{pid: v.Pid, cgroup: v.Cgroup}
	}
}

// victimAlive tells whether the victim process still runs.
func (s *suite) victimAlive() bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(s.victim.pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(st), ')')
	return i > 0 && i+2 < len(st) && st[i+2] != 'Z' && st[i+2] != 'X'
}

// victimHarm says what of the victim is gone, "" if nothing.
func (s *suite) victimHarm() string {
	var harm []string
	if !exists(filepath.Join(s.victim.dir, "precious")) {
		harm = append(harm, "root's folder "+s.victim.dir+" was removed")
	}
	if !s.victimAlive() {
		harm = append(harm, fmt.Sprintf("root's process %d (in cgroup %s) was killed", s.victim.pid, s.victim.cgroup))
	}
	if _, err := cgroup.Open(s.victim.cgroup); err != nil {
		harm = append(harm, "root's cgroup "+s.victim.cgroup+" was removed")
	}
	return strings.Join(harm, "; ")
}

// restoreVictim puts back whatever of the victim an attack took.
func (s *suite) restoreVictim() error {
	s.stopVictim()
	return s.startVictim()
}

// stopVictim kills the victim process (ours: by its pid, once it is known
// to be in the victim's cgroup) and removes its cgroup.
func (s *suite) stopVictim() {
	v := s.victim
	if v == nil {
		return
	}
	g, err := cgroup.Open(v.cgroup)
	if v.cmd != nil {
		v.cmd.Process.Kill()
		v.cmd.Wait()
	} else if err == nil {
		if procs, err := g.Procs(); err == nil {
			for _, p := range procs {
				if p == v.pid {
					syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
	}
	if err == nil {
		g.Remove()
	}
	if v.dir != "" {
		os.RemoveAll(v.dir)
	}
	s.victim = nil
}

// begin opens a session of jail as u and returns its id ("" if refused).
func (s *suite) begin(u *account, jail string, files ...*os.File) (string, result) {
	r := s.run(call{as: u, args: []string{"session", "begin", jail}, files: files})
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || id == "" || strings.ContainsAny(id, " \n") {
		return "", r
	}
	return id, r
}

// mustBegin is begin for a test's precondition.
func (s *suite) mustBegin(t *testing.T, u *account, jail string, files ...*os.File) string {
	t.Helper()
	id, r := s.begin(u, jail, files...)
	if id == "" {
		t.Fatalf("precondition: %s could not begin a session of %s, which the configuration grants: %s", u.name, jail, r)
	}
	return id
}

// state reads a session's state file as root.
func (s *suite) state(id string) (map[string]any, error) {
	data, err := os.ReadFile(filepath.Join(s.runDir, id, "state.json"))
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, json.Unmarshal(data, &m)
}

// sessionRoot is where a session's root is on the host, as 'session info'
// tells its owner.
func (s *suite) sessionRoot(u *account, id string) string {
	r := s.run(call{as: u, args: []string{"session", "info", id}})
	var info struct {
		Root string `json:"root"`
	}
	if json.Unmarshal([]byte(r.stdout), &info) == nil && info.Root != "" {
		return info.Root
	}
	if st, err := s.state(id); err == nil {
		if root, ok := st["root"].(string); ok {
			return root
		}
	}
	return ""
}

// usable tells whether u can still run a command in session id.
func (s *suite) usable(u *account, id string) bool {
	return s.run(call{as: u, args: []string{"session", "run", id, "--", s.tool("true")}}).code == 0
}

// overlayDirs are the upper and lower dirs of the overlay mounted at dir.
func overlayDirs(dir string) (upper, lower string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || unescapeMount(f[4]) != dir {
			continue
		}
		for _, o := range strings.Split(f[len(f)-1], ",") {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "upperdir":
				upper = unescapeMount(v)
			case "lowerdir":
				lower = strings.Split(unescapeMount(v), ":")[0]
			}
		}
	}
	return upper, lower
}

// killSession makes a session of id dead as a crash would: its monitor
// (which would tear it down at once) and its init killed, its state left.
// The processes are the ones this test started through 'session begin'.
// It reports whether the state is still there.
func (s *suite) killSession(id string) (bool, error) {
	st, err := s.state(id)
	if err != nil {
		return false, err
	}
	pid := int(st["init_pid"].(float64))
	dir := filepath.Join(s.runDir, id)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if n == pid || n == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(data), "\x00") {
			if arg == dir {
				syscall.Kill(n, syscall.SIGKILL)
				break
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return false, fmt.Errorf("kill init %d: %w", pid, err)
	}
	for i := 0; i < 100; i++ {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return exists(filepath.Join(dir, "state.json")), nil
}

// forgeDeadSession makes, as root, the state of a dead session of u (a
// copy of a live one's, with an init that is gone): what a crash leaves
// when killSession cannot stop the monitor.
func (s *suite) forgeDeadSession(liveID, id string) error {
	st, err := s.state(liveID)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.runDir, id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		return err
	}
	st["id"], st["init_pid"], st["init_start"] = id, 0, 0
	st["root"], st["upper"], st["cgroup"] = filepath.Join(dir, "root"), "", "jailmgr/"+id
	data, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, "state.json"), data, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "lock"), nil, 0o600)
}

// firstLine is the first non-empty line of s.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
