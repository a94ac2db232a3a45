package session

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"jailmgr/session/seccomp"
)

// A launcher starts commands straight from the session init, with no helper
// process between: one OS thread of the init carries everything a command
// must begin with — its own cgroup namespace, the jail's personality, the
// capability bounding set cut to the jail's set, no_new_privs and the
// seccomp filter — and forks every command from there. Those are all
// attributes of a thread, which a fork copies from the thread that forks;
// the init's other threads keep what they need to serve the session. What
// differs per command (user, groups, working folder, terminal) the fork
// sets before execve.
//
// It is used with Docker's default profile or none. A profile read from a
// file may deny what the Go runtime needs on that thread, or kill it; those
// jails keep the exec helper, which loads the filter just before execve.
type launcher struct {
	reqs chan launch
}

type launch struct {
	path string
	argv []string
	attr *syscall.ProcAttr
	done chan launched
}

type launched struct {
	pid int
	err error
}

// startLauncher restricts a new thread for cfg and filter and serves
// launches from it until the init exits.
func startLauncher(cfg *initConfig, filter []unix.SockFilter) (*launcher, error) {
	l := &launcher{reqs: make(chan launch)}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: what restrict does cannot be undone, so the
		// thread must run nothing else (and dies with this goroutine if
		// restrict fails).
		runtime.LockOSThread()
		if err := restrictThread(cfg, filter); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for r := range l.reqs {
			pid, err := syscall.ForkExec(r.path, r.argv, r.attr)
			r.done <- launched{pid, err}
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return l, nil
}

// restrictThread gives the calling thread what every command starts with.
func restrictThread(cfg *initConfig, filter []unix.SockFilter) error {
	// The command sees its own cgroup as the root of the tree.
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("new cgroup namespace: %w", err)
	}
	// Before the filter: Docker's profile allows only the common
	// personalities, and schroot's list is longer.
	if cfg.Personality >= 0 {
		if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(cfg.Personality), 0, 0); e != 0 {
			return fmt.Errorf("set personality %#x: %v", cfg.Personality, e)
		}
	}
	if err := dropBounding(cfg.Capabilities); err != nil {
		return fmt.Errorf("drop capabilities: %w", err)
	}
	if len(filter) == 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
		return nil
	}
	return seccomp.InstallThread(filter)
}

// run forks and execs path from the launcher's thread.
func (l *launcher) run(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	done := make(chan launched, 1)
	l.reqs <- launch{path: path, argv: argv, attr: attr, done: done}
	r := <-done
	return r.pid, r.err
}

// startFailure is a command that could not start: the client sees it as
// the command's own exit, with the message on its stderr, as it would from
// a shell.
type startFailure struct {
	code int
	msg  string
}

func (e *startFailure) Error() string { return e.msg }

// startDirect starts a request's command with the launcher.
func (in *sessionInit) startDirect(req *Request, files, extra []*os.File, uid, gid int, groups []int) (int, error) {
	dir := req.Dir
	if dir == "" {
		dir = "/"
	}
	path := req.Program
	if path == "" {
		var err error
		// The init has pivoted: this looks in the jail.
		if path, err = lookPath(req.Argv[0], req.Env, dir); err != nil {
			return 0, &startFailure{127, req.Argv[0] + ": command not found"}
		}
	}
	u32 := func(ids []int) []uint32 {
		out := make([]uint32, len(ids))
		for i, id := range ids {
			out[i] = uint32(id)
		}
		return out
	}
	fds := []uintptr{files[0].Fd(), files[1].Fd(), files[2].Fd()}
	for _, f := range extra {
		fds = append(fds, f.Fd())
	}
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   req.Env,
		Files: fds,
		Sys: &syscall.SysProcAttr{
			Setsid: true,
			// On a pty the command's stdin is its controlling terminal, so
			// ^C there reaches its foreground job.
			Setctty:    req.Pty,
			Ctty:       0,
			Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: u32(groups)},
		},
	}
	pid, err := in.launch.run(path, req.Argv, attr)
	if err == nil {
		return pid, nil
	}
	// The fork reports one errno for whichever step failed; a folder that
	// is not there is the usual one before the program's.
	if _, serr := os.Stat(dir); serr != nil {
		return 0, &startFailure{126, fmt.Sprintf("change to %s: %v", dir, errors.Unwrap(serr))}
	}
	return 0, &startFailure{126, fmt.Sprintf("run %s: %v", req.Argv[0], err)}
}
