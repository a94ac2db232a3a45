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
	// ExtraFDs is how many descriptors, from 4 up, go to the command as
	// 3 up (3 holds this spec until then). The one after them is the
	// helper's own file, which no command inherits.
	ExtraFDs int `json:"extra_fds,omitempty"`
}

// handle serves one control connection: a run request with its fds, then
// signals to forward, until the command exits.
func (in *sessionInit) handle(conn *net.UnixConn) {
	defer conn.Close()
	// answer sends the last word on a connection whose reading the
	// command's watcher below has not taken over.
	answer := func(r Reply) {
		send(conn, r)
		linger(conn)
	}
	var req Request
	files, err := receive(conn, &req)
	if err != nil {
		return
	}
	defer closeAll(files)
	switch req.Op {
	case "ping":
		answer(Reply{Exited: true})
		return
	case "run":
	default:
		answer(Reply{Error: fmt.Sprintf("unknown request %q", req.Op)})
		return
	}
	if req.ExtraFDs < 0 || req.ExtraFDs > MaxPreserveFDs {
		answer(Reply{Error: fmt.Sprintf("a run request passes at most %d descriptors beyond stdio", MaxPreserveFDs)})
		return
	}
	stdio := 3
	if req.Pty {
		stdio = 0
	}
	if len(files) != stdio+req.ExtraFDs {
		answer(Reply{Error: fmt.Sprintf("a run request needs %d descriptors, got %d", stdio+req.ExtraFDs, len(files))})
		return
	}
	extra := files[stdio:]
	files = files[:stdio]
	var master *os.File
	if req.Pty {
		m, slave, err := openPty()
		if err != nil {
			answer(Reply{Error: err.Error()})
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
	if len(req.Argv) == 0 {
		answer(Reply{Error: "a run request needs a command"})
		return
	}
	pid, done, err := in.start(&req, files, extra)
	var failed *startFailure
	if errors.As(err, &failed) {
		// As a shell says it: on the command's stderr, as its exit.
		fmt.Fprintf(files[2], "jailmgr: %s\n", failed.msg)
		done = make(chan unix.WaitStatus, 1)
		done <- unix.WaitStatus(failed.code << 8)
		err = nil
	}
	if err != nil {
		answer(Reply{Error: err.Error()})
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
	closeAll(extra)
	files, extra = nil, nil
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
	// the background is the session's, not the client's.) Those the client
	// sent before the command started are read now, in order: its group
	// is there, as setsid ran before the execve that start waited for.
	var exited atomic.Bool
	reading := make(chan struct{})
	go func() {
		defer close(reading)
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
			// Not once the command is gone: its pid may be another's.
			if r.Op == "signal" && r.Signal > 0 && r.Signal < 65 && !exited.Load() {
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
	// As linger does, with the reader above.
	conn.SetReadDeadline(time.Now().Add(lingerWait))
	<-reading
}

// linger reads, and drops, what the client still sends until it closes
// its end (or lingerWait passes). A unix socket closed with messages
// unread makes the peer's next read fail with ECONNRESET, ahead of the
// replies queued for it: a client that forwarded a signal just as its
// command exited would lose the exit status.
func linger(conn *net.UnixConn) {
	conn.SetReadDeadline(time.Now().Add(lingerWait))
	for {
		var r Request
		fs, err := receive(conn, &r)
		closeAll(fs)
		if err != nil {
			return
		}
	}
}

// lingerWait bounds how long a connection is kept for a client that does
// not close it.
const lingerWait = 5 * time.Second

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
// after dropping privileges inside the jail. files are its stdio, extra
// its descriptors from 3 up.
func (in *sessionInit) start(req *Request, files, extra []*os.File) (int, chan unix.WaitStatus, error) {
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
		return in.startLaunched(req, files, extra, uid, gid, groups)
	}
	spec := execSpec{Argv: req.Argv, Env: req.Env, Dir: req.Dir, UID: uid, GID: gid, Groups: groups,
		Capabilities: in.cfg.Capabilities, Filter: in.filter, Dirs: req.Dirs, Notes: req.Notes, Program: req.Program, Personality: in.cfg.Personality,
		ExtraFDs: len(extra)}
	if in.exe == nil {
		return 0, nil, fmt.Errorf("start %s: %w", req.Argv[0], errNoProc)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return 0, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer r.Close()
	// The helper is run from the sealed file, not from the host's (see
	// sealExe), by its descriptor's name: passed after the others, it is
	// that number in the child when execve looks it up. The helper marks
	// it close-on-exec with what it holds beyond the command's.
	fds := append([]*os.File{files[0], files[1], files[2], r}, extra...)
	self := fmt.Sprintf("/proc/self/fd/%d", len(fds))
	fds = append(fds, in.exe)
	done := make(chan unix.WaitStatus, 1)
	in.mu.Lock()
	// The lock is held until the waiter is registered, so the reaper
	// cannot collect the status before anyone waits for it.
	p, err := os.StartProcess(self, []string{"jailmgr-exec", execArg}, &os.ProcAttr{
		Dir:   "/",
		Env:   []string{},
		Files: fds,
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
func (in *sessionInit) startLaunched(req *Request, files, extra []*os.File, uid, gid int, groups []int) (int, chan unix.WaitStatus, error) {
	done := make(chan unix.WaitStatus, 1)
	in.mu.Lock()
	// Held until the waiter is registered, so the reaper cannot collect
	// the status before anyone waits for it.
	pid, err := in.startDirect(req, files, extra, uid, gid, groups)
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
