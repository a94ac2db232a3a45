package session

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
	if err != nil {
		send(conn, Reply{Error: err.Error()})
		return
	}
	closeAll(files)
	files = nil
	var passed []int
	if master != nil {
		passed = append(passed, int(master.Fd()))
	}
	if err := send(conn, Reply{Started: true, Pid: pid}, passed...); err != nil {
		syscall.Kill(-pid, syscall.SIGHUP)
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
					syscall.Kill(-pid, syscall.SIGHUP)
				}
				return
			}
			if r.Op == "signal" && r.Signal > 0 && r.Signal < 65 {
				syscall.Kill(-pid, syscall.Signal(r.Signal))
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

// start launches the exec helper for a request; it becomes the command
// after dropping privileges inside the jail.
func (in *sessionInit) start(req *Request, files []*os.File) (int, chan unix.WaitStatus, error) {
	uid, gid, groups := in.cfg.User.UID, in.cfg.User.GID, in.cfg.User.Groups
	if req.Root {
		uid, gid, groups = 0, 0, nil
	}
	spec := execSpec{Argv: req.Argv, Env: req.Env, Dir: req.Dir, UID: uid, GID: gid, Groups: groups,
		Capabilities: in.cfg.Capabilities, Filter: in.filter}
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
	out := make(chan unix.WaitStatus, 1)
	go func() {
		ws := <-done
		in.mu.Lock()
		in.running--
		in.lastIdle = time.Now()
		in.mu.Unlock()
		out <- ws
	}()
	return pid, out, nil
}
