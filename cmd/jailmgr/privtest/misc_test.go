package privtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testSupplementaryGroups is class 8: the setuid process is root with the
// caller's uid, gid and groups gone; it must not keep the caller's
// supplementary groups (jmpriv1's jmprivg), which would give root's
// process — and whatever it starts — the caller's group rights besides.
// Seen in /proc/PID/status of the jailmgr process of a running 'run'.
func testSupplementaryGroups(t *testing.T, s *suite) {
	u := s.u1
	c := call{as: u, args: []string{"run", "eph", "--", s.tool("sleep"), "2"}}
	cmd, out, err := s.background(c)
	if err != nil {
		t.Fatal(err)
	}
	status := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status")
	var uids, groups string
	for start := time.Now(); time.Since(start) < 1500*time.Millisecond; time.Sleep(20 * time.Millisecond) {
		uids, groups = statusFields(status)
		// Once the real uid is 0 the switch is done.
		if strings.HasPrefix(uids, "0") {
			time.Sleep(100 * time.Millisecond)
			uids, groups = statusFields(status)
			break
		}
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		stop(cmd)
	}
	r := result{cmdline: cmdline(c, s.bin), code: cmd.ProcessState.ExitCode(), stdout: out.String()}
	if uids == "" {
		t.Errorf("could not observe the jailmgr process %d: %s", cmd.Process.Pid, r)
		return
	}
	t.Logf("jailmgr process %d as it ran: Uid: %s; Groups: %s", cmd.Process.Pid, uids, groups)
	evidence := ""
	if slices.Contains(strings.Fields(groups), strconv.Itoa(s.group)) {
		evidence = fmt.Sprintf("the setuid jailmgr (pid %d, Uid: %s) kept the caller's supplementary groups (Groups: %s; %s is gid %d)", cmd.Process.Pid, uids, groups, extraGroup, s.group)
	}
	s.judge(t, "the groups of a setuid jailmgr started by a user with a supplementary group", c, r, evidence)
}

// statusFields reads the Uid and Groups lines of a /proc/PID/status.
func statusFields(path string) (uids, groups string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch k {
		case "Uid":
			uids = strings.Join(strings.Fields(v), " ")
		case "Groups":
			groups = strings.Join(strings.Fields(v), " ")
		}
	}
	return uids, groups
}

// testLongConfigLine is class 8: a configuration line over 64 KiB is read
// or refused with its file and line, never taken as the end of the file
// (which would pass everything after it unread, here a key no jail has).
func testLongConfigLine(t *testing.T, s *suite) {
	for _, n := range []int{70_000, 1 << 20} {
		f := filepath.Join(s.scratch, fmt.Sprintf("long-%d.conf", n))
		conf := "[longline]\nimage = privimg\nusers = " + s.u1.name + "\ndescription = " + strings.Repeat("a", n) + "\nno-such-key = 1\n"
		if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"--config", f, "config", "check"}, {"--config", f, "jail", "list"}} {
			c := call{args: args}
			s.attack(t, fmt.Sprintf("%s, line 4 %d bytes long, line 5 an unknown key", spell(args[2:]), n), c, func(r result) string {
				if r.code == 0 {
					return "it took the configuration as fine: reading stopped at the long line 4, and line 5's unknown key was never read"
				}
				if !strings.Contains(r.out(), f+":4") && !strings.Contains(r.out(), f+":5") {
					return fmt.Sprintf("it refused the configuration without naming the line (%s:4 or %s:5)", f, f)
				}
				return ""
			})
		}
	}
}

// testBinaryConfig is class 8: binary garbage in a configuration (jailmgr's
// or schroot's) is reported without echoing its control bytes raw, which
// would drive the terminal of whoever reads the error.
func testBinaryConfig(t *testing.T, s *suite) {
	garbage := "[jail\x1b[2J\x1b]0;owned\x07]\nimage = \x00\x01\x02\x7f\x1b[31mred\x9b31m\n\xff\xfe\x08\x08\x08ok\r\n"
	f := filepath.Join(s.scratch, "garbage.conf")
	if err := os.WriteFile(f, []byte(garbage), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--config", f, "config", "check"}, {"--config", f, "jail", "list"}, {"--config", f, "jail", "show", "eph"}} {
		s.attack(t, spell(args[2:])+" with binary garbage in the configuration", call{args: args}, rawControl)
	}
	// schroot's configuration is the users' to read through the front end.
	sc := filepath.Join(s.schrootDir, "schroot.conf")
	plain, _ := os.ReadFile(sc)
	if err := os.WriteFile(sc, []byte(garbage), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(sc, plain, 0o644)
	s.attack(t, "schroot -l with binary garbage in schroot.conf (as root)", call{args: []string{"schroot", "-l"}}, rawControl)
	s.attack(t, "schroot -l with binary garbage in schroot.conf", call{as: s.u1, args: []string{"schroot", "-l"}}, rawControl)
}

// rawControl is the evidence of control bytes passed through raw.
func rawControl(r result) string {
	out := r.out()
	for i := 0; i < len(out); i++ {
		b := out[i]
		if b < 0x20 && b != '\n' && b != '\t' || b == 0x7f {
			j := max(0, i-40)
			return fmt.Sprintf("the output holds the raw byte %#02x from the file: …%q…", b, out[j:min(len(out), i+40)])
		}
	}
	return ""
}

// testCorruptSessionState is class 8: one session folder with a corrupt
// state.json (root can make one; a crash can) does not stop 'session list'
// from listing the others, nor 'session end' from removing it.
func testCorruptSessionState(t *testing.T, s *suite) {
	live := s.mustBegin(t, s.u1, "eph")
	bad := s.token + "-corrupt"
	dir := filepath.Join(s.runDir, bad)
	if err := os.Mkdir(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "state.json"), []byte("\x00{\"id\": garbage"), 0o600)
	os.WriteFile(filepath.Join(dir, "lock"), nil, 0o600)
	for _, args := range [][]string{{"session", "list"}, {"session", "list", "--json"}} {
		s.attack(t, spell(args)+" (as root) past a corrupt state.json", call{args: args}, func(r result) string {
			if !strings.Contains(r.stdout, live) {
				return fmt.Sprintf("it did not list session %s because of %s's state", live, bad)
			}
			return ""
		})
	}
	s.attack(t, "session end ID (as root) of the session with the corrupt state.json", call{args: []string{"session", "end", bad}}, func(r result) string {
		if exists(dir) {
			return "session end left " + dir
		}
		return ""
	})
	os.RemoveAll(dir)
}
