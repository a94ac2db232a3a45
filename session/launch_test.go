package session

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bothStarts runs f on a jail whose commands start from the init's
// launcher thread (Docker's default profile) and on one whose commands
// start through the exec helper (a profile read from a file).
func bothStarts(t *testing.T, f func(t *testing.T, spec *Spec, runDir string)) {
	for _, how := range []string{"launcher", "helper"} {
		t.Run(how, func(t *testing.T) {
			spec, runDir := testJail(t, "start-"+how)
			if how == "helper" {
				profile := filepath.Join(t.TempDir(), "profile.json")
				if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW"}`), 0o644); err != nil {
					t.Fatal(err)
				}
				spec.Jail.Seccomp = profile
			}
			f(t, spec, runDir)
		})
	}
}

// A command that cannot start is an exit status with a message on its
// stderr, as a shell gives them: 127 for a program not found, 126 for one
// that cannot run or a working folder that cannot be entered.
func TestStartFailures(t *testing.T) {
	bothStarts(t, func(t *testing.T, spec *Spec, runDir string) {
		st, err := Begin(spec)
		if err != nil {
			t.Fatal(err)
		}
		defer End(runDir, st.ID)
		for _, c := range []struct {
			argv []string
			dir  string
			code int
			msg  string
		}{
			{[]string{"no-such-command"}, "", 127, "no-such-command: command not found"},
			{[]string{"/etc/passwd"}, "", 126, "permission denied"},
			{[]string{"true"}, "/no/such/dir", 126, "/no/such/dir"},
		} {
			_, stderr, e := runWith(t, st, RunOptions{Argv: c.argv, Dir: c.dir})
			if e.Code != c.code || !strings.Contains(stderr, c.msg) {
				t.Errorf("%v in %q: exit %d, stderr %q; want %d and %q", c.argv, c.dir, e.Code, stderr, c.code, c.msg)
			}
		}
		// The session goes on serving after those.
		if out, code := runIn(t, st, false, nil, "/bin/echo", "ok"); code != 0 || out != "ok\n" {
			t.Errorf("echo after the failures: exit %d, %q", code, out)
		}
	})
}

// Commands run as the session's user with its groups and no capabilities,
// or as root with the jail's set, under no_new_privs and the filter, in a
// cgroup namespace of their own — however they were started.
func TestCommandsRunAsAsked(t *testing.T) {
	bothStarts(t, func(t *testing.T, spec *Spec, runDir string) {
		user, err := LookupUser(65534, 65534)
		if err != nil {
			t.Skip("no user 65534 on this host")
		}
		user.Groups = []int{65534, 100}
		spec.User = user
		st, err := Begin(spec)
		if err != nil {
			t.Fatal(err)
		}
		defer End(runDir, st.ID)
		// The test root has a shell, id and cat, not grep.
		script := `echo $(id -u) $(id -g) $(id -G)
while read -r k v; do case $k in CapEff:|CapBnd:|NoNewPrivs:|Seccomp:) echo "$k $v";; esac; done </proc/self/status
while read -r l; do last=$l; done </proc/self/cgroup; echo "$last"`
		out, code := runIn(t, st, false, nil, "/bin/sh", "-c", script)
		if code != 0 {
			t.Fatalf("as the user: exit %d: %s", code, out)
		}
		lines := strings.Split(out, "\n")
		if lines[0] != "65534 65534 65534 100" {
			t.Errorf("ids = %q, want \"65534 65534 65534 100\"", lines[0])
		}
		for _, want := range []string{"CapEff: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2"} {
			if !strings.Contains(out, want) {
				t.Errorf("as the user, no %q in:\n%s", want, out)
			}
		}
		if !strings.HasSuffix(strings.TrimSpace(out), ":/") {
			t.Errorf("the command does not see its cgroup as the root:\n%s", out)
		}
		rootOut, code := runIn(t, st, true, nil, "/bin/sh", "-c", script)
		if code != 0 {
			t.Fatalf("as root: exit %d: %s", code, rootOut)
		}
		// Docker's default set, without CAP_MKNOD: chown, dac_override,
		// fowner, fsetid, kill, setgid, setuid, setpcap, net_bind_service,
		// net_raw, sys_chroot, audit_write, setfcap.
		for _, want := range []string{"0 0 0\n", "CapEff: 00000000a00425fb", "CapBnd: 00000000a00425fb", "NoNewPrivs: 1", "Seccomp: 2"} {
			if !strings.Contains(rootOut, want) {
				t.Errorf("as root, no %q in:\n%s", want, rootOut)
			}
		}
	})
}
