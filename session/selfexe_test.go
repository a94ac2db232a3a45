package session

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/session/cgroup"
)

// needRoot skips a test that mounts, saying why.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("sealing a file takes mounts, which need root; CI runs as root")
	}
}

// inPrivateMountNS runs f on a thread of its own in a mount namespace of
// its own, which ends with the thread: f's mounts never reach the host.
// (/proc/self is then the process's, in the host's namespace; the thread's
// is /proc/thread-self.)
func inPrivateMountNS(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread goes when the goroutine returns.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			t.Errorf("unshare mount namespace: %v", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Errorf("make / private: %v", err)
			return
		}
		f()
	}()
	<-done
}

// checkSealed checks that f, a sealed descriptor of path, is that file
// through a read-only, nosuid, nodev mount: the file reads as itself and
// opens for writing through the seal with EROFS, though it is writable
// at path.
func checkSealed(t *testing.T, f *os.File, path string) {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil {
		t.Fatalf("statfs the sealed file: %v", err)
	}
	if want := int64(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_NODEV); fs.Flags&want != want {
		t.Errorf("the sealed file's mount has flags %#x, want read-only, nosuid and nodev (%#x)", fs.Flags, want)
	}
	var sealed, orig unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &sealed); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(path, &orig); err != nil {
		t.Fatal(err)
	}
	if sealed.Dev != orig.Dev || sealed.Ino != orig.Ino {
		t.Errorf("the sealed file is %d:%d, %s is %d:%d", sealed.Dev, sealed.Ino, path, orig.Dev, orig.Ino)
	}
	through := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	got, err := os.ReadFile(through)
	if err != nil {
		t.Fatalf("read the sealed file: %v", err)
	}
	want, _ := os.ReadFile(path)
	if !bytes.Equal(got, want) {
		t.Errorf("the sealed file reads %q, %s %q", got, path, want)
	}
	// What an attacker who got a handle on the file does with it.
	if w, err := os.OpenFile(through, os.O_WRONLY, 0); !errors.Is(err, unix.EROFS) {
		if err == nil {
			w.Close()
		}
		t.Errorf("open the sealed file for writing: %v, want EROFS", err)
	}
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("the file itself does not open for writing (%v): the test proves nothing", err)
	}
	w.Close()
}

// sealable is a file to seal that nothing runs (a running one could not be
// opened for writing anyway: ETXTBSY), and a root-only scratch folder.
func sealable(t *testing.T) (string, string) {
	dir := t.TempDir()
	path := filepath.Join(dir, "program")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho sealed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(dir, "scratch")
	if err := os.Mkdir(scratch, 0o700); err != nil {
		t.Fatal(err)
	}
	return path, scratch
}

// A sealed file cannot be written through its seal, by either way of
// sealing it; the bind made for kernels before 5.12 leaves nothing behind.
func TestSealFile(t *testing.T) {
	needRoot(t)
	t.Run("open_tree", func(t *testing.T) {
		path, scratch := sealable(t)
		f, err := sealFile(path, scratch)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		checkSealed(t, f, path)
	})
	t.Run("bind", func(t *testing.T) {
		path, scratch := sealable(t)
		inPrivateMountNS(t, func() {
			f, err := sealFileAt(path, scratch)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			// checkSealed's Fatal would end this goroutine, not the
			// test: a sub-test of its own reports it. It goes by the
			// descriptor, so the thread it runs on does not matter.
			t.Run("sealed", func(t *testing.T) { checkSealed(t, f, path) })
			ents, err := os.ReadDir(scratch)
			if err != nil || len(ents) != 0 {
				t.Errorf("scratch folder after sealing: %v, %v; want it empty", ents, err)
			}
			mi, err := os.ReadFile("/proc/thread-self/mountinfo")
			if err != nil || bytes.Contains(mi, []byte(scratch)) {
				t.Errorf("a mount is left in the scratch folder (%v):\n%s", err, mi)
			}
		})
	})
}

// sealExe seals the running program itself, found by its path.
func TestSealExe(t *testing.T) {
	needRoot(t)
	f, err := sealExe(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil || fs.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("the sealed program's mount: flags %#x (%v), want read-only", fs.Flags, err)
	}
	self, _ := os.Stat("/proc/self/exe")
	sealed, err := os.Stat("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil || !os.SameFile(self, sealed) {
		t.Errorf("the sealed program is not this one (%v)", err)
	}
}

// The exec helper is the host's jailmgr run again inside the jail, as
// root, dumpable for a moment: a root of the jail that takes its
// /proc/PID/exe then must hold a file it cannot write (CVE-2019-5736). The
// helper is caught before it becomes the command, blocked writing a note
// to a full stderr, and its executable looked at from the host; the
// session's pid 1, the init, is looked at from the jail.
func TestExecHelperRunsFromSealedFile(t *testing.T) {
	spec, runDir := testJail(t, "sealed-exe")
	profile := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A profile file: every command goes through the helper.
	spec.Jail.Seccomp = profile
	before := hashFile(t, "/proc/self/exe")
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)

	// The init runs this test binary, from the host; from the jail, as
	// root, it cannot even be opened for reading.
	out, code := runIn(t, st, true, nil, "/bin/sh", "-c", "exec 3</proc/1/exe && echo opened")
	if code == 0 || !strings.Contains(out, "Permission denied") {
		t.Errorf("open /proc/1/exe as root in the jail: exit %d, %q; want permission denied", code, out)
	}

	// Nothing of the helper's own reaches the command: its descriptors
	// are the command's three.
	if out, code := runIn(t, st, true, nil, "/bin/sh", "-c", "ls /proc/$$/fd"); code != 0 || out != "0\n1\n2\n" {
		t.Errorf("a command's descriptors: exit %d, %q; want 0, 1 and 2", code, out)
	}

	errR, errW := fullPipe(t)
	defer errR.Close()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	ran := make(chan error, 1)
	go func() {
		defer errW.Close()
		e, err := RunWait(st, RunOptions{Argv: []string{"true"}, Env: []string{"PATH=/usr/bin:/bin"}, Root: true,
			Dir: "/no/such/dir", Dirs: []string{"/"}, Notes: &ExecNotes{DirSkipped: "skipped %s: %s"},
			Stdin: devnull, Stdout: devnull, Stderr: errW})
		if err == nil && e.Code != 0 {
			err = fmt.Errorf("exit %d", e.Code)
		}
		ran <- err
	}()
	pid := findHelper(t, st)
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	self, _ := os.Stat("/proc/self/exe")
	if got, err := os.Stat(exe); err != nil || !os.SameFile(self, got) {
		t.Fatalf("helper %d does not run this test binary (%v): the test proves nothing", pid, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(exe, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("the exec helper runs its file from a writable mount (flags %#x): a root of the jail who takes %s can write the host's jailmgr", fs.Flags, exe)
	}
	if fs.Flags&unix.ST_NOSUID == 0 {
		t.Errorf("the exec helper's mount is not nosuid (flags %#x)", fs.Flags)
	}
	// The write itself fails whichever way: the file is busy (the test
	// and the init run it), and with the seal read-only as well.
	if w, err := os.OpenFile(exe, os.O_WRONLY, 0); err == nil {
		w.Close()
		t.Errorf("%s opens for writing", exe)
	} else {
		link, _ := os.Readlink(exe)
		t.Logf("%s (%s): open for writing: %v", exe, link, err)
	}

	// Let the helper go on and become the command.
	note, _ := io.ReadAll(errR)
	if err := <-ran; err != nil {
		t.Errorf("run through the helper: %v", err)
	}
	if !strings.Contains(string(note), "skipped /no/such/dir") {
		t.Errorf("the helper's note is missing from its stderr:\n%.200q", note)
	}
	if after := hashFile(t, "/proc/self/exe"); after != before {
		t.Error("the test binary changed")
	}
}

// A jail without its proc mount has no /proc to run the helper by; the
// init refuses it rather than run whatever a root of the jail put at
// /proc/self/fd/N.
func TestHelperNeedsProc(t *testing.T) {
	spec, runDir := testJail(t, "no-proc")
	spec.Jail.Mounts = []string{"dev"}
	profile := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	spec.Jail.Seccomp = profile
	if st, err := Begin(spec); err == nil {
		End(runDir, st.ID)
		t.Fatal("a jail without /proc began with a seccomp profile file, which needs the exec helper")
	} else if !strings.Contains(err.Error(), errNoProc.Error()) {
		t.Errorf("begin without /proc: %v, want %q", err, errNoProc)
	}

	spec, runDir = testJail(t, "no-proc")
	spec.Jail.Mounts = []string{"dev"}
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	if _, code := runIn(t, st, true, nil, "/bin/true"); code != 0 {
		t.Errorf("a command from the launcher: exit %d", code)
	}
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	_, err = RunWait(st, RunOptions{Argv: []string{"/bin/true"}, Dir: "/no/such/dir", Dirs: []string{"/"}, Root: true,
		Stdin: devnull, Stdout: devnull, Stderr: devnull})
	if err == nil || !strings.Contains(err.Error(), errNoProc.Error()) {
		t.Errorf("a command that needs the helper, without /proc: %v, want %q", err, errNoProc)
	}
}

// fullPipe is a pipe whose buffer is full: a write to it blocks until the
// read end is read.
func fullPipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 4096)
	chunk := make([]byte, 4096)
	for {
		if _, err := unix.Write(p[1], chunk); errors.Is(err, unix.EAGAIN) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Only the write end blocks; the read end is read through Go's poller.
	if err := unix.SetNonblock(p[1], false); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(p[0]), "stderr-r"), os.NewFile(uintptr(p[1]), "stderr-w")
}

// findHelper waits for an exec helper in the session's cgroup: a process
// past its execve as the helper, which the full stderr holds there.
func findHelper(t *testing.T, st *State) int {
	t.Helper()
	g, err := cgroup.Open(st.Cgroup)
	if err != nil {
		t.Fatal(err)
	}
	want := "jailmgr-exec\x00" + execArg + "\x00"
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		pids, err := g.Procs()
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); string(cmdline) == want {
				return pid
			}
		}
	}
	t.Fatal("no exec helper showed up in the session's cgroup")
	return 0
}

func hashFile(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}
