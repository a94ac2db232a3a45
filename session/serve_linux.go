package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/store/tree"
)

// execSpec is what the exec helper reads on fd 3 before it becomes the
// command.
type execSpec struct {
	Argv         []string `json:"argv"`
	Env          []string `json:"env"`
	Dir          string   `json:"dir"`
	UID          int      `json:"uid"`
	GID          int      `json:"gid"`
	Groups       []int    `json:"groups,omitempty"`
	Capabilities []string `json:"capabilities"`
	// Filter is the seccomp program, compiled once by the init; empty
	// for seccomp = none.
	Filter []unix.SockFilter `json:"filter,omitempty"`
	// Dirs are more working directories to try after Dir.
	Dirs    []string   `json:"dirs,omitempty"`
	Notes   *ExecNotes `json:"notes,omitempty"`
	Program string     `json:"program,omitempty"`
	// Personality is the execution domain to set, -1 for none.
	Personality int64 `json:"personality"`
}

// handle serves one control connection: a run request with its fds, then
// signals to forward, until the command exits.
func (in *sessionInit) handle(conn *net.UnixConn) {
	defer conn.Close()
	var req Request
	files, err := receive(conn, &req)
	if err != nil {
		return
	}
	defer closeAll(files)
	switch req.Op {
	case "ping":
		send(conn, Reply{Exited: true})
		return
	case "run":
	default:
		send(conn, Reply{Error: fmt.Sprintf("unknown request %q", req.Op)})
		return
	}
	var master *os.File
	if req.Pty {
		m, slave, err := openPty()
		if err != nil {
			send(conn, Reply{Error: err.Error()})
			return
		}
		if req.Rows > 0 && req.Cols > 0 {
			unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: req.Rows, Col: req.Cols})
		}
		if !req.Root {
			chownPty(slave, in.cfg.User.UID)
		}
		master = m
		defer master.Close()
		files = []*os.File{slave, slave, slave}
		defer slave.Close()
	}
	if len(req.Argv) == 0 || len(files) != 3 {
		send(conn, Reply{Error: "a run request needs a command and three descriptors"})
		return
	}
	pid, done, err := in.start(&req, files)
	var failed *startFailure
	if errors.As(err, &failed) {
		// As a shell says it: on the command's stderr, as its exit.
		fmt.Fprintf(files[2], "jailmgr: %s\n", failed.msg)
		done = make(chan unix.WaitStatus, 1)
		done <- unix.WaitStatus(failed.code << 8)
		err = nil
	}
	if err != nil {
		send(conn, Reply{Error: err.Error()})
		return
	}
	// pid is 0 for a command that never started: kill(-0) would reach the
	// init's own group.
	signal := func(s syscall.Signal) {
		if pid > 0 {
			syscall.Kill(-pid, s)
		}
	}
	closeAll(files)
	files = nil
	var passed []int
	if master != nil {
		passed = append(passed, int(master.Fd()))
	}
	if err := send(conn, Reply{Started: true, Pid: pid}, passed...); err != nil {
		signal(syscall.SIGHUP)
	}
	// Signals from the client go to the command's process group; a client
	// that goes away while the command runs hangs it up, as a closed
	// terminal would. (Once the command is done, what it left running in
	// the background is the session's, not the client's.)
	var exited atomic.Bool
	go func() {
		for {
			var r Request
			fs, err := receive(conn, &r)
			closeAll(fs)
			if err != nil {
				if !exited.Load() {
					signal(syscall.SIGHUP)
				}
				return
			}
			if r.Op == "signal" && r.Signal > 0 && r.Signal < 65 {
				signal(syscall.Signal(r.Signal))
			}
		}
	}()
	ws := <-done
	exited.Store(true)
	reply := Reply{Exited: true, Code: ws.ExitStatus()}
	if ws.Signaled() {
		reply.Code, reply.Signal = 128+int(ws.Signal()), int(ws.Signal())
	}
	send(conn, reply)
}

// addUser adds a user's passwd and group entries to the jail's files,
// once: the init is past pivot_root, so "/" is the jail's root.
func (in *sessionInit) addUser(u *User) error {
	in.usersMu.Lock()
	defer in.usersMu.Unlock()
	root, err := tree.OpenRoot("/")
	if err != nil {
		return err
	}
	defer root.Close()
	if err := addUser(root, u); err != nil {
		return fmt.Errorf("add user %s to the jail: %w", u.Name, err)
	}
	return nil
}

// start launches the exec helper for a request; it becomes the command
// after dropping privileges inside the jail.
func (in *sessionInit) start(req *Request, files []*os.File) (int, chan unix.WaitStatus, error) {
	uid, gid, groups := in.cfg.User.UID, in.cfg.User.GID, in.cfg.User.Groups
	switch {
	case req.Root:
		uid, gid, groups = 0, 0, nil
	case req.User != nil:
		// Another user than the session's owner: the jail's passwd and
		// group get its entries, as they got the owner's at setup.
		uid, gid, groups = req.User.UID, req.User.GID, req.User.Groups
		if err := in.addUser(req.User); err != nil {
			return 0, nil, err
		}
	}
	if in.launch != nil && req.Notes == nil && len(req.Dirs) == 0 {
		return in.startLaunched(req, files, uid, gid, groups)
	}
	spec := execSpec{Argv: req.Argv, Env: req.Env, Dir: req.Dir, UID: uid, GID: gid, Groups: groups,
		Capabilities: in.cfg.Capabilities, Filter: in.filter, Dirs: req.Dirs, Notes: req.Notes, Program: req.Program, Personality: in.cfg.Personality}
	data, err := json.Marshal(spec)
	if err != nil {
		return 0, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer r.Close()
	done := make(chan unix.WaitStatus, 1)
	in.mu.Lock()
	// The lock is held until the waiter is registered, so the reaper
	// cannot collect the status before anyone waits for it.
	p, err := os.StartProcess("/proc/self/exe", []string{"jailmgr-exec", execArg}, &os.ProcAttr{
		Dir:   "/",
		Env:   []string{},
		Files: []*os.File{files[0], files[1], files[2], r},
		Sys: &syscall.SysProcAttr{
			Setsid: true,
			// On a pty the command's stdin is its controlling terminal, so
			// ^C there reaches its foreground job.
			Setctty: req.Pty,
			Ctty:    0,
			// The command sees its own cgroup as the root of the tree.
			Cloneflags: syscall.CLONE_NEWCGROUP,
		},
	})
	if err != nil {
		in.mu.Unlock()
		w.Close()
		return 0, nil, fmt.Errorf("start %s: %w", req.Argv[0], err)
	}
	in.waiters[p.Pid] = done
	in.running++
	in.mu.Unlock()
	pid := p.Pid
	p.Release() // the reaper waits for it, not os
	go func() {
		w.Write(data)
		w.Close()
	}()
	return pid, in.track(done), nil
}

// startLaunched starts a command from the launcher's thread and registers
// its waiter, as start does for the exec helper.
func (in *sessionInit) startLaunched(req *Request, files []*os.File, uid, gid int, groups []int) (int, chan unix.WaitStatus, error) {
	done := make(chan unix.WaitStatus, 1)
	in.mu.Lock()
	// Held until the waiter is registered, so the reaper cannot collect
	// the status before anyone waits for it.
	pid, err := in.startDirect(req, files, uid, gid, groups)
	if err != nil {
		in.mu.Unlock()
		return 0, nil, err
	}
	in.waiters[pid] = done
	in.running++
	in.mu.Unlock()
	return pid, in.track(done), nil
}

// track counts a running command until it ends, then hands on its status.
func (in *sessionInit) track(done chan unix.WaitStatus) chan unix.WaitStatus {
	out := make(chan unix.WaitStatus, 1)
	go func() {
		ws := <-done
		in.mu.Lock()
		in.running--
		in.lastIdle = time.Now()
		in.mu.Unlock()
		out <- ws
	}()
	return out
}
