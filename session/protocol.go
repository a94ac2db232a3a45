package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// The control protocol between a client (jailmgr session run) and the
// session init: one JSON message per packet over a SOCK_SEQPACKET unix
// socket (which, unlike a stream, keeps messages apart); the client's
// stdio travels as file descriptors (SCM_RIGHTS) with the request, so the
// command reads and writes the caller's own terminal or pipes.

// Request asks the init to run a command.
type Request struct {
	Op   string   `json:"op"` // "run", "signal", "ping"
	Argv []string `json:"argv,omitempty"`
	Env  []string `json:"env,omitempty"`
	Dir  string   `json:"dir,omitempty"`
	UID  int      `json:"uid"`
	GID  int      `json:"gid"`
	// Groups are the supplementary groups of the user.
	Groups []int `json:"groups,omitempty"`
	// Root is true when the command runs as root inside (root-users).
	Root bool `json:"root,omitempty"`
	// Pty asks for a terminal: the init opens a pty in the jail, runs the
	// command on its slave side, and sends the master back.
	Pty  bool   `json:"pty,omitempty"`
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
	// Signal is the signal to forward, for Op "signal".
	Signal int `json:"signal,omitempty"`
	// User, when set, is who the command runs as instead of the session's
	// owner (or root); the client has checked that the caller may.
	User *User `json:"user,omitempty"`
	// Dirs are working directories to try after Dir, in order.
	Dirs []string `json:"dirs,omitempty"`
	// Notes word the command's own failures (see ExecNotes).
	Notes *ExecNotes `json:"notes,omitempty"`
	// Program is the file to run when Argv[0] is not it.
	Program string `json:"program,omitempty"`
	// ExtraFDs is how many descriptors follow the three of stdio (or come
	// alone, with Pty): the command gets them as 3, 4, ... in order.
	ExtraFDs int `json:"extra_fds,omitempty"`
}

// ExecNotes word what a command's stderr is told when it cannot start
// where or as asked, for front ends that speak like another tool (the
// schroot command line), and the exit status then. Each is a printf
// format; an empty one keeps jailmgr's own wording.
type ExecNotes struct {
	// DirSkipped is printed for a working directory that cannot be
	// entered when another is tried next (verbs: directory, error).
	DirSkipped string `json:"dir_skipped,omitempty"`
	// DirFallback is printed when a later directory is used (verb: directory).
	DirFallback string `json:"dir_fallback,omitempty"`
	// DirFailed is printed when no directory can be entered (verbs:
	// directory, error).
	DirFailed string `json:"dir_failed,omitempty"`
	// ExecFailed is printed when the program cannot be run (verbs:
	// program, error).
	ExecFailed string `json:"exec_failed,omitempty"`
	// Status is the exit status after any of these failures; 0 keeps
	// jailmgr's (126, or 127 for a program not found).
	Status int `json:"status,omitempty"`
}

// Reply is what the init answers: first Started, then Exit (or Error).
type Reply struct {
	Started bool   `json:"started,omitempty"`
	Pid     int    `json:"pid,omitempty"`
	Exited  bool   `json:"exited,omitempty"`
	Code    int    `json:"code"`
	Signal  int    `json:"signal,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ErrProtocol is wrapped by malformed control messages.
var ErrProtocol = errors.New("session: control protocol error")

const maxMessage = 1 << 20

// maxFDs is the most descriptors one message carries: stdio and the
// preserved ones.
const maxFDs = 3 + MaxPreserveFDs

// send writes one message, with fds attached when given.
func send(c *net.UnixConn, v any, fds ...int) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	data = append(data, '\n')
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, oobn, err := c.WriteMsgUnix(data, oob, nil)
	if err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	if n != len(data) || oobn != len(oob) {
		return fmt.Errorf("send message: %w: short write", ErrProtocol)
	}
	return nil
}

// receive reads one message and the fds sent with it.
func receive(c *net.UnixConn, v any) ([]*os.File, error) {
	buf := make([]byte, maxMessage)
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	fail := func(format string, args ...any) ([]*os.File, error) {
		closeAll(files)
		return nil, fmt.Errorf("receive message: %w: "+format, append([]any{ErrProtocol}, args...)...)
	}
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return fail("%v", err)
		}
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				return fail("%v", err)
			}
			for _, fd := range fds {
				unix.CloseOnExec(fd)
				files = append(files, os.NewFile(uintptr(fd), "fd"))
			}
		}
	}
	// More descriptors than oob holds (the kernel closed the rest) or a
	// longer message: not what was sent.
	if flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 {
		return fail("truncated (more than %d descriptors or %d bytes)", maxFDs, maxMessage)
	}
	if n == 0 {
		closeAll(files)
		return nil, fmt.Errorf("receive message: %w", os.ErrClosed)
	}
	if buf[n-1] != '\n' {
		return fail("no newline after %d bytes", n)
	}
	if err := json.Unmarshal(buf[:n-1], v); err != nil {
		return fail("%v", err)
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
