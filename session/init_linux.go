package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/internal/role"
	"jailmgr/session/seccomp"
)

func init() {
	// The session init and the exec helper hold capabilities the jail must
	// not reach; non-dumpable, they cannot be ptraced or have their memory
	// written through /proc by a process of the jail running as root.
	// (This runs before main, as early as Go code can.)
	if len(os.Args) > 1 && (os.Args[1] == sessionInitArg || os.Args[1] == execArg) {
		unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	}
}

func init() {
	role.Register(sessionInitArg, func(args []string) int {
		if len(args) != 1 {
			return usage(sessionInitArg, "STATE-DIR")
		}
		return runSessionInit(args[0])
	})
	role.Register(execArg, func([]string) int { return runExec() })
	role.Register(buildArg, func([]string) int {
		fmt.Println(buildStamp)
		return 0
	})
}

// MaybeRunInternal runs one of jailmgr's internal roles — the chroot
// helper, a session init, its monitor, the exec helper — and exits, when
// this process was started as one; otherwise it returns at once. main
// calls it first. (The roles and the rule of who may start them are in
// internal/role.)
func MaybeRunInternal() { role.Run() }

// usage is a role's answer to arguments jailmgr would never give it.
func usage(name, args string) int {
	fmt.Fprintf(os.Stderr, "jailmgr: usage: %s %s (an internal role, started by jailmgr)\n", name, args)
	return 2
}

// errNoGo is the init's answer when Begin gave up before "go".
var errNoGo = errors.New("begin did not confirm the cgroup")

// sessionInit is pid 1 of a session's pid namespace.
type sessionInit struct {
	cfg      initConfig
	stateDir string
	filter   []unix.SockFilter // the jail's seccomp program, nil for none
	launch   *launcher         // nil: commands start through the exec helper
	// exe is this program through a read-only mount nowhere in the
	// tree, which the exec helper is run from (see sealExe); nil where
	// the jail has no /proc to run it by.
	exe *os.File

	mu       sync.Mutex
	usersMu  sync.Mutex // serialises additions to passwd and group
	waiters  map[int]chan unix.WaitStatus
	running  int
	lastIdle time.Time
}

// runSessionInit sets the jail up, reports to Begin on fd 4, then serves
// run requests on the control socket until the session ends.
func runSessionInit(stateDir string) int {
	ready := os.NewFile(4, "ready")
	fail := func(err error) int {
		fmt.Fprintf(ready, "%v\n", err)
		fmt.Fprintf(os.Stderr, "jailmgr-init: %v\n", err)
		return 1
	}
	// Nothing of what the init inherited reaches a command (what Go
	// opens is close-on-exec already): main marked it, unless the init
	// runs in a binary whose main does not (a test's); once, here.
	if err := closeOnExecFrom(3); err != nil {
		return fail(err)
	}
	// spec.json is written before the init starts: it is read, and the
	// filter compiled, while Begin makes the cgroup and the root.
	data, err := os.ReadFile(filepath.Join(stateDir, "spec.json"))
	if err != nil {
		return fail(err)
	}
	in := &sessionInit{stateDir: stateDir, waiters: map[int]chan unix.WaitStatus{}, lastIdle: time.Now()}
	if err := json.Unmarshal(data, &in.cfg); err != nil {
		return fail(fmt.Errorf("read init config: %w", err))
	}
	if in.cfg.Build != buildStamp {
		return fail(fmt.Errorf("%s is from another build of jailmgr (%q, not %q): install jailmgr and jailmgr-init together ('make install')", os.Args[0], buildStamp, in.cfg.Build))
	}
	// The filter is compiled once, here, not by every command: a profile
	// that does not compile fails the session's start, not its commands.
	// It compiles on another thread while the jail is set up.
	compiled := make(chan error, 1)
	go func() {
		var err error
		if in.cfg.Seccomp != "none" {
			p := seccomp.Default()
			if in.cfg.Seccomp != "default" {
				p, err = seccomp.Parse(in.cfg.Seccomp, in.cfg.SeccompProfile)
			}
			if err == nil {
				in.filter, err = seccomp.Compile(p, in.cfg.Capabilities)
			}
		}
		compiled <- err
	}()
	// Wait until Begin has put this process into the session's cgroup:
	// everything it starts must be counted there.
	goPipe := os.NewFile(3, "go")
	buf := make([]byte, 3)
	if n, _ := goPipe.Read(buf); n != 3 || string(buf) != "go\n" {
		return fail(errNoGo)
	}
	goPipe.Close()
	// Reap from the start: setup runs no process, but commands will.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	go in.reap(sigs)

	// The launcher's thread is restricted while the jail is set up: what
	// it takes on (a cgroup namespace, now that the init is in its cgroup,
	// the filter) is its own; the pivot reaches it as every thread.
	launcher := make(chan error, 1)
	go func() {
		err := <-compiled
		if err == nil && (in.cfg.Seccomp == "default" || in.cfg.Seccomp == "none") {
			in.launch, err = startLauncher(&in.cfg, in.filter)
		}
		launcher <- err
	}()
	ln, err := in.setup()
	if err != nil {
		return fail(err)
	}
	if err := <-launcher; err != nil {
		return fail(err)
	}
	if in.launch == nil && in.exe == nil {
		// Every command would need the helper.
		return fail(errNoProc)
	}
	fmt.Fprintf(ready, "ok\n")
	ready.Close()
	in.serve(ln)
	return 0
}

// setup builds the jail: mounts, hostname, network, then listens on the
// control socket and pivots into the root.
func (in *sessionInit) setup() (*net.UnixListener, error) {
	c := &in.cfg
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, &MountError{Op: "make private", Target: "/", Flags: unix.MS_REC | unix.MS_PRIVATE, Err: err}
	}
	if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
		return nil, fmt.Errorf("set hostname: %w", err)
	}
	if c.Network == "none" {
		if err := loopbackUp(); err != nil {
			return nil, err
		}
	}
	if err := setupMounts(c); err != nil {
		return nil, err
	}
	// The socket lives in the state folder on the host, where clients
	// find it; it is opened now, before pivot_root hides the host.
	sock := filepath.Join(in.stateDir, "ctl.sock")
	os.Remove(sock)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(sock, 0o600); err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	// The helper's file is sealed while the host's tree, where it is, is
	// still this namespace's: a mount out of another cannot be cloned.
	exe, err := sealExe(in.stateDir)
	if err != nil {
		return nil, err
	}
	if err := pivotInto(c.Root); err != nil {
		return nil, err
	}
	if procIsProcfs() {
		in.exe = exe
	} else {
		exe.Close()
	}
	return ln, nil
}

// pivotInto makes root the root of this mount namespace and detaches the
// old one, so that nothing of the host's tree stays reachable (a chroot
// can be left with a second chroot; a pivoted root cannot).
func pivotInto(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("pivot into %s: %w", root, err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; the
	// old one is then detached from ".", leaving the new root alone.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &MountError{Op: "detach old root", Target: root, Err: err}
	}
	return unix.Chdir("/")
}

// serve answers control connections until the session ends.
func (in *sessionInit) serve(ln *net.UnixListener) {
	if d := time.Duration(in.cfg.MaxLifetime); d > 0 {
		time.AfterFunc(d, func() { in.shutdown("maximum lifetime reached") })
	}
	if d := time.Duration(in.cfg.IdleTimeout); d > 0 {
		go in.watchIdle(d)
	}
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go in.handle(conn)
	}
}

// watchIdle ends the session when no command has run for d.
func (in *sessionInit) watchIdle(d time.Duration) {
	for {
		time.Sleep(d / 10)
		in.mu.Lock()
		idle := in.running == 0 && time.Since(in.lastIdle) >= d
		in.mu.Unlock()
		if idle {
			in.shutdown("idle timeout reached")
		}
	}
}

// shutdown kills every process of the session and exits; the monitor on
// the host then tears the session down.
func (in *sessionInit) shutdown(why string) {
	fmt.Fprintf(os.Stderr, "jailmgr-init: %s: ending the session\n", why)
	// As pid 1 of the namespace, kill(-1) reaches every other process in it.
	unix.Kill(-1, unix.SIGKILL)
	os.Exit(0)
}

// reap collects every child that exits — commands and orphans reparented
// to this pid 1 — and hands the status of commands to their waiters.
func (in *sessionInit) reap(sigs chan os.Signal) {
	for range sigs {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			in.mu.Lock()
			ch := in.waiters[pid]
			delete(in.waiters, pid)
			in.mu.Unlock()
			if ch != nil {
				ch <- ws
			}
		}
	}
}
