package session

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fdTarget is one line of 'ls -l /proc/self/fd/': "... 3 -> /target".
var fdTarget = regexp.MustCompile(`(?m) (\d+) -> (.*)$`)

// descriptors reads 'ls -l /proc/self/fd/' as descriptor → target,
// without ls's own listing of the folder.
func descriptors(listing string) map[string]string {
	fds := map[string]string{}
	for _, m := range fdTarget.FindAllStringSubmatch(listing, -1) {
		if !regexp.MustCompile(`^/proc/\d+/fd$`).MatchString(m[2]) {
			fds[m[1]] = m[2]
		}
	}
	return fds
}

// A command gets its stdio and the ExtraFiles asked for, as 3, 4, ... in
// order, on either start path; nothing the init holds, nor what it
// inherited from the process that began the session (here a folder this
// test holds without close-on-exec).
func TestCommandDescriptors(t *testing.T) {
	leak, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leak)
	bothStarts(t, func(t *testing.T, spec *Spec, runDir string) {
		st, err := Begin(spec)
		if err != nil {
			t.Fatal(err)
		}
		defer End(runDir, st.ID)
		out, stderr, e := runWith(t, st, RunOptions{Argv: []string{"ls", "-l", "/proc/self/fd/"}})
		if e.Code != 0 {
			t.Fatalf("ls: exit %d: %s", e.Code, stderr)
		}
		if fds := descriptors(out); len(fds) != 3 || fds["0"] == "" || fds["1"] == "" || fds["2"] == "" {
			t.Errorf("want stdio alone, got %v:\n%s", fds, out)
		}

		var extra []*os.File
		for _, word := range []string{"three", "four"} {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(word + "\n"))
			w.Close()
			defer r.Close()
			extra = append(extra, r)
		}
		out, stderr, e = runWith(t, st, RunOptions{Argv: []string{"sh", "-c", "cat <&3; cat <&4; ls -l /proc/self/fd/"}, ExtraFiles: extra})
		if e.Code != 0 || !strings.HasPrefix(out, "three\nfour\n") {
			t.Fatalf("extra files: exit %d, %q, %s", e.Code, out, stderr)
		}
		if fds := descriptors(out); len(fds) != 5 || !strings.HasPrefix(fds["3"], "pipe:") || !strings.HasPrefix(fds["4"], "pipe:") {
			t.Errorf("want stdio and two pipes as 3 and 4, got %v:\n%s", fds, out)
		}

		// On a pty too: the terminal as stdio, the extra file as 3.
		hostMaster, hostSlave, err := openPty()
		if err != nil {
			t.Fatal(err)
		}
		defer hostMaster.Close()
		defer hostSlave.Close()
		go io.Copy(io.Discard, hostMaster)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		w.Write([]byte("7\n"))
		w.Close()
		code, err := Run(st, RunOptions{Argv: []string{"sh", "-c", "read x <&3 && [ -t 0 ] && [ ! -e /proc/self/fd/4 ] && exit $x"},
			Env: []string{"PATH=/usr/bin:/bin"}, Stdin: hostSlave, Stdout: hostSlave, Stderr: hostSlave, Pty: true, ExtraFiles: []*os.File{r}})
		if err != nil || code != 7 {
			t.Errorf("on a pty: exit %d, %v; want 7, read from descriptor 3", code, err)
		}
	})
}

// MarkInheritedCloseOnExec marks what a process inherited close-on-exec
// and remembers it for PreservedFiles, which passes only that: not what
// the process opened itself at those numbers. It runs in a child, which
// inherits descriptor 3 and not 4.
func TestMarkInheritedCloseOnExec(t *testing.T) {
	if os.Getenv("JAILMGR_TEST_MARK_INHERITED") == "1" {
		markInheritedChild(t)
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(self, "-test.run=^TestMarkInheritedCloseOnExec$")
	cmd.Env = append(os.Environ(), "JAILMGR_TEST_MARK_INHERITED=1")
	cmd.ExtraFiles = []*os.File{f}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func markInheritedChild(t *testing.T) {
	if flags, err := unix.FcntlInt(3, unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
		t.Fatalf("descriptor 3 as inherited: %d %v", flags, err)
	}
	if err := MarkInheritedCloseOnExec(); err != nil {
		t.Fatal(err)
	}
	if flags, err := unix.FcntlInt(3, unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("descriptor 3 after: %d %v", flags, err)
	}
	// Opened by this process, at the first free number (4, or above).
	own, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(own)
	if files, err := PreservedFiles(1); err != nil || len(files) != 1 || files[0].Fd() != 3 {
		t.Errorf("PreservedFiles(1): %v %v", files, err)
	}
	if _, err := PreservedFiles(own - 2); !errors.Is(err, ErrNotInherited) {
		t.Errorf("PreservedFiles(%d), with %d this process's own: %v", own-2, own, err)
	}
	if _, err := PreservedFiles(MaxPreserveFDs + 1); err == nil {
		t.Errorf("PreservedFiles(%d) passed", MaxPreserveFDs+1)
	}
}

// A message with more descriptors than a run request can carry is refused
// whole, not read with some of them dropped.
func TestReceiveTooManyDescriptors(t *testing.T) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range pair {
		f := os.NewFile(uintptr(fd), "socket")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c.(*net.UnixConn)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	// (The control buffer is rounded up to a word: room for one more.)
	for _, n := range []int{maxFDs, maxFDs + 8} {
		fds := make([]int, n)
		for i := range fds {
			fds[i] = int(devnull.Fd())
		}
		if err := send(conns[0], Request{Op: "run", ExtraFDs: n - 3}, fds...); err != nil {
			t.Fatal(err)
		}
		var req Request
		files, err := receive(conns[1], &req)
		closeAll(files)
		switch {
		case n <= maxFDs && (err != nil || len(files) != n):
			t.Errorf("%d descriptors: %d received, %v", n, len(files), err)
		case n > maxFDs && !errors.Is(err, ErrProtocol):
			t.Errorf("%d descriptors: %d received, %v; want %v", n, len(files), err, ErrProtocol)
		}
	}
}
