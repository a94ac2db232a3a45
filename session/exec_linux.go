package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"jailmgr/session/seccomp"
)

// runExec is the exec helper: started by the session init inside the jail,
// it drops what the command must not have — capabilities outside the
// jail's set, root (unless asked for), the right to gain privileges — loads
// the seccomp filter and becomes the command. It runs on one locked thread
// because the capability bounding set is per thread and execve keeps the
// calling thread's.
func runExec() int {
	runtime.LockOSThread()
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "jailmgr: "+format+"\n", args...)
		return code
	}
	specFile := os.NewFile(3, "spec")
	data, err := io.ReadAll(io.LimitReader(specFile, 1<<20))
	specFile.Close()
	if err != nil {
		return fail(126, "read command: %v", err)
	}
	var s execSpec
	if err := json.Unmarshal(data, &s); err != nil || len(s.Argv) == 0 {
		return fail(126, "read command: %v", err)
	}
	if err := placeExtraFDs(s.ExtraFDs); err != nil {
		return fail(126, "%v", err)
	}
	if err := dropBounding(s.Capabilities); err != nil {
		return fail(126, "drop capabilities: %v", err)
	}
	if err := syscall.Setgroups(s.Groups); err != nil {
		return fail(126, "set groups: %v", err)
	}
	if err := syscall.Setgid(s.GID); err != nil {
		return fail(126, "set gid %d: %v", s.GID, err)
	}
	if err := syscall.Setuid(s.UID); err != nil {
		return fail(126, "set uid %d: %v", s.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail(126, "set no_new_privs: %v", err)
	}
	notes := ExecNotes{}
	if s.Notes != nil {
		notes = *s.Notes
	}
	status := func(def int) int {
		if notes.Status != 0 {
			return notes.Status
		}
		return def
	}
	if err := enterDir(s.Dir, s.Dirs, notes); err != nil {
		return status(126)
	}
	path, err := s.Program, error(nil)
	if path == "" {
		path, err = lookPath(s.Argv[0], s.Env, ".")
	}
	if err != nil {
		if notes.ExecFailed != "" {
			fmt.Fprintf(os.Stderr, notes.ExecFailed+"\n", s.Argv[0], Strerror(unix.ENOENT))
			return status(127)
		}
		return fail(127, "%s: command not found", s.Argv[0])
	}
	// Before the filter: Docker's profile allows only the common
	// personalities, and schroot's list is longer.
	if s.Personality >= 0 {
		if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(s.Personality), 0, 0); e != 0 {
			return fail(status(126), "set personality %#x: %v", s.Personality, e)
		}
	}
	if len(s.Filter) > 0 {
		if err := seccomp.Install(s.Filter); err != nil {
			return fail(status(126), "%v", err)
		}
	}
	err = syscall.Exec(path, s.Argv, s.Env)
	if notes.ExecFailed != "" {
		fmt.Fprintf(os.Stderr, notes.ExecFailed+"\n", path, Strerror(err))
		return status(126)
	}
	return fail(126, "run %s: %v", s.Argv[0], err)
}

// placeExtraFDs moves the n descriptors the init passed from 4 up (3 held
// the spec, closed now) to 3 up, where the command expects them, and
// marks everything above them close-on-exec, whatever this process
// inherited: the helper's own file, which the init passes after them, too.
func placeExtraFDs(n int) error {
	if n < 0 || n > MaxPreserveFDs {
		return fmt.Errorf("read command: %d descriptors to pass", n)
	}
	for i := 0; i < n; i++ {
		// Upwards, each source is read before it is written over; dup3
		// leaves the copy without close-on-exec.
		if err := unix.Dup3(4+i, 3+i, 0); err != nil {
			return fmt.Errorf("pass descriptor %d: %w", 3+i, err)
		}
	}
	if n > 0 {
		unix.Close(3 + n)
	}
	return closeOnExecFrom(3 + n)
}

// enterDir changes to dir, else to each of more in turn, saying so on
// stderr in the notes' words (or jailmgr's).
func enterDir(dir string, more []string, notes ExecNotes) error {
	dirs := append([]string{dir}, more...)
	if dir == "" {
		dirs = append([]string{"/"}, more...)
	}
	for i, d := range dirs {
		err := os.Chdir(d)
		if err == nil {
			if i > 0 && notes.DirFallback != "" {
				fmt.Fprintf(os.Stderr, notes.DirFallback+"\n", d)
			}
			return nil
		}
		text := Strerror(err)
		switch {
		case i < len(dirs)-1 && notes.DirSkipped != "":
			fmt.Fprintf(os.Stderr, notes.DirSkipped+"\n", d, text)
		case i < len(dirs)-1:
		case notes.DirFailed != "":
			fmt.Fprintf(os.Stderr, notes.DirFailed+"\n", d, text)
			return err
		default:
			fmt.Fprintf(os.Stderr, "jailmgr: change to %s: %v\n", d, err)
			return err
		}
	}
	return nil
}

// Strerror is an error as C's strerror words it ("No such file or
// directory"), which tools that mimic C programs print.
func Strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	t := err.Error()
	if t == "" {
		return t
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// dropBounding removes every capability outside keep from this thread's
// bounding set, so that nothing the command runs can gain them back.
func dropBounding(keep []string) error {
	for i, name := range capNames {
		if name == "" || slices.Contains(keep, name) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop %s: %w", name, err)
		}
	}
	return nil
}

// defaultPath is searched for a command when its environment sets no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds a command in the PATH of the command's own environment.
// Relative PATH entries are taken from dir, the command's working folder.
func lookPath(name string, env []string, dir string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, d := range strings.Split(path, ":") {
		if !strings.HasPrefix(d, "/") {
			d = dir + "/" + d
		}
		p := d + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// capNames are the capabilities by number, as the kernel numbers them.
var capNames = func() []string {
	names := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
		"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
		"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
		"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
		"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
		"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
		"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
		"CAP_CHECKPOINT_RESTORE"}
	// Later kernels may know more; drop those too (by number, unnamed).
	for len(names) < 64 {
		names = append(names, fmt.Sprintf("CAP_%d", len(names)))
	}
	return names
}()
