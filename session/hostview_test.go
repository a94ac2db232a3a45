package session

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// These tests attack, as users other than root, what a session leaves on
// the host (issue 11): the host's view of its root, its state folder and
// the persistent upper dir of an image jail.

// nobody is the uid the attacks run as.
const nobody = 65534

// runAs runs name as uid:gid, with no supplementary groups, and returns
// its combined output.
func runAs(uid, gid int, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// reachable opens the test's temporary folders above dir to everyone's
// search (t.TempDir makes them 0700), so that what is tested is jailmgr's
// own folders' modes, not the test harness's.
func reachable(t *testing.T, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Dir(dir); d != tmp && d != "/" && strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
}

// userJail is testJail opened for a user other than root, with the run
// folder reachable by that user.
func userJail(t *testing.T, name string, u User) (*Spec, string) {
	spec, runDir := testJail(t, name)
	spec.User = u
	reachable(t, runDir)
	return spec, runDir
}

// plainUser is a session owner that is neither root nor nobody.
var plainUser = User{Name: "jmtest", UID: 4242, GID: 4242, Home: "/", Shell: "/bin/sh"}

func TestHostViewIsNosuidNodev(t *testing.T) {
	owner, err := LookupUser(nobody, nobody)
	if err != nil {
		t.Skipf("no user %d on this host: %v", nobody, err)
	}
	spec, runDir := userJail(t, "view", owner)
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	if st.Root != filepath.Join(st.Dir, "root") {
		t.Errorf("State.Root = %s, want %s/root (what info and --location report)", st.Root, st.Dir)
	}
	// A setuid-root program in the session's root, as a root-user inside
	// (or an image) could leave it: through the host's view, its owner
	// runs it as themself.
	id, err := exec.LookPath("id")
	if err != nil {
		t.Skip("no id on the host")
	}
	suid := filepath.Join(st.Root, "suid-id")
	if err := copyFile(id, suid, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runAs(owner.UID, owner.GID, suid, "-u")
	if err != nil {
		t.Fatalf("run %s as %d: %v %s", suid, owner.UID, err, out)
	}
	if got := strings.TrimSpace(out); got != strconv.Itoa(owner.UID) {
		t.Errorf("a setuid-root file in the session's root, run from the host by uid %d, ran with euid %s", owner.UID, got)
	}
	// A device node made inside opens nothing from the host, even for root.
	node := filepath.Join(st.Root, "null2")
	if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if f, err := os.OpenFile(node, os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Errorf("a device node in the session's root opens from the host")
	} else if !errors.Is(err, unix.EACCES) {
		t.Errorf("open %s: %v, want EACCES", node, err)
	}

	// Inside, the jail's root keeps its setuid and device semantics.
	out, code := runIn(t, st, false, nil, "/bin/sh", "-c", "/suid-id -u; cat /proc/self/status /proc/self/mountinfo")
	if code != 0 {
		t.Fatalf("run inside: %d %s", code, out)
	}
	lines := strings.Split(out, "\n")
	euid, nnp, rootOpts := strings.TrimSpace(lines[0]), "", ""
	for _, l := range lines[1:] {
		if v, ok := strings.CutPrefix(l, "NoNewPrivs:"); ok {
			nnp = strings.TrimSpace(v)
		}
		if f := strings.Fields(l); len(f) > 5 && f[4] == "/" {
			rootOpts = f[5]
		}
	}
	if rootOpts == "" {
		t.Fatalf("no / in the jail's mountinfo:\n%s", out)
	}
	for _, o := range strings.Split(rootOpts, ",") {
		if o == "nosuid" || o == "nodev" {
			t.Errorf("the jail's own / is mounted %s inside (%s)", o, rootOpts)
		}
	}
	// Commands run with no_new_privs (set by the init for every command,
	// with or without seccomp), under which the kernel ignores setuid bits:
	// the bit is inert inside because of that, not because of the mount.
	want := "0"
	if nnp == "1" {
		want = strconv.Itoa(owner.UID)
	}
	if euid != want {
		t.Errorf("/suid-id inside as uid %d (no_new_privs %s): euid %s, want %s", owner.UID, nnp, euid, want)
	}
	t.Logf("inside the jail: setuid-root id as uid %d gives euid %s (no_new_privs=%s); / is mounted %s", owner.UID, euid, nnp, rootOpts)
}

func TestSessionFolderClosedToOthers(t *testing.T) {
	spec, runDir := userJail(t, "closed", plainUser)
	// A run folder made by an older version, open to listing.
	if err := os.Chmod(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	if fi, err := os.Stat(runDir); err != nil || fi.Mode().Perm() != 0o711 {
		t.Errorf("run folder: %v, %v; want 0711", fi.Mode(), err)
	}
	// Anyone else: nothing below the folder, not even whether it exists.
	for _, p := range []string{st.Root, filepath.Join(st.Root, "etc"), filepath.Join(st.Dir, "state.json"), filepath.Join(st.Dir, "ctl.sock"), privateRoot(st.Dir), filepath.Join(privateRoot(st.Dir), "etc")} {
		if out, err := runAs(nobody, nobody, "stat", p); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("uid %d: stat %s: %v %s", nobody, p, err, out)
		}
	}
	if out, err := runAs(nobody, nobody, "ls", runDir); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("uid %d lists the run folder: %v %s", nobody, err, out)
	}
	// The owner: the session's root, and nothing else of the folder.
	if out, err := runAs(plainUser.UID, plainUser.GID, "ls", st.Root); err != nil || !strings.Contains(out, "etc") {
		t.Errorf("the owner cannot list %s: %v %s", st.Root, err, out)
	}
	for _, c := range [][]string{{"ls", st.Dir}, {"ls", filepath.Dir(privateRoot(st.Dir))}, {"stat", privateRoot(st.Dir)}, {"cat", filepath.Join(st.Dir, "state.json")}, {"cat", filepath.Join(st.Dir, "spec.json")}} {
		if out, err := runAs(plainUser.UID, plainUser.GID, c[0], c[1:]...); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("the owner: %s: %v %s", strings.Join(c, " "), err, out)
		}
	}
	for _, f := range []string{"state.json", "lock", "spec.json", "init.log", "ctl.sock"} {
		var s unix.Stat_t
		if err := unix.Lstat(filepath.Join(st.Dir, f), &s); err != nil || s.Uid != 0 || s.Mode&0o777 != 0o600 {
			t.Errorf("%s: uid %d mode %o, %v; want root's 0600", f, s.Uid, s.Mode&0o777, err)
		}
	}
	var s unix.Stat_t
	if err := unix.Stat(filepath.Dir(privateRoot(st.Dir)), &s); err != nil || s.Mode&0o777 != 0o700 {
		t.Errorf("private: mode %o, %v; want 0700", s.Mode&0o777, err)
	}
	if n, _ := unix.Getxattr(filepath.Dir(privateRoot(st.Dir)), aclXattr, nil); n > 0 {
		t.Errorf("private carries an ACL")
	}
}

func TestSessionFolderOfRootHasNoACL(t *testing.T) {
	spec, runDir := testJail(t, "rootacl")
	st, err := Begin(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer End(runDir, st.ID)
	var s unix.Stat_t
	if err := unix.Stat(st.Dir, &s); err != nil || s.Mode&0o777 != 0o700 {
		t.Errorf("state folder of root's session: mode %o, %v; want 0700", s.Mode&0o777, err)
	}
	if n, _ := unix.Getxattr(st.Dir, aclXattr, nil); n > 0 {
		t.Errorf("the state folder of root's session carries an ACL")
	}
}

func TestBeginWithoutACLsFailsClearly(t *testing.T) {
	spec, runDir := userJail(t, "noacl", plainUser)
	// ramfs has no extended attributes, so no ACLs.
	if err := unix.Mount("ramfs", runDir, "ramfs", 0, "mode=711"); err != nil {
		t.Skipf("mount ramfs: %v", err)
	}
	defer unix.Unmount(runDir, unix.MNT_DETACH)
	before := takeSnapshot(t, spec)
	st, err := Begin(spec)
	if err == nil {
		End(runDir, st.ID)
	}
	if !errors.Is(err, ErrNoACL) || !strings.Contains(err.Error(), "ACL support") {
		t.Errorf("Begin on a run folder without ACLs: %v, want ErrNoACL saying what to do", err)
	}
	if after := takeSnapshot(t, spec); !before.same(after) {
		t.Errorf("host state changed: before %+v, after %+v", before, after)
	}
	// Root's sessions need no ACL there.
	spec.User, _ = LookupUser(0, 0)
	st, err = Begin(spec)
	if err != nil {
		t.Fatalf("root's session on a run folder without ACLs: %v", err)
	}
	End(runDir, st.ID)
}

func TestSearchOnlyACL(t *testing.T) {
	want := []byte{
		2, 0, 0, 0, // version
		1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, // user::rwx
		2, 0, 1, 0, 0x92, 0x10, 0, 0, // user:4242:--x
		4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // group::---
		0x10, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, // mask::--x
		0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // other::---
	}
	if got := searchOnlyACL(4242); string(got) != string(want) {
		t.Errorf("searchOnlyACL(4242) =\n% x\nwant\n% x", got, want)
	}
	getfacl, err := exec.LookPath("getfacl")
	if err != nil || os.Getuid() != 0 {
		t.Skip("the check against getfacl needs getfacl (package acl) and root")
	}
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := grantSearch(dir, 4242); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(getfacl, "-n", "-p", "--omit-header", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	if w := "user::rwx\nuser:4242:--x\ngroup::---\nmask::--x\nother::---\n"; strings.TrimSpace(string(out)) != strings.TrimSpace(w) {
		t.Errorf("getfacl says\n%s\nwant\n%s", out, w)
	}
}

// mountFlagsOf returns the per-mount options of the mount at path.
func mountFlagsOf(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var opts string
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 5 && f[4] == path {
			opts = f[5] // the last one mounted there is on top
		}
	}
	if opts == "" {
		t.Fatalf("nothing mounted at %s", path)
	}
	return strings.Split(opts, ",")
}

func hasAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestViewKeepsSubmountFlags(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounts need root; CI runs as root")
	}
	for name, mount := range map[string]func(root, view string) error{"mount_setattr": mountView, "remount": mountViewRemount} {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			root, view := filepath.Join(base, "root"), filepath.Join(base, "view")
			sub := filepath.Join(root, "sub")
			for _, d := range []string{root, view} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// The root is a mount of its own (as a session's is), with a
			// read-only, noexec submount.
			if err := unix.Mount("tmpfs", root, "tmpfs", 0, ""); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(root, unix.MNT_DETACH)
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("tmpfs", sub, "tmpfs", unix.MS_RDONLY|unix.MS_NOEXEC, ""); err != nil {
				t.Fatal(err)
			}
			if err := mount(root, view); err != nil {
				t.Fatal(err)
			}
			defer unmountAll(view)
			if got := mountFlagsOf(t, view); !hasAll(got, "rw", "nosuid", "nodev") {
				t.Errorf("view: %v, want rw,nosuid,nodev", got)
			}
			if got := mountFlagsOf(t, filepath.Join(view, "sub")); !hasAll(got, "ro", "nosuid", "nodev", "noexec") {
				t.Errorf("view of the submount: %v, want ro,nosuid,nodev,noexec kept", got)
			}
			// The root itself is untouched.
			for _, p := range []string{root, sub} {
				if got := mountFlagsOf(t, p); hasAll(got, "nosuid") || hasAll(got, "nodev") {
					t.Errorf("%s became %v", p, got)
				}
			}
		})
	}
}

// persistentImageJail is testJail as a persistent image jail: an overlay
// whose upper dir, in the store's persist/, outlives its sessions.
func persistentImageJail(t *testing.T, name string) (*Spec, string) {
	spec, runDir := testJail(t, name)
	spec.ImageRef, spec.Jail.Image, spec.Jail.Type = name+":1", name, "persistent"
	spec.Jail.Directory = ""
	return spec, runDir
}

func TestPersistentImageJailOneSession(t *testing.T) {
	spec, runDir := persistentImageJail(t, "onesess")
	begin := func() (*State, error) {
		s := *spec
		return Begin(&s)
	}
	// Two begins at once: one wins, the other is refused.
	type result struct {
		st  *State
		err error
	}
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() {
			st, err := begin()
			results <- result{st, err}
		}()
	}
	var first *State
	var refused error
	for i := 0; i < 2; i++ {
		r := <-results
		if r.err == nil {
			if first != nil {
				defer End(runDir, first.ID)
				defer End(runDir, r.st.ID)
				t.Fatalf("two sessions of a persistent image jail at once: %s and %s", first.ID, r.st.ID)
			}
			first = r.st
		} else {
			refused = r.err
		}
	}
	if first == nil {
		t.Fatalf("neither begin succeeded: %v", refused)
	}
	defer End(runDir, first.ID) // for a test that stops half-way; ended twice is harmless
	var inUse *InUseError
	if !errors.As(refused, &inUse) || (inUse.Session != "" && inUse.Session != first.ID) {
		t.Errorf("the second begin: %v, want an InUseError naming %s", refused, first.ID)
	}
	// The refused begin left nothing behind.
	if states, err := List(runDir); err != nil || len(states) != 1 {
		t.Errorf("after a refused begin the run folder holds %d sessions (%v), want 1", len(states), err)
	}
	// A begin once the first is up names it, and what to do.
	other, err := begin()
	if err == nil {
		End(runDir, other.ID)
	}
	if !errors.As(err, &inUse) || inUse.Session != first.ID || !strings.Contains(err.Error(), "jailmgr session end "+first.ID) {
		t.Errorf("begin beside %s: %v", first.ID, err)
	}
	// Only the init holds the lock: not Begin's process, not the commands.
	if leaked := fdsTo(t, os.Getpid(), persistLockName); leaked != "" {
		t.Errorf("Begin's process keeps %s", leaked)
	}
	if fdsTo(t, first.InitPid, persistLockName) == "" {
		t.Errorf("the init does not hold %s", persistLockName)
	}
	if out, code := runIn(t, first, true, nil, "/bin/ls", "-l", "/proc/self/fd/"); code != 0 || strings.Contains(out, persistLockName) {
		t.Errorf("a command inherits the lock: %d %s", code, out)
	}
	if _, code := runIn(t, first, true, nil, "/bin/sh", "-c", "echo kept > /etc/persist-marker"); code != 0 {
		t.Fatalf("write failed: %d", code)
	}
	if err := End(runDir, first.ID); err != nil {
		t.Fatal(err)
	}
	// Ended: the next one begins, and sees what the first wrote.
	second, err := begin()
	if err != nil {
		t.Fatalf("begin after end: %v", err)
	}
	defer End(runDir, second.ID)
	if out, _ := runIn(t, second, true, nil, "/bin/cat", "/etc/persist-marker"); out != "kept\n" {
		t.Errorf("a persistent image jail lost its write: %q", out)
	}
	// An init killed outright releases the jail too, once its monitor has
	// torn the rest down.
	if err := syscall.Kill(second.InitPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, second)
	third, err := begin()
	if err != nil {
		t.Fatalf("begin after the init was killed: %v", err)
	}
	End(runDir, third.ID)
}

func TestPersistentDirectoryJailsShare(t *testing.T) {
	spec, runDir := testJail(t, "pdir")
	spec.Jail.Type = "persistent" // a plain bind of the directory: no upper dir to share
	var ids []string
	for i := 0; i < 2; i++ {
		s := *spec
		st, err := Begin(&s)
		if err != nil {
			t.Fatalf("session %d of a persistent directory jail: %v", i, err)
		}
		ids = append(ids, st.ID)
	}
	for _, id := range ids {
		if err := End(runDir, id); err != nil {
			t.Error(err)
		}
	}
}

// fdsTo returns the first descriptor of pid that points at a file named
// name, as "fd -> path", or "".
func fdsTo(t *testing.T, pid int, name string) string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && filepath.Base(l) == name {
			return e.Name() + " -> " + l
		}
	}
	return ""
}

// waitGone waits until the session's monitor has torn it down.
func waitGone(t *testing.T, st *State) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(st.Dir); errors.Is(err, os.ErrNotExist) {
			return
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 10_000_000}, nil)
	}
	t.Fatalf("session %s was not torn down after its init died", st.ID)
}
