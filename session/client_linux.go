package session

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// RunOptions say what to run in a session and with which stdio.
type RunOptions struct {
	Argv   []string
	Env    []string
	Dir    string
	Root   bool // run as root inside (root-users only)
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
}

// ErrSessionGone is returned when a session's init does not answer.
var ErrSessionGone = errors.New("session: session init is gone")

// Run runs a command in an open session and returns its exit status. The
// caller's stdio are passed to the command itself (not copied through
// jailmgr), and SIGINT, SIGTERM, SIGHUP and SIGQUIT received meanwhile are
// forwarded to the command's process group.
func Run(st *State, o RunOptions) (int, error) {
	if len(o.Argv) == 0 {
		return 0, fmt.Errorf("run in session %s: no command", st.ID)
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: st.Socket(), Net: "unixpacket"})
	if err != nil {
		return 0, fmt.Errorf("run in session %s: %w: %v (try 'jailmgr session recover')", st.ID, ErrSessionGone, err)
	}
	defer conn.Close()
	req := Request{Op: "run", Argv: o.Argv, Env: o.Env, Dir: o.Dir, Root: o.Root, Fds: 3}
	if err := send(conn, req, int(o.Stdin.Fd()), int(o.Stdout.Fd()), int(o.Stderr.Fd())); err != nil {
		return 0, fmt.Errorf("run in session %s: %w", st.ID, err)
	}
	var started Reply
	if _, err := receive(conn, &started); err != nil {
		return 0, fmt.Errorf("run in session %s: %w: %v", st.ID, ErrSessionGone, err)
	}
	if started.Error != "" {
		return 0, fmt.Errorf("run in session %s: %s", st.ID, started.Error)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			send(conn, Request{Op: "signal", Signal: int(s.(syscall.Signal))})
		}
	}()
	var done Reply
	if _, err := receive(conn, &done); err != nil {
		return 0, fmt.Errorf("run in session %s: %w: %v", st.ID, ErrSessionGone, err)
	}
	if done.Error != "" {
		return 0, fmt.Errorf("run in session %s: %s", st.ID, done.Error)
	}
	return done.Code, nil
}
