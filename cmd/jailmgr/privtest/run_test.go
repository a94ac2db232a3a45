package privtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// call is one process the tests start: as a test user (or root), the
// installed jailmgr unless prog says otherwise.
type call struct {
	as    *account // nil: root, with a clean environment
	prog  string   // default the installed jailmgr
	args  []string
	env   []string // added to the user's plain environment
	stdin io.Reader
	// files become descriptors 3, 4, …; nil entries stay closed.
	files []*os.File
	// sandbox runs it in new mount, uts, ipc and network namespaces (made
	// while still root, before the switch to the user), so that a role
	// that mounts, pivots or sets the hostname acts on those, not the
	// host's, should the attack work.
	sandbox bool
	timeout time.Duration // default 30s
	// cleanup runs it even once tearDown has begun.
	cleanup bool
}

// result is what a call did.
type result struct {
	cmdline        string
	code           int // -1: did not start or was killed
	stdout, stderr string
	err            error
}

func (r result) String() string {
	s := fmt.Sprintf("exit %d", r.code)
	if r.err != nil && r.code != 0 {
		s += fmt.Sprintf(" (%v)", r.err)
	}
	if o := strings.TrimSpace(r.stdout); o != "" {
		s += "; stdout: " + clip(o)
	}
	if e := strings.TrimSpace(r.stderr); e != "" {
		s += "; stderr: " + clip(e)
	}
	return s
}

func (r result) out() string { return r.stdout + r.stderr }

// clip shortens and quotes output for a message.
func clip(s string) string {
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return strconv.Quote(s)
}

// userEnv is a plain login environment of u.
func userEnv(u *account) []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + u.home, "USER=" + u.name, "LOGNAME=" + u.name,
		"LC_ALL=C"}
}

func (s *suite) command(ctx context.Context, c call) *exec.Cmd {
	prog := c.prog
	if prog == "" {
		prog = s.bin
	}
	cmd := exec.CommandContext(ctx, prog, c.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if c.as != nil {
		cmd.Env = append(userEnv(c.as), c.env...)
		cmd.Dir = c.as.home
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(c.as.uid), Gid: uint32(c.as.gid), Groups: c.as.groups}
	} else {
		cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C"}, c.env...)
		cmd.Dir = "/"
	}
	if c.sandbox {
		cmd.SysProcAttr.Unshareflags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET
	}
	cmd.Stdin = c.stdin
	cmd.ExtraFiles = c.files
	// A session's processes may hold the output pipes after jailmgr exits.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

func cmdline(c call, prog string) string {
	parts := []string{prog}
	for _, a := range c.args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$;&|<>*?()") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	s := strings.Join(parts, " ")
	if len(c.env) > 0 {
		s = strings.Join(c.env, " ") + " " + s
	}
	return s
}

// run runs c to its end (or its timeout).
func (s *suite) run(c call) result {
	timeout := c.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := s.command(ctx, c)
	var out, errb capped
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := s.start(cmd, c.cleanup)
	if err == nil {
		err = cmd.Wait()
		s.finished(cmd)
	}
	r := result{cmdline: cmdline(c, cmd.Path), code: -1, stdout: out.String(), stderr: errb.String(), err: err}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		r.err = fmt.Errorf("killed after %v", timeout)
	}
	return r
}

// root runs the installed jailmgr as root.
func (s *suite) root(args ...string) result { return s.run(call{args: args}) }

// capped keeps the first MiB written to it.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := 1<<20 - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// runPTY runs c on a new terminal, types input into it, and returns
// everything the terminal showed until c exits (or its timeout).
func (s *suite) runPTY(c call, input string) result {
	timeout := c.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	master, slave, err := openPTY()
	if err != nil {
		return result{cmdline: cmdline(c, s.bin), code: -1, err: err}
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := s.command(ctx, c)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
	r := result{cmdline: cmdline(c, cmd.Path) + " (on a terminal)", code: -1}
	if err := s.start(cmd, false); err != nil {
		slave.Close()
		r.err = err
		return r
	}
	defer s.finished(cmd)
	slave.Close()
	var shown capped
	done := make(chan struct{})
	go func() {
		io.Copy(&shown, master) // ends with EIO once no one holds the terminal
		close(done)
	}()
	time.Sleep(300 * time.Millisecond)
	master.Write([]byte(input))
	r.err = cmd.Wait()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	r.code = cmd.ProcessState.ExitCode()
	r.stdout = shown.String()
	if ctx.Err() != nil {
		r.err = fmt.Errorf("killed after %v", timeout)
	}
	return r
}

func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	sl, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, sl, nil
}

// background starts c and leaves it running; tearDown kills it if the
// test did not.
func (s *suite) background(c call) (*exec.Cmd, *capped, error) {
	cmd := s.command(context.Background(), c)
	var out capped
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := s.start(cmd, false); err != nil {
		return nil, nil, err
	}
	return cmd, &out, nil
}

// errStopping refuses new processes once tearDown has begun (on a signal
// or the deadline, the tests may still be running).
var errStopping = errors.New("the suite is stopping")

// start starts cmd and keeps it for tearDown, which kills (by pid) what
// is still running.
func (s *suite) start(cmd *exec.Cmd, cleanup bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping && !cleanup {
		return errStopping
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if s.running == nil {
		s.running = map[*exec.Cmd]bool{}
	}
	s.running[cmd] = true
	return nil
}

// finished forgets a process that was waited for.
func (s *suite) finished(cmd *exec.Cmd) {
	s.mu.Lock()
	delete(s.running, cmd)
	s.mu.Unlock()
}

// stop kills a background process (ours, by its pid) and reaps it.
func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Kill()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// attack runs one spelling of an attack as a user. breached looks at what
// happened and says how the attack worked, or "" when it did not. The
// test fails with the spelling, the command line and the evidence; what it
// left in the users' reach is checked too.
func (s *suite) attack(t *testing.T, spelling string, c call, breached func(result) string) result {
	t.Helper()
	r := s.run(c)
	s.judge(t, spelling, c, r, breached(r))
	return r
}

// judge reports one spelling's outcome.
func (s *suite) judge(t *testing.T, spelling string, c call, r result, evidence string) {
	t.Helper()
	who := "root"
	if c.as != nil {
		who = c.as.name
	}
	if evidence != "" {
		t.Errorf("ATTACK WORKED: %s\n\tas %s: %s\n\tevidence: %s\n\t%s", spelling, who, r.cmdline, evidence, r)
	} else {
		t.Logf("held: %s (as %s: %s)", spelling, who, r)
	}
	s.checkReach(t, spelling)
}

// checkReach fails t for anything root made, since the last check, where
// the users can write or in the evidence folder.
func (s *suite) checkReach(t *testing.T, spelling string) {
	t.Helper()
	if found := s.rootOwnedSince(); len(found) > 0 {
		t.Errorf("ATTACK WORKED: %s\n\troot-owned files appeared where the test users can write: %s", spelling, listSome(found))
	}
	if found := s.newEvidence(); len(found) > 0 {
		t.Errorf("ATTACK WORKED: %s\n\tfiles appeared in %s, where only root can make them: %s", spelling, s.evidence, listSome(found))
	}
}

// userFile writes a file as if u had: in its home, owned by it.
func (s *suite) userFile(t *testing.T, u *account, rel string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(u.home, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	chownTree(filepath.Join(u.home, strings.Split(rel, "/")[0]), u)
	return p
}

// listSome lists the first few of many.
func listSome(items []string) string {
	const n = 8
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// userDir makes an empty folder as if u had.
func (s *suite) userDir(t *testing.T, u *account, rel string) string {
	t.Helper()
	p := filepath.Join(u.home, rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	chownTree(filepath.Join(u.home, strings.Split(rel, "/")[0]), u)
	return p
}

// userCopy copies a tree into u's home, owned by u, as u could have.
func (s *suite) userCopy(u *account, src, rel string) (string, error) {
	dst := filepath.Join(u.home, rel)
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		return "", fmt.Errorf("cp -a %s %s: %v: %s", src, dst, err, out)
	}
	// Setuid bits go with the owner: what u makes is u's.
	filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				os.Chmod(p, fi.Mode().Perm())
			}
		}
		return nil
	})
	chownTree(filepath.Join(u.home, strings.Split(rel, "/")[0]), u)
	return dst, nil
}

func chownTree(root string, u *account) {
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			os.Lchown(p, u.uid, u.gid)
		}
		return nil
	})
}

// tmpPath is a name in base (/tmp, /var/tmp) for this run; tearDown
// removes it.
func (s *suite) tmpPath(base, name string) string {
	return filepath.Join(base, s.token+"-"+name)
}

// mountPoints are the mount points of this mount namespace.
func mountPoints() (map[string]bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 {
			m[unescapeMount(f[4])] = true
		}
	}
	return m, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountsBelow are the mount points at or below dir, deepest first.
func mountsBelow(dir string) ([]string, error) {
	all, err := mountPoints()
	if err != nil {
		return nil, err
	}
	var below []string
	for m := range all {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			below = append(below, m)
		}
	}
	// Deepest first: longer paths sort before their parents.
	for i := range below {
		for j := i + 1; j < len(below); j++ {
			if len(below[j]) > len(below[i]) {
				below[i], below[j] = below[j], below[i]
			}
		}
	}
	return below, nil
}

// safeRemove removes dir after detaching every mount below it, and not at
// all if one stays: an attack that worked may have bound the host's / into
// a session's root there.
func safeRemove(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var err error
	for i := 0; i < 10; i++ {
		var ms []string
		if ms, err = mountsBelow(dir); err != nil {
			return err
		}
		if len(ms) == 0 {
			// A session still being torn down may add or take files.
			if err = os.RemoveAll(dir); err == nil {
				return nil
			}
			time.Sleep(200 * time.Millisecond)
			continue
		}
		err = fmt.Errorf("remove %s: mounts below it keep coming back: left alone", dir)
		for _, m := range ms {
			unix.Unmount(m, unix.MNT_DETACH)
		}
	}
	return err
}

// rootOwnedSince lists root-owned paths, not seen before, in the test
// users' homes and in what of /tmp, /var/tmp and /dev/shm the users own
// or this run named. (Other root processes on the machine write to /tmp
// too: only what an attack could have made is looked at.)
func (s *suite) rootOwnedSince() []string {
	var roots []string
	for _, u := range []*account{s.u1, s.u2} {
		if u != nil {
			roots = append(roots, u.home)
		}
	}
	for _, base := range []string{"/tmp", "/var/tmp", "/dev/shm"} {
		ents, _ := os.ReadDir(base)
		for _, e := range ents {
			p := filepath.Join(base, e.Name())
			if p == s.prefix {
				continue
			}
			var st unix.Stat_t
			if unix.Lstat(p, &st) != nil {
				continue
			}
			if strings.Contains(e.Name(), s.token) || s.isUser(int(st.Uid)) {
				roots = append(roots, p)
			}
		}
	}
	mounts, _ := mountPoints()
	var found []string
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && p != root && mounts[p] {
				return filepath.SkipDir
			}
			var st unix.Stat_t
			if unix.Lstat(p, &st) != nil || st.Uid != 0 {
				return nil
			}
			s.mu.Lock()
			seen := s.rootOwned[p]
			s.rootOwned[p] = true
			s.mu.Unlock()
			if !seen {
				found = append(found, fmt.Sprintf("%s (mode %04o%s)", p, st.Mode&0o7777, modeBits(st.Mode)))
			}
			return nil
		})
	}
	return found
}

func modeBits(m uint32) string {
	var s []string
	if m&unix.S_ISUID != 0 {
		s = append(s, "setuid")
	}
	if m&unix.S_ISGID != 0 {
		s = append(s, "setgid")
	}
	if len(s) == 0 {
		return ""
	}
	return " " + strings.Join(s, ",")
}

func (s *suite) isUser(uid int) bool {
	return s.u1 != nil && uid == s.u1.uid || s.u2 != nil && uid == s.u2.uid
}

// newEvidence lists what appeared in the evidence folder since the last
// look.
func (s *suite) newEvidence() []string {
	ents, _ := os.ReadDir(s.evidence)
	var found []string
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ents {
		p := filepath.Join(s.evidence, e.Name())
		if !s.evidenceSeen[p] {
			s.evidenceSeen[p] = true
			data, _ := os.ReadFile(p)
			found = append(found, fmt.Sprintf("%s (holding %s)", p, clip(strings.TrimSpace(string(data)))))
		}
	}
	return found
}

// exists tells whether path is there (as root sees it).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
