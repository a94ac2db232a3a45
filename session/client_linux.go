//go:build !jailmgr_init

package session

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
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
	// Pty runs the command on a terminal of its own in the jail, relayed
	// to Stdin and Stdout (which should be the caller's terminal).
	Pty bool
	// User runs the command as this user instead of the session's owner;
	// the caller has checked that this is allowed. Its passwd and group
	// entries are added to the jail's when missing.
	User *User
	// Dirs are working directories to try, in order, when Dir cannot be
	// entered.
	Dirs []string
	// Notes word the command's own start-up failures.
	Notes *ExecNotes
	// Program, when set, is the file run, Argv[0] only its name (a login
	// shell's "-bash"); else Argv[0] is looked up in the PATH of Env.
	Program string
	// ExtraFiles are passed to the command as descriptors 3, 4, ... (as
	// os/exec's ExtraFiles), at most MaxPreserveFDs of them. Nothing else
	// of the caller's goes into the jail.
	ExtraFiles []*os.File
	// Signals, when set, are the signals to forward: the caller catches
	// them, from before the session began if it began one, and Run passes
	// on each that arrives from its start until the command exits. One
	// that arrives before the command has started is passed on as soon
	// as it has. Unset, Run catches SIGINT, SIGTERM, SIGHUP and SIGQUIT
	// itself, from its start.
	Signals <-chan os.Signal
}

// Exit is how a command ended: its exit status, or the signal that killed
// it (Code is then 128 plus the signal's number).
type Exit struct {
	Code   int
	Signal syscall.Signal
}

// ErrSessionGone is returned when a session's init does not answer.
var ErrSessionGone = errors.New("session: session init is gone")

// Run runs a command in an open session and returns its exit status. The
// caller's stdio are passed to the command itself (not copied through
// jailmgr), and SIGINT, SIGTERM, SIGHUP and SIGQUIT received meanwhile are
// forwarded to the command's process group (see RunOptions.Signals). On a
// pty each is followed by SIGHUP: the command's terminal goes away with
// its client, as a terminal's does when ssh is killed, and an interactive
// shell, which ignores SIGTERM and SIGINT, ends too.
func Run(st *State, o RunOptions) (int, error) {
	e, err := RunWait(st, o)
	return e.Code, err
}

// RunWait is Run, telling an exit from a death by signal.
func RunWait(st *State, o RunOptions) (Exit, error) {
	code, sig, err := run(st, o)
	return Exit{Code: code, Signal: syscall.Signal(sig)}, err
}

// ForwardedSignals are the signals a client passes on to its command.
func ForwardedSignals() []os.Signal {
	return []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}
}

func run(st *State, o RunOptions) (int, int, error) {
	if len(o.Argv) == 0 {
		return 0, 0, fmt.Errorf("run in session %s: no command", st.ID)
	}
	if len(o.ExtraFiles) > MaxPreserveFDs {
		return 0, 0, fmt.Errorf("run in session %s: %d descriptors to pass, at most %d", st.ID, len(o.ExtraFiles), MaxPreserveFDs)
	}
	sigs := o.Signals
	if sigs == nil {
		// Caught from the start: a signal that came before the command
		// started would otherwise be lost, and the command run on.
		own := make(chan os.Signal, 8)
		signal.Notify(own, ForwardedSignals()...)
		defer signal.Stop(own)
		sigs = own
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: st.Socket(), Net: "unixpacket"})
	if err != nil {
		return 0, 0, fmt.Errorf("run in session %s: %w: %v (try 'jailmgr session recover')", st.ID, ErrSessionGone, err)
	}
	defer conn.Close()
	if err := checkPeer(conn, st); err != nil {
		return 0, 0, err
	}
	req := Request{Op: "run", Argv: o.Argv, Env: o.Env, Dir: o.Dir, Root: o.Root, Pty: o.Pty, User: o.User, Dirs: o.Dirs, Notes: o.Notes, Program: o.Program,
		ExtraFDs: len(o.ExtraFiles)}
	var fds []int
	if o.Pty {
		if ws, err := unix.IoctlGetWinsize(int(o.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
			req.Rows, req.Cols = ws.Row, ws.Col
		}
	} else {
		fds = []int{int(o.Stdin.Fd()), int(o.Stdout.Fd()), int(o.Stderr.Fd())}
	}
	for _, f := range o.ExtraFiles {
		fds = append(fds, int(f.Fd()))
	}
	if err := send(conn, req, fds...); err != nil {
		return 0, 0, fmt.Errorf("run in session %s: %w", st.ID, err)
	}
	// From here every signal goes to the init, which reads them in order
	// once the command has started: none is lost between the request and
	// the command's start, and none reaches a process group that is not
	// there yet.
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		for {
			select {
			case <-quit:
				return
			case s := <-sigs:
				sig, ok := s.(syscall.Signal)
				if !ok {
					continue
				}
				send(conn, Request{Op: "signal", Signal: int(sig)})
				if o.Pty && sig != syscall.SIGHUP {
					send(conn, Request{Op: "signal", Signal: int(syscall.SIGHUP)})
				}
			}
		}
	}()
	var started Reply
	got, err := receive(conn, &started)
	if err != nil {
		return 0, 0, fmt.Errorf("run in session %s: %w: %v", st.ID, ErrSessionGone, err)
	}
	if started.Error != "" {
		closeAll(got)
		return 0, 0, fmt.Errorf("run in session %s: %s", st.ID, started.Error)
	}
	if o.Pty {
		if len(got) != 1 {
			closeAll(got)
			return 0, 0, fmt.Errorf("run in session %s: %w: no terminal came back", st.ID, ErrProtocol)
		}
		stop := relayTerminal(got[0], o.Stdin, o.Stdout)
		defer stop()
	} else {
		closeAll(got)
	}
	var done Reply
	fs, err := receive(conn, &done)
	closeAll(fs)
	if err != nil {
		return 0, 0, fmt.Errorf("run in session %s: %w: %v", st.ID, ErrSessionGone, err)
	}
	if done.Error != "" {
		return 0, 0, fmt.Errorf("run in session %s: %s", st.ID, done.Error)
	}
	return done.Code, done.Signal, nil
}

// relayTerminal copies between the caller's terminal and the pty master,
// with the terminal in raw mode (so ^C and ^Z travel to the jail as
// characters, to the job in the foreground there) and window size changes
// passed on. The returned func waits for the output to drain and restores
// the terminal.
func relayTerminal(master, in, out *os.File) func() {
	restore := func() {}
	if state, err := term.MakeRaw(int(in.Fd())); err == nil {
		restore = func() { term.Restore(int(in.Fd()), state) }
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		for range winch {
			if ws, err := unix.IoctlGetWinsize(int(in.Fd()), unix.TIOCGWINSZ); err == nil {
				unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
			}
		}
	}()
	go io.Copy(master, in)
	done := make(chan struct{})
	go func() {
		// Ends with EIO once every holder of the slave side is gone.
		io.Copy(out, master)
		close(done)
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		signal.Stop(winch)
		close(winch)
		master.Close()
		restore()
	}
}

// checkPeer makes sure that the socket answered by st's own init: the
// socket is found by the session's name, which a new session (another
// user's) may have taken since st was read and checked.
func checkPeer(conn *net.UnixConn, st *State) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("run in session %s: %w", st.ID, err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		credErr = err
	}
	if credErr != nil {
		return fmt.Errorf("run in session %s: %w", st.ID, credErr)
	}
	if int(cred.Pid) != st.InitPid || !st.Alive() {
		return fmt.Errorf("run in session %s: %w: its name now belongs to another session (see 'jailmgr session list')", st.ID, ErrSessionGone)
	}
	return nil
}
