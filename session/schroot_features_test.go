package session

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"jailmgr/debian/compress"
)

// The session features schroot's chroots need: roots unpacked from an
// archive (and packed back), overlay folders of the jail's choosing, host
// files copied in, a personality, commands as another user, working
// directory fallbacks worded by the caller, and deaths by signal told
// from exits.

// runWith runs a command with options and returns its output, stderr
// and exit.
func runWith(t *testing.T, st *State, o RunOptions) (string, string, Exit) {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	var out, errb bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { out.ReadFrom(outR); done <- struct{}{} }()
	go func() { errb.ReadFrom(errR); done <- struct{}{} }()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	if o.Env == nil {
		o.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	o.Stdin, o.Stdout, o.Stderr = devnull, outW, errW
	e, err := RunWait(st, o)
	outW.Close()
	errW.Close()
	<-done
	<-done
	if err != nil {
		t.Fatalf("run %v: %v", o.Argv, err)
	}
	return out.String(), errb.String(), e
}

// archiveHas reports whether a .tar.gz holds name.
func archiveHas(t *testing.T, archive, name string) bool {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := compress.NewReader(archive, f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			return true
		}
	}
}

func TestArchiveSessions(t *testing.T) {
	spec, runDir := testJail(t, "file")
	archive := filepath.Join(t.TempDir(), "root.tar.gz")
	if err := repackArchive(spec.Lower, archive); err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, spec)
	spec.Jail.Directory, spec.Lower, spec.Jail.Tarball = "", "", archive
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, e := runWith(t, st, RunOptions{Argv: []string{"/bin/sh", "-c", "test -x /probe && echo unpacked > /etc/marker && cat /etc/marker"}, Root: true}); e.Code != 0 || out != "unpacked\n" {
		t.Fatalf("run in unpacked root: %v %q", e, out)
	}
	if _, err := os.Stat(filepath.Join(st.Root, "etc/marker")); err != nil {
		t.Errorf("the session's root on the host does not show the write: %v", err)
	}
	if err := End(runDir, st.ID); err != nil {
		t.Fatal(err)
	}
	if archiveHas(t, archive, "etc/marker") {
		t.Errorf("a session without repack changed the archive")
	}
	if _, err := os.Stat(st.Upper); !os.IsNotExist(err) {
		t.Errorf("the unpacked root outlived its session: %v", err)
	}

	// Repacked: the next session starts from what the last one left.
	spec.Jail.Repack, spec.Jail.Type = true, "persistent"
	st, err = Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	runWith(t, st, RunOptions{Argv: []string{"/bin/sh", "-c", "echo kept > /etc/kept"}, Root: true})
	if err := End(runDir, st.ID); err != nil {
		t.Fatal(err)
	}
	if !archiveHas(t, archive, "etc/kept") || !archiveHas(t, archive, "probe") {
		t.Errorf("the repacked archive lacks the session's write or the root's files")
	}
	if info, err := os.Stat(archive); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("repacked archive: %v %v", info, err)
	}
	if after := takeSnapshot(t, spec); !before.same(after) {
		t.Errorf("host state changed: before %+v, after %+v", before, after)
	}

	// An archive that is not one: refused before anything is made.
	spec.Jail.Tarball = filepath.Join(t.TempDir(), "root.tar.lzo")
	os.WriteFile(spec.Jail.Tarball, []byte("x"), 0o600)
	if _, err := Begin(spec); err == nil {
		t.Errorf("an .lzo archive was accepted")
	}
	if after := takeSnapshot(t, spec); !before.same(after) {
		t.Errorf("a refused archive left state: before %+v, after %+v", before, after)
	}
}

func TestSessionForSchrootChroots(t *testing.T) {
	spec, runDir := testJail(t, "feat")
	// The host file is under /tmp: no tmpfs there, which would hide it.
	spec.Jail.Mounts = []string{"proc", "dev"}
	hostFile := filepath.Join(t.TempDir(), "copied")
	os.WriteFile(hostFile, []byte("from the host\n"), 0o644)
	spec.Jail.CopyFiles = []string{hostFile, "/nonexistent/skipped"}
	spec.Jail.Personality = "linux32"
	spec.Jail.OverlayDir = t.TempDir()
	spec.Labels = map[string]string{"k": "v"}
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	if !strings.HasPrefix(st.Upper, spec.Jail.OverlayDir+"/") {
		t.Errorf("upper %s not in the jail's overlay folder %s", st.Upper, spec.Jail.OverlayDir)
	}
	if got, _ := Get(runDir, st.ID); got.Labels["k"] != "v" {
		t.Errorf("labels not kept: %v", got.Labels)
	}
	if out, _, _ := runWith(t, st, RunOptions{Argv: []string{"cat", hostFile}}); out != "from the host\n" {
		t.Errorf("copied file: %q", out)
	}
	if out, _, _ := runWith(t, st, RunOptions{Argv: []string{"uname", "-m"}}); out != "i686\n" {
		t.Errorf("personality linux32: uname -m = %q", out)
	}

	// Another user: its entries appear in the jail.
	nobody, err := LookupUser(65534, 65534)
	if err != nil {
		t.Skip("no user 65534 on this host")
	}
	out, _, e := runWith(t, st, RunOptions{Argv: []string{"/bin/sh", "-c", "id -u; id -un"}, User: &nobody})
	if e.Code != 0 || out != "65534\n"+nobody.Name+"\n" {
		t.Errorf("as %s: %v %q", nobody.Name, e, out)
	}

	// Working directories tried in turn, the failures worded by the caller.
	notes := &ExecNotes{DirSkipped: "skip %s: %s", DirFallback: "fallback %s", DirFailed: "failed %s: %s", ExecFailed: "exec %s: %s", Status: 9}
	out, stderr, e := runWith(t, st, RunOptions{Argv: []string{"pwd"}, Dir: "/nonexistent", Dirs: []string{"/tmp"}, Notes: notes})
	if e.Code != 0 || out != "/tmp\n" || stderr != "skip /nonexistent: No such file or directory\nfallback /tmp\n" {
		t.Errorf("fallback: %v %q %q", e, out, stderr)
	}
	_, stderr, e = runWith(t, st, RunOptions{Argv: []string{"pwd"}, Dir: "/nonexistent", Notes: notes})
	if e.Code != 9 || stderr != "failed /nonexistent: No such file or directory\n" {
		t.Errorf("no directory: %v %q", e, stderr)
	}
	_, stderr, e = runWith(t, st, RunOptions{Argv: []string{"no-such-program"}, Notes: notes})
	if e.Code != 9 || stderr != "exec no-such-program: No such file or directory\n" {
		t.Errorf("no program: %v %q", e, stderr)
	}
	// A program other than argv[0]: a login shell's "-sh".
	out, _, _ = runWith(t, st, RunOptions{Argv: []string{"-sh", "-c", "echo $0"}, Program: "/bin/sh"})
	if out != "-sh\n" {
		t.Errorf("argv[0] = %q, want -sh", out)
	}
	// A death by signal is told from an exit.
	_, _, e = runWith(t, st, RunOptions{Argv: []string{"/bin/sh", "-c", "kill -KILL $$"}})
	if e.Signal != syscall.SIGKILL || e.Code != 128+9 {
		t.Errorf("killed: %+v", e)
	}
}
