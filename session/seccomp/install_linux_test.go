package seccomp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"jailmgr/conf"

	"golang.org/x/sys/unix"
)

// childEnv makes the test binary act as the filtered child: its value is
// "none", "default", "default+CAP_SYS_ADMIN" or the path of a profile.
const childEnv = "JAILMGR_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(childEnv); ok {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// child installs the filter mode asks for, then makes each probed call and
// prints "name errno" lines (0 for success) for the parent to judge.
func child(mode string) int {
	if mode == "exit" {
		return 0 // started by the exec probe: getting here is the test
	}
	var p *Profile
	caps := conf.DefaultCapabilities
	switch mode {
	case "none":
	case "default":
		p = Default()
	case "default+CAP_SYS_ADMIN":
		p, caps = Default(), append(slices.Clone(caps), "CAP_SYS_ADMIN")
	default:
		var err error
		if p, err = Load(mode); err != nil {
			fmt.Println("error", err)
			return 2
		}
	}
	if p != nil {
		prog, err := Compile(p, caps)
		if err == nil {
			err = Install(prog)
		}
		if err != nil {
			fmt.Println("error", err)
			return 2
		}
	}
	for _, pr := range probes {
		fmt.Println(pr.name, int(pr.fn()))
	}
	return 0
}

// missingDir does not exist, so an unfiltered mount on it fails with ENOENT
// and can never change the host.
const missingDir = "/nonexistent/jailmgr-seccomp-test"

func raw(nr uintptr, args ...uintptr) unix.Errno {
	var a [6]uintptr
	copy(a[:], args)
	_, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return e
}

// onOwnThread runs fn on a thread that is thrown away afterwards, since
// unshare changes only the calling thread.
func onOwnThread(fn func() unix.Errno) unix.Errno {
	done := make(chan unix.Errno)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		done <- fn()
	}()
	return <-done
}

// statusField reads a field of /proc/self/status through open, read and
// close, reporting it as the "errno" so the parent sees the value.
func statusField(field string) unix.Errno {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 1000
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var n int
			fmt.Sscan(v, &n)
			return unix.Errno(n)
		}
	}
	return 1001
}

var probes = []struct {
	name string
	fn   func() unix.Errno
}{
	{"seccomp_mode", func() unix.Errno { return statusField("Seccomp") }},
	{"no_new_privs", func() unix.Errno { return statusField("NoNewPrivs") }},
	{"getpid", func() unix.Errno { return raw(unix.SYS_GETPID) }},
	{"pipe_write_read", func() unix.Errno {
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			return err.(unix.Errno)
		}
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		if _, err := unix.Write(fds[1], []byte("x")); err != nil {
			return err.(unix.Errno)
		}
		buf := make([]byte, 1)
		if _, err := unix.Read(fds[0], buf); err != nil {
			return err.(unix.Errno)
		}
		return 0
	}},
	{"uname", func() unix.Errno {
		var u unix.Utsname
		return errnoOf(unix.Uname(&u))
	}},
	{"getpriority_process", func() unix.Errno { return raw(unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, 0) }},
	{"getpriority_pgrp", func() unix.Errno { return raw(unix.SYS_GETPRIORITY, unix.PRIO_PGRP, 0) }},
	{"getpriority_pgrp_high", func() unix.Errno { return raw(unix.SYS_GETPRIORITY, 1<<32|unix.PRIO_PGRP, 0) }},
	{"mount", func() unix.Errno {
		return errnoOf(unix.Mount("none", missingDir, "tmpfs", 0, ""))
	}},
	{"unshare_newuser", func() unix.Errno {
		return onOwnThread(func() unix.Errno { return errnoOf(unix.Unshare(unix.CLONE_NEWUSER)) })
	}},
	{"unshare_newns", func() unix.Errno {
		return onOwnThread(func() unix.Errno { return errnoOf(unix.Unshare(unix.CLONE_NEWNS)) })
	}},
	{"keyctl", func() unix.Errno {
		return raw(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffe) /* KEY_SPEC_PROCESS_KEYRING */, 0)
	}},
	{"bpf", func() unix.Errno { return raw(unix.SYS_BPF, 0xffff, 0, 0) }},
	{"init_module", func() unix.Errno { return raw(unix.SYS_INIT_MODULE, 0, 0, 0) }},
	{"fork_exec", func() unix.Errno { return errnoOf(selfExec(nil)) }},
	{"clone_newns", func() unix.Errno {
		return errnoOf(selfExec(&syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}))
	}},
}

// selfExec runs this binary as a child that exits at once: fork (clone or
// clone3), execve and wait4 under the filter, and the Go runtime starting
// up under it.
func selfExec(attr *syscall.SysProcAttr) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = []string{childEnv + "=exit"}
	cmd.SysProcAttr = attr
	return cmd.Run()
}

// errnoOf reduces an error to its errno: 0 for none, 999 for one without.
func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 999
}

// runChild runs the test binary as a child in mode and returns its probes.
func runChild(t *testing.T, mode string) map[string]unix.Errno {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: without it mount and unshare fail for lack of privilege, filter or not")
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("needs /proc to read the seccomp mode: %v", err)
	}
	if !hasSysAdmin(string(status)) {
		t.Skip("needs CAP_SYS_ADMIN: without it the unfiltered calls fail with EPERM too")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s: %v\nstdout:\n%s\nstderr:\n%s", mode, err, out, stderr.Bytes())
	}
	got := map[string]unix.Errno{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var name string
		var n int
		if _, err := fmt.Sscan(sc.Text(), &name, &n); err != nil {
			t.Fatalf("child %s printed %q: %v", mode, sc.Text(), err)
		}
		got[name] = unix.Errno(n)
	}
	if len(got) != len(probes) {
		t.Fatalf("child %s reported %d probes, want %d:\n%s", mode, len(got), len(probes), out)
	}
	return got
}

// hasSysAdmin reports whether a /proc/<pid>/status text shows
// CAP_SYS_ADMIN (bit 21) among the effective capabilities.
func hasSysAdmin(status string) bool {
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var caps uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &caps); err != nil {
				return false
			}
			return caps&(1<<unix.CAP_SYS_ADMIN) != 0
		}
	}
	return false
}

// want checks probe results; an errno of 0 means the call succeeded.
func want(t *testing.T, mode string, got map[string]unix.Errno, want map[string]unix.Errno) {
	t.Helper()
	for name, w := range want {
		if g := got[name]; g != w {
			t.Errorf("%s: %s gave %s (%d), want %s (%d)", mode, name, describe(g), int(g), describe(w), int(w))
		}
	}
}

func describe(e unix.Errno) string {
	if e == 0 {
		return "success"
	}
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return "value"
}

// TestInstallDefault runs Docker's default profile for the default
// capabilities in a real process: the calls that escape or reconfigure a
// jail are refused with EPERM, though the process is root with every
// capability; ordinary calls, fork and exec keep working.
func TestInstallDefault(t *testing.T) {
	got := runChild(t, "default")
	want(t, "default", got, map[string]unix.Errno{
		"seccomp_mode": 2, "no_new_privs": 1,
		"getpid": 0, "pipe_write_read": 0, "uname": 0, "fork_exec": 0,
		"mount": unix.EPERM, "unshare_newuser": unix.EPERM, "unshare_newns": unix.EPERM,
		"keyctl": unix.EPERM, "bpf": unix.EPERM, "init_module": unix.EPERM, "clone_newns": unix.EPERM,
	})
}

// TestInstallDefaultSysAdmin checks that keeping CAP_SYS_ADMIN opens the
// namespace calls, as in Docker.
func TestInstallDefaultSysAdmin(t *testing.T) {
	got := runChild(t, "default+CAP_SYS_ADMIN")
	want(t, "default+CAP_SYS_ADMIN", got, map[string]unix.Errno{
		"seccomp_mode": 2, "unshare_newns": 0, "mount": unix.ENOENT, "clone_newns": 0,
		"keyctl": unix.EPERM, "fork_exec": 0,
	})
}

// TestInstallNone is the control: without a filter the same calls reach
// the kernel, so the EPERMs above come from the filter.
func TestInstallNone(t *testing.T) {
	got := runChild(t, "none")
	// Compare with this process, which may itself run under someone's filter.
	want(t, "none", got, map[string]unix.Errno{
		"seccomp_mode": statusField("Seccomp"), "no_new_privs": statusField("NoNewPrivs"),
		"mount": unix.ENOENT, "unshare_newns": 0, "clone_newns": 0, "fork_exec": 0, "bpf": unix.EINVAL,
	})
	for _, name := range []string{"unshare_newuser", "keyctl", "init_module"} {
		if got[name] == unix.EPERM {
			t.Errorf("none: %s gave EPERM without a filter", name)
		}
	}
}

// TestInstallCustom loads a profile from a file: uname fails with errno 38,
// and getpriority fails with EINVAL only for PRIO_PGRP as a full 64-bit
// value, so a value with the same low half passes.
func TestInstallCustom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "custom.json")
	profile := `{
	"defaultAction": "SCMP_ACT_ALLOW",
	"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
	"syscalls": [
		{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
		{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
		 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
		{"names": ["no_such_syscall", "mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
	]
}`
	if err := os.WriteFile(path, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runChild(t, path)
	want(t, "custom", got, map[string]unix.Errno{
		"seccomp_mode": 2, "uname": unix.ENOSYS, "getpid": 0,
		"getpriority_process": 0, "getpriority_pgrp": unix.EINVAL, "getpriority_pgrp_high": 0,
		"mount": unix.EACCES, "unshare_newns": 0, "fork_exec": 0,
	})
}
