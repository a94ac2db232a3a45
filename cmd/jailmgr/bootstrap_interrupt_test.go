package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/debian/archivetest"
	"jailmgr/store"
)

const interruptedLine = "jailmgr: interrupted: nothing committed\n"

// TestBootstrapInterruptedAtIndexFetch: a signal caught before the
// indexes are fetched ends the bootstrap with one line and the status a
// shell gives a process the signal killed (130 for SIGINT, 143 for
// SIGTERM); nothing is left in the store. (The other phases need root:
// see TestBootstrapInterrupt.)
func TestBootstrapInterruptedAtIndexFetch(t *testing.T) {
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: []archivetest.Package{{Name: "jm-a", Priority: "required"}}})
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		dir := t.TempDir()
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(signalCause{sig})
		var out, errb bytes.Buffer
		code := run(ctx, []string{"--store", dir, "--config", filepath.Join(dir, "none.conf"), "-q", "bootstrap", "bookworm",
			"--variant", "minbase", "--mirror", srv.URL, "--keyring", srv.KeyringPath, "--pockets", "release"}, strings.NewReader(""), &out, &errb)
		if code != 128+int(sig) || errb.String() != interruptedLine || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and only %q", sig, code, out.String(), errb.String(), 128+int(sig), interruptedLine)
		}
		assertStoreUntouched(t, dir)
	}
}

// TestImageGCReportsLogs: gc removes the logs failed runs kept once they
// are a day old, and says how many and how big, as text and as JSON.
func TestImageGCReportsLogs(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "bootstrap.log")
	var kept []string
	for range 2 {
		os.WriteFile(src, bytes.Repeat([]byte("x"), 2048), 0o644)
		p, err := st.KeepLog(src, "bootstrap-bookworm")
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, p)
	}
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(kept[0], old, old)
	g := []string{"--store", dir, "--config", filepath.Join(dir, "none.conf")}
	code, out, stderr := jailmgr(t, append(g, "image", "gc", "--dry-run", "--json")...)
	var rep store.GCReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Logs != 1 || rep.LogBytes != 2048 {
		t.Errorf("image gc --dry-run --json: exit %d, %s %s; want 1 log of 2048 bytes", code, out, stderr)
	}
	code, out, stderr = jailmgr(t, append(g, "image", "gc")...)
	if code != 0 || !strings.Contains(out, "1 failure logs (2.0K)") {
		t.Errorf("image gc: exit %d, %q %q; want 1 failure log of 2.0K reported", code, out, stderr)
	}
	if _, err := os.Stat(kept[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the day-old log survived gc: %v", err)
	}
	if _, err := os.Stat(kept[1]); err != nil {
		t.Errorf("the fresh log did not survive gc: %v", err)
	}
}

// assertStoreUntouched checks that a store holds no image, no staging
// area and no kept log.
func assertStoreUntouched(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{"images", "staging", "logs"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			t.Errorf("%s/%s left in the store", sub, e.Name())
		}
	}
}

var (
	signalArchiveOnce sync.Once
	signalPkgs        []archivetest.Package
	signalPkgsErr     error
)

// signalPackages is a small real system (the host's packages, repacked)
// with two more packages that only --include brings in: jm-big, which
// takes a while to unpack, and jm-block, whose postinst says so through
// its FIFO /jm-block and then waits.
func signalPackages(t *testing.T) []archivetest.Package {
	signalArchiveOnce.Do(func() {
		signalPkgs, signalPkgsErr = archivetest.MinimalSystem()
		if signalPkgsErr != nil {
			return
		}
		have := map[string]bool{}
		for _, p := range signalPkgs {
			have[p.Name] = true
		}
		var more []string
		for _, n := range []string{"sed", "grep", "findutils", "diffutils", "mawk", "debianutils"} {
			if !have[n] {
				more = append(more, n)
			}
		}
		extra, err := archivetest.HostPackages(more...)
		if err != nil {
			signalPkgsErr = err
			return
		}
		signalPkgs = append(signalPkgs, extra...)
		signalPkgs = append(signalPkgs,
			archivetest.Package{
				Name: "jm-big", Priority: "optional", Compression: "zst",
				Files: []archivetest.File{{Path: "/usr/share/jm-big/zeros", Data: make([]byte, 256<<20)}},
			},
			archivetest.Package{
				Name: "jm-block", Priority: "optional",
				Files: []archivetest.File{{Path: "/jm-block", Mode: fs.ModeNamedPipe | 0o600}},
				Control: []archivetest.ControlFile{{Name: "postinst", Data: []byte(
					"#!/bin/sh\nset -e\necho 'jm-block: postinst reached' > /jm-block\nexec sleep 600\n")}},
			})
	})
	if signalPkgsErr != nil {
		t.Skipf("cannot repack the host's packages into a test system: %v", signalPkgsErr)
	}
	return signalPkgs
}

// interruptRun is one bootstrap by the jailmgr binary, in a process group
// of its own, as a shell runs a foreground job: a terminal's Ctrl-C
// reaches every process of that group.
type interruptRun struct {
	t      *testing.T
	store  string
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

func startInterruptRun(t *testing.T, bin, mirror, keyring string, args ...string) *interruptRun {
	t.Helper()
	r := &interruptRun{t: t, store: filepath.Join(t.TempDir(), "store"), done: make(chan struct{})}
	// The test archive serves the release suite alone.
	// The store exists before the run, so that a test may take its lock.
	if _, err := store.Open(r.store); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, append([]string{"--store", r.store, "--config", filepath.Join(r.store, "none.conf"),
		"bootstrap", "bookworm", "--variant", "minbase", "--mirror", mirror, "--keyring", keyring, "--pockets", "release", "--name", "sig", "--jobs", "4"}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	r.cmd.Dir = "/"
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
	})
	return r
}

// exited tells whether the run has ended (it should not have, before the
// event a test waits for).
func (r *interruptRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond, a look at something the run does, until it holds;
// the run ending first, or a minute passing, fails the test.
func (r *interruptRun) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if r.exited() || time.Now().After(deadline) {
			r.t.Fatalf("the bootstrap did not reach %s (exited: %v, %v); it said:\n%s", what, r.exited(), r.err, r.stderr.String())
		}
		time.Sleep(2 * time.Millisecond) // between looks at the file system
	}
}

// interrupt sends sig to the run's process group, as a terminal does.
func (r *interruptRun) interrupt(sig syscall.Signal) {
	if err := syscall.Kill(-r.cmd.Process.Pid, sig); err != nil {
		r.t.Fatal(err)
	}
}

// check waits for the run to end after sig and checks that it ended as an
// interrupt must: the status 128+sig, one line saying that nothing was
// committed after the progress lines up to the phase (reached and not
// passed, as the progress lines say), nothing in the store, no process of
// the run left.
func (r *interruptRun) check(sig syscall.Signal, reached, notPassed string) {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		r.t.Fatalf("no exit within a minute of %v; it said:\n%s", sig, r.stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(r.err, &ee) {
		code = ee.ExitCode()
	}
	stderr := r.stderr.String()
	if code != 128+int(sig) || r.stdout.Len() != 0 {
		r.t.Errorf("exit %d (%v), stdout %q; want %d and nothing", code, r.err, r.stdout.String(), 128+int(sig))
	}
	var ours []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if strings.HasPrefix(l, "jailmgr: ") {
			ours = append(ours, l)
		}
	}
	if len(ours) != 1 || !strings.HasSuffix(stderr, interruptedLine) {
		r.t.Errorf("stderr ends with %d messages, want only %q:\n%s", len(ours), interruptedLine, stderr)
	}
	for _, bad := range []string{"context canceled", "signal", "killed", "error", "xz"} {
		if strings.Contains(stderr, bad) {
			r.t.Errorf("stderr says %q:\n%s", bad, stderr)
		}
	}
	if !strings.Contains(stderr, reached) || strings.Contains(stderr, notPassed) {
		r.t.Errorf("the signal did not come in the phase that starts with %q and ends with %q:\n%s", reached, notPassed, stderr)
	}
	assertStoreUntouched(r.t, r.store)
	if procs := processesIn(r.store); len(procs) > 0 {
		r.t.Errorf("processes of the bootstrap survive in the store: %v", procs)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), r.store) {
		r.t.Errorf("a mount below the store survived:\n%s", mounts)
	}
}

// processesIn lists the processes whose root or working folder is below
// dir: the chroot of a maintainer script.
func processesIn(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		for _, link := range []string{"root", "cwd"} {
			if p, err := os.Readlink(filepath.Join("/proc", e.Name(), link)); err == nil && strings.HasPrefix(p, dir+"/") {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				out = append(out, fmt.Sprintf("%s %s (%s %s)", e.Name(), strings.ReplaceAll(string(cmdline), "\x00", " "), link, p))
			}
		}
	}
	return out
}

// stagingHas reports whether the run's staging area holds rel.
func (r *interruptRun) stagingHas(rel string) bool {
	m, _ := filepath.Glob(filepath.Join(r.store, "staging", "*", "rootfs", rel))
	return len(m) > 0
}

// TestBootstrapInterrupt interrupts the jailmgr binary's bootstrap, as a
// terminal's Ctrl-C does (SIGINT to its process group), at each phase,
// when an event shows it got there: while a package downloads (the mirror
// holds it back), while a package unpacks (its files appear in the staging
// area), while a postinst runs (it writes to a FIFO), while a customize
// hook runs (the same), and at the commit (waiting for the store's lock,
// which the test holds). Each run exits 130 with one line, commits
// nothing, leaves no staging area, log or process.
func TestBootstrapInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs six bootstraps")
	}
	schroot, _ := e2eSetup(t)
	bin := filepath.Join(filepath.Dir(schroot), "jailmgr")
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: signalPackages(t)})

	t.Run("download", func(t *testing.T) {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			held := srv.PoolPath("dash")
			reached := make(chan struct{}, 1)
			mirror := holdingProxy(t, srv.URL, held, reached)
			r := startInterruptRun(t, bin, mirror, srv.KeyringPath)
			select {
			case <-reached:
			case <-r.done:
				t.Fatalf("the bootstrap ended before it downloaded %s: %v\n%s", held, r.err, r.stderr.String())
			case <-time.After(time.Minute):
				t.Fatalf("the bootstrap did not download %s within a minute:\n%s", held, r.stderr.String())
			}
			r.interrupt(sig)
			r.check(sig, "selected ", "from the cache")
		}
	})

	t.Run("unpack", func(t *testing.T) {
		r := startInterruptRun(t, bin, srv.URL, srv.KeyringPath, "--include", "jm-big")
		r.waitFor("the unpack of jm-big", func() bool { return r.stagingHas("usr/share/jm-big") })
		r.interrupt(syscall.SIGINT)
		r.check(syscall.SIGINT, "from the cache", "unpacked ")
	})

	t.Run("configure", func(t *testing.T) {
		r := startInterruptRun(t, bin, srv.URL, srv.KeyringPath, "--include", "jm-block")
		r.waitFor("the unpack of jm-block", func() bool { return r.stagingHas("jm-block") })
		m, _ := filepath.Glob(filepath.Join(r.store, "staging", "*", "rootfs", "jm-block"))
		if line := readFIFO(t, r, m[0]); line != "jm-block: postinst reached\n" {
			t.Fatalf("the postinst said %q", line)
		}
		r.interrupt(syscall.SIGINT)
		r.check(syscall.SIGINT, "configuring packages", "configured ")
	})

	t.Run("hook", func(t *testing.T) {
		fifo := makeFIFO(t)
		r := startInterruptRun(t, bin, srv.URL, srv.KeyringPath, "--customize-hook", `sleep 600 & echo $! $$ > `+fifo+`; wait`)
		pids := strings.Fields(readFIFO(t, r, fifo))
		r.interrupt(syscall.SIGINT)
		r.check(syscall.SIGINT, "configured ", "committed ")
		for _, p := range pids {
			if pid, _ := strconv.Atoi(p); !gone(pid) {
				t.Errorf("process %d of the hook survives", pid)
			}
		}
	})

	t.Run("commit", func(t *testing.T) {
		fifo := makeFIFO(t)
		r := startInterruptRun(t, bin, srv.URL, srv.KeyringPath, "--customize-hook", `echo hooked > `+fifo)
		// The commit takes the store's lock for its commit point: held
		// here, it shows the bootstrap there, and keeps it there.
		lock, err := os.OpenFile(filepath.Join(r.store, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		if line := readFIFO(t, r, fifo); line != "hooked\n" {
			t.Fatalf("the hook said %q", line)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(lock.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		r.waitFor("the commit point", func() bool { return lockWaited(st.Ino) })
		r.interrupt(syscall.SIGINT)
		waitSignalTaken(t, r.cmd.Process.Pid)
		unix.Flock(int(lock.Fd()), unix.LOCK_UN)
		r.check(syscall.SIGINT, "configured ", "committed ")
	})
}

// holdingProxy is a mirror that serves upstream's files but holds back
// the file at held: it says so on reached, and answers only when the
// client gives up (or the test ends).
func holdingProxy(t *testing.T, upstream, held string, reached chan<- struct{}) string {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	// The downloads the bootstrap gives up on are no news.
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.TrimPrefix(req.URL.Path, "/") == held {
			select {
			case reached <- struct{}{}:
			default:
			}
			select {
			case <-req.Context().Done():
			case <-release:
			}
			http.Error(w, "held back", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for handlers
	return hs.URL
}

func makeFIFO(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readFIFO reads what the run writes into the FIFO at path: opening it
// waits for the writer. If the run ends first, the test fails.
func readFIFO(t *testing.T, r *interruptRun, path string) string {
	t.Helper()
	type result struct {
		data []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		data, err := os.ReadFile(path)
		got <- result{data, err}
	}()
	select {
	case res := <-got:
		if res.err != nil {
			t.Fatal(res.err)
		}
		return string(res.data)
	case <-r.done:
	case <-time.After(2 * time.Minute):
	}
	// Let the reader go.
	if w, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
		w.Close()
	}
	t.Fatalf("nothing came through %s (exited: %v, %v); the bootstrap said:\n%s", path, r.exited(), r.err, r.stderr.String())
	return ""
}

// lockWaited reports whether a process waits for a lock on the file with
// inode ino (a "->" line of /proc/locks).
func lockWaited(ino uint64) bool {
	data, _ := os.ReadFile("/proc/locks")
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 7 || f[1] != "->" {
			continue
		}
		// "1: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE START END"
		parts := strings.Split(f[6], ":")
		if n, err := strconv.ParseUint(parts[len(parts)-1], 10, 64); err == nil && n == ino {
			return true
		}
	}
	return false
}

// waitSignalTaken waits until no signal is pending for pid (its handler
// has run), and a moment more for the Go runtime to hand it to the
// goroutine that ends main's context.
func waitSignalTaken(t *testing.T, pid int) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		pending := false
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "ShdPnd:"); ok && strings.Trim(strings.TrimSpace(v), "0") != "" {
				pending = true
			}
		}
		if !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the signal is still pending for %d", pid)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
}

// gone reports whether the process pid has died (or is a zombie) within a
// few seconds: SIGKILL takes effect as each process next runs.
func gone(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			return true
		}
		time.Sleep(10 * time.Millisecond) // between looks at /proc
	}
	return false
}
