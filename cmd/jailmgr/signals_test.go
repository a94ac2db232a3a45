package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"jailmgr/session"
	"jailmgr/session/cgroup"
)

// signalMoments is how many moments of a run each client is signalled at,
// with SIGTERM and with SIGINT.
const signalMoments = 50

// signalBound is how long a client may take to exit once signalled: to
// finish a begin it is in, end its session, or wait for its command to
// die of the signal. A lost signal is a client that never exits.
const signalBound = 10 * time.Second

// stopCommand runs until its stdin ends (the test ends it) or a signal
// kills it; it says when it has started.
const stopCommand = "echo started; exec head -c1"

// signalClient is one client of a session, as a signal test runs it.
type signalClient struct {
	name string
	// args is the command line, after the program.
	args []string
	// asSchroot runs the binary called schroot.
	asSchroot bool
	// schroot exits as schroot does: 1 for a command killed by a signal,
	// or for SIGTERM and SIGHUP caught.
	schroot bool
	// pty runs the client on a terminal (the shell).
	pty bool
	// session is a session the client runs in, begun by the test; else
	// the client begins and ends its own.
	session bool
}

// TestClientSignals signals every client of a session — jailmgr run,
// session run, shell, the schroot front end by both its names — with
// SIGTERM and SIGINT at moments spread over a whole run: while the process
// starts, while its session begins, as its command starts, while the
// command runs and while the session ends. Each must exit within
// signalBound of the signal, and leave nothing of its own behind: no
// session, mount or cgroup it made, no process in a session it ran in.
//
// A run's command waits for its stdin to end. The test ends it when the
// command has said it started before the signal was sent; when the signal
// came first, the command runs until the signal reaches it, so a signal
// that is lost on the way hangs the client.
func TestClientSignals(t *testing.T) {
	clients := []signalClient{
		{name: "run", args: []string{"run", "e2e", "--", "sh", "-c", stopCommand}},
		{name: "session-run", args: []string{"--", "sh", "-c", stopCommand}, session: true},
		{name: "schroot", args: []string{"-c", "e2e", "--", "sh", "-c", stopCommand}, asSchroot: true, schroot: true},
		{name: "jailmgr-schroot", args: []string{"schroot", "-c", "e2e", "--", "sh", "-c", stopCommand}, schroot: true},
		{name: "shell", args: []string{"shell", "e2e"}, pty: true},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newE2E(t)
			r := newSignalRunner(t, h, c)
			// The run's length, unsignalled, once warm: the moments spread
			// over it.
			r.run(0, -1)
			var length time.Duration
			for range 3 {
				length = max(length, r.run(0, -1))
			}
			start := time.Now()
			for i := range signalMoments {
				at := length * time.Duration(i) / signalMoments
				for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
					r.run(sig, at)
				}
			}
			t.Logf("%d runs of %v each, signalled from 0 to %v, in %v", 2*signalMoments, length, length*(signalMoments-1)/signalMoments, time.Since(start).Round(time.Millisecond))
		})
	}
}

// signalRunner runs one client again and again.
type signalRunner struct {
	t       *testing.T
	h       *e2eHost
	c       signalClient
	program string
	st      *session.State // the test's session, for session run
	watch   *dirWatch      // sessions the client begins
}

func newSignalRunner(t *testing.T, h *e2eHost, c signalClient) *signalRunner {
	r := &signalRunner{t: t, h: h, c: c, program: filepath.Join(filepath.Dir(h.schroot), "jailmgr")}
	if c.asSchroot {
		r.program = h.schroot
	}
	if err := os.MkdirAll(h.runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.watch = watchDir(t, h.runDir)
	if c.session {
		cmd := exec.Command(r.program, "session", "begin", "e2e")
		cmd.Env, cmd.Dir = h.env, "/"
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("session begin: %v", err)
		}
		if r.st, err = session.Get(h.runDir, strings.TrimSpace(string(out))); err != nil {
			t.Fatal(err)
		}
		r.c.args = append([]string{"session", "run", r.st.ID}, c.args...)
		r.watch.sessions() // the test's own
	}
	return r
}

// run runs the client once and sends it sig at, after its start (none
// when at is negative), then checks how it ended and what it left. It
// returns how long the client ran.
func (r *signalRunner) run(sig syscall.Signal, at time.Duration) time.Duration {
	t := r.t
	t.Helper()
	cmd := exec.Command(r.program, r.c.args...)
	cmd.Env, cmd.Dir = r.h.env, "/"
	var input io.Closer
	var output io.Reader
	var keep []io.Closer
	if r.c.pty {
		master, slave := openTestPty(t)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		// Queued until the shell reads it; the quotes keep the echo of
		// the line itself from matching.
		master.Write([]byte("echo st''arted\n"))
		input = closerFunc(func() error { _, err := master.Write([]byte("exit\n")); return err })
		output = master
		keep = append(keep, slave, master)
	} else {
		inR, inW, _ := os.Pipe()
		outR, outW, _ := os.Pipe()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, outW
		input, output = inW, outR
		keep = append(keep, inR, outW, inW, outR)
	}
	defer func() {
		for _, c := range keep {
			c.Close()
		}
	}()
	transcript := &lockedBuffer{}
	started := make(chan struct{})
	go func() {
		tee := io.TeeReader(output, transcript)
		sc := bufio.NewScanner(tee)
		for sc.Scan() {
			// (After a prompt, on a terminal.)
			if strings.HasSuffix(strings.TrimSpace(sc.Text()), "started") {
				close(started)
				break
			}
		}
		io.Copy(io.Discard, tee) // until the test closes it
	}()
	begun := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !r.c.pty {
		keep[0].Close() // the client's stdin and stdout are its own now
		keep[1].Close()
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	what := fmt.Sprintf("%s, %v at %v", r.c.name, sig, at)
	var timer <-chan time.Time
	if at >= 0 {
		timer = time.After(at - time.Since(begun))
	}
	// An unsignalled run, or one whose signal is not due yet, that does
	// not end: the test's fault or the client's, said with its words.
	guard := time.After(max(at, 0) + signalBound)
	hung := func(why string) {
		cmd.Process.Kill()
		<-exited
		t.Fatalf("%s: %s; it said:\n%s", what, why, transcript)
	}
	// The command ends by itself only when it started before the signal.
	ended, signalled := false, false
	var werr error
wait:
	for {
		select {
		case <-timer:
			cmd.Process.Signal(sig)
			signalled = true
			break wait
		case <-started:
			started = nil
			ended = true
			input.Close()
		case werr = <-exited:
			break wait
		case <-guard:
			hung(fmt.Sprintf("no exit after %v (its command started: %v)", max(at, 0)+signalBound, ended))
		}
	}
	if signalled {
		select {
		case werr = <-exited:
		case <-time.After(signalBound):
			hung(fmt.Sprintf("the client did not exit within %v of the signal (its command started first: %v)", signalBound, ended))
		}
	}
	took := time.Since(begun)
	code, killedBy := exitOf(werr)
	switch {
	case sig != 0 && killedBy == sig:
		// Before the client caught anything: nothing began.
	case killedBy != 0:
		t.Errorf("%s: killed by %v", what, killedBy)
	case code == 0 && ended:
	case !signalled:
		t.Errorf("%s: exit %d unsignalled; it said:\n%s", what, code, transcript)
	case r.c.schroot:
		if code != 1 {
			t.Errorf("%s: exit %d, want schroot's 1; it said:\n%s", what, code, transcript)
		}
	case code == 128+int(sig):
	case r.c.pty && code == 128+int(syscall.SIGHUP):
		// The shell ignores SIGTERM and SIGINT; its terminal hung up.
	default:
		t.Errorf("%s: exit %d, want %d; it said:\n%s", what, code, 128+int(sig), transcript)
	}
	r.checkLeftovers(what)
	return took
}

// checkLeftovers fails for anything the client left: a session it began
// (its state, its cgroup, its mounts), or a process in the test's session.
func (r *signalRunner) checkLeftovers(what string) {
	t := r.t
	t.Helper()
	for _, id := range r.watch.sessions() {
		if _, err := os.Stat(filepath.Join(r.h.runDir, id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: session %s left: %v", what, id, err)
		}
		if _, err := cgroup.Open("jailmgr/" + id); !errors.Is(err, cgroup.ErrNotFound) {
			t.Errorf("%s: cgroup of session %s left: %v", what, id, err)
		}
	}
	if n := mountsBelow(r.h.runDir); n != 0 && r.st == nil {
		t.Errorf("%s: %d mounts left", what, n)
	}
	if r.st != nil {
		g, err := cgroup.Open(r.st.Cgroup)
		if err != nil {
			t.Fatal(err)
		}
		// The client exits once the init has reaped its command.
		if procs, err := g.Procs(); err != nil || len(procs) != 1 || procs[0] != r.st.InitPid {
			t.Errorf("%s: the session holds %v (%v), want its init %d alone", what, procs, err, r.st.InitPid)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// exitOf is a process's exit status, or the signal that killed it.
func exitOf(err error) (int, syscall.Signal) {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, 0
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 0, ws.Signal()
	}
	return ee.ExitCode(), 0
}

// dirWatch reports the folders made in a folder: the sessions a client
// began, by their state folders, however briefly they existed.
type dirWatch struct {
	t  *testing.T
	fd int
}

func watchDir(t *testing.T, dir string) *dirWatch {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ONLYDIR); err != nil {
		t.Fatal(err)
	}
	return &dirWatch{t: t, fd: fd}
}

// sessions are the folders made since the last call.
func (w *dirWatch) sessions() []string {
	var names []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return names
		}
		if err != nil {
			w.t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)], "\x00"))
			if ev.Mask&unix.IN_ISDIR != 0 {
				names = append(names, name)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// openTestPty opens a pty pair for a client that needs a terminal.
func openTestPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// closerFunc ends a client's input its own way: the shell's ends with a
// line, not with the terminal.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// lockedBuffer is what a client said, written and read from two goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
