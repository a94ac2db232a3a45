//go:build !jailmgr_init

package session

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/conf"
	"jailmgr/session/cgroup"
	"jailmgr/store/tree"
)

// Begin opens a session: a state folder, a cgroup with the jail's limits,
// the session's root mounted on the host (an overlay over the image, or the
// jail's directory), and the session init running inside new namespaces.
// On any error everything it made is undone.
func Begin(s *Spec) (st *State, err error) {
	if err := checkSpec(s); err != nil {
		return nil, err
	}
	if s.RunDir == "" {
		s.RunDir = DefaultRunDir
	}
	id := s.Name
	if id == "" {
		var b [4]byte
		rand.Read(b[:])
		// An image reference's ':' has no place in a file name.
		id = strings.ReplaceAll(s.Jail.Name, ":", "_") + "-" + hex.EncodeToString(b[:])
	}
	if !ValidID(id) {
		return nil, fmt.Errorf("begin session: %q is not a valid session name (letters, digits, '.', '-', '_')", id)
	}
	if err := makeRunDir(s.RunDir); err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	dir := filepath.Join(s.RunDir, id)
	// Root's alone: the owner is let through (search only) once the
	// host's view of the root is in place, below.
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("begin session: a session named %s is already open", id)
		}
		return nil, fmt.Errorf("begin session: %w", err)
	}
	var instance [16]byte
	rand.Read(instance[:])
	st = &State{
		ID: id, Instance: hex.EncodeToString(instance[:]), Jail: s.Jail.Name, Image: s.ImageRef, Type: s.Jail.Type, Dir: dir,
		Root: filepath.Join(dir, "root"), User: s.User.Name, UID: s.User.UID, GID: s.User.GID,
		Cgroup: "jailmgr/" + id, Created: time.Now().UTC().Truncate(time.Second),
		Environment: s.Jail.Environment, RootAllowed: CheckAccess(s.Jail, s.User, true) == nil,
		Labels: s.Labels,
	}
	if s.Jail.Repack {
		st.Repack = s.Jail.Tarball
	}
	if s.ImageRef == "" {
		st.Directory = s.Lower
	}
	// The state is written at once (without an init) so that a crash
	// during setup leaves something recover can find and clean; then the
	// lock that keeps teardowns apart, made with the folder and never by
	// a teardown (see teardownRepack), which finds the state beside it.
	if err := writeState(st); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "lock"), nil, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("begin session: %w", err)
	}
	// Undone from this variable: the error returns below set st to nil.
	made := st
	defer func() {
		if err != nil {
			teardown(made)
		}
	}()
	// The jail's root is mounted before the init starts, so that the
	// init's mount namespace, a copy of the host's, has it. The init then
	// comes up (a Go process takes a while) while the cgroup is made; it
	// waits for "go" before it looks at its root.
	private := privateRoot(dir)
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{filepath.Dir(private), 0o700}, {private, 0o755}, {st.Root, 0o755}} {
		if err := os.Mkdir(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("begin session: %w", err)
		}
	}
	var held *os.File
	if upper := persistentUpper(s); upper != "" {
		// One session at a time on the jail's upper dir; the lock is
		// taken before anything of the session touches it.
		if held, err = lockPersist(upper, s.Jail.Name, id); err != nil {
			return nil, fmt.Errorf("begin session: %w", err)
		}
		// The init holds it from its start; this copy goes with Begin.
		defer held.Close()
	}
	if err := mountRoot(s, st, private); err != nil {
		return nil, err
	}
	initp, err := startInit(s, st, private, held)
	if err != nil {
		return nil, err
	}
	defer initp.close()
	if err := writeState(st); err != nil {
		return nil, err
	}
	g, err := cgroup.Create(st.Cgroup, cgroup.Limits{Memory: s.Jail.Memory, CPUs: s.Jail.CPUs, Pids: s.Jail.Pids})
	if err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	if testHookBeforeRelease != nil {
		testHookBeforeRelease(st)
	}
	if err := initp.release(g); err != nil {
		return nil, err
	}
	// The host's view, and the owner's way to it, come only once the init
	// has set the jail up: its setup goes by path (the guards over /proc,
	// read-only binds, /dev), and an owner who could reach the tree then
	// could rename a mount point away from under it.
	if err := mountView(private, st.Root); err != nil {
		return nil, err
	}
	if st.UID != 0 {
		if err := grantSearch(dir, st.UID); err != nil {
			return nil, fmt.Errorf("begin session: %w", err)
		}
	}
	if !s.Automatic {
		Watch(st)
	}
	return st, nil
}

// testHookBeforeRelease, set by tests, sees the session just before its
// init is told to set the jail up.
var testHookBeforeRelease func(*State)

// mountRoot mounts the session's root on the host at target, root's alone:
// the jail's own root, with setuid and device semantics.
func mountRoot(s *Spec, st *State, target string) error {
	if s.Jail.Tarball != "" {
		// The unpacked root is the session's own, like an upper dir: it
		// goes when the session does.
		st.Upper = filepath.Join(s.StoreDir, "sessions", st.ID)
		// Recorded before it is made, so that a crash leaves it to recover.
		if err := recordUpper(st, false); err != nil {
			return err
		}
		unpacked := filepath.Join(st.Upper, "rootfs")
		if err := os.Mkdir(unpacked, 0o755); err != nil {
			return fmt.Errorf("begin session: %w", err)
		}
		if err := unpackArchive(s.Jail.Tarball, unpacked); err != nil {
			return fmt.Errorf("begin session in %s: %w", s.Jail.Name, err)
		}
		root := unpacked
		if r := strings.Trim(s.Jail.TarballRoot, "/"); r != "" {
			// The root is a folder inside the archive: resolved beneath
			// what was unpacked, never out of it.
			fd, err := openBeneath(unpacked, r)
			if err != nil {
				return fmt.Errorf("begin session in %s: location %s in %s: %w", s.Jail.Name, s.Jail.TarballRoot, s.Jail.Tarball, err)
			}
			defer unix.Close(fd)
			root = fmt.Sprintf("/proc/self/fd/%d", fd)
		}
		if err := unix.Mount(root, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return &MountError{Op: "bind", Source: root, Target: target, Flags: unix.MS_BIND | unix.MS_REC, Err: err}
		}
		return nil
	}
	if s.ImageRef == "" && s.Jail.Type == "persistent" {
		if err := unix.Mount(s.Lower, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return &MountError{Op: "bind", Source: s.Lower, Target: target, Flags: unix.MS_BIND | unix.MS_REC, Err: err}
		}
		return nil
	}
	// An overlay: the image (or directory) stays untouched below, writes
	// go to an upper dir on the store's filesystem.
	switch {
	case s.Jail.Type == "persistent":
		st.Upper, st.Keep = persistentUpper(s), true
	case s.Jail.OverlayDir != "":
		st.Upper = filepath.Join(s.Jail.OverlayDir, st.ID)
	default:
		st.Upper = filepath.Join(s.StoreDir, "sessions", st.ID)
	}
	// Recorded before it is made, so that a crash leaves it to recover.
	if err := recordUpper(st, st.Keep); err != nil {
		return err
	}
	upper, work := filepath.Join(st.Upper, "upper"), filepath.Join(st.Upper, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil && !(st.Keep && errors.Is(err, os.ErrExist)) {
			return fmt.Errorf("begin session: %w", err)
		}
	}
	for _, p := range []string{s.Lower, upper, work} {
		if strings.ContainsAny(p, ",:\\") {
			return fmt.Errorf("begin session: overlay path %q holds ',', ':' or '\\'", p)
		}
	}
	opts := "lowerdir=" + s.Lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		return &MountError{Op: "mount", Source: "overlay " + opts, Target: target, FSType: "overlay", Err: err}
	}
	return nil
}

// persistentUpper is the folder of the upper dir that the sessions of a
// persistent image jail share, one at a time; "" for other jails (a
// persistent directory jail is a plain bind, with no upper dir).
func persistentUpper(s *Spec) string {
	if s.Jail.Tarball != "" || s.ImageRef == "" || s.Jail.Type != "persistent" {
		return ""
	}
	return filepath.Join(s.StoreDir, "persist", s.Jail.Name)
}

// makeUpper makes the folder of a session's upper (or unpacked) root,
// root's alone: what is written in the jail — setuid files of a root-user
// among them — lies there with its own modes, and the jail's overlay-dir
// may be a folder others can enter. A persistent jail's folder outlives
// its sessions; one made by an older version is tightened.
func makeUpper(dir string, keep bool) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, os.ErrExist) {
		if !keep {
			// Not this session's: a teardown must not remove it.
			return fmt.Errorf("begin session: %w", &upperExistsError{dir})
		}
		var st unix.Stat_t
		if err = unix.Lstat(dir, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			err = fmt.Errorf("%s is not a folder", dir)
		}
		if err == nil {
			err = os.Chmod(dir, 0o700)
		}
	}
	if err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	return nil
}

// upperExistsError is a session's upper folder found already there: a
// leftover, or a folder someone put where the session's would go.
type upperExistsError struct{ dir string }

func (e *upperExistsError) Error() string {
	return e.dir + " exists already (a leftover of another session?): it is left alone; remove it, or begin the session under another name"
}

// recordUpper records where a session's upper folder goes, then makes it;
// if something is there already, the record is taken back, so that no
// teardown removes what the session did not make.
func recordUpper(st *State, keep bool) error {
	if err := writeState(st); err != nil {
		return err
	}
	err := makeUpper(st.Upper, keep)
	var exists *upperExistsError
	if errors.As(err, &exists) {
		st.Upper = ""
		if werr := writeState(st); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

// makeRunDir makes the folder of state folders, and the default's parent
// (/run/jailmgr), root's with search for all (0711): a session's owner
// passes through to the session's root; nobody lists who has sessions. A
// folder with other modes (made by an older version) is put right.
func makeRunDir(runDir string) error {
	if err := os.MkdirAll(runDir, 0o711); err != nil {
		return err
	}
	dirs := []string{runDir}
	if parent := filepath.Dir(runDir); runDir == DefaultRunDir && filepath.Base(parent) == "jailmgr" {
		// /run/jailmgr is jailmgr's too; a parent of another name (a
		// build's own run folder) is the system's, and left alone.
		dirs = append(dirs, parent)
	}
	for _, d := range dirs {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s is not a folder", d)
		}
		if st.Uid != 0 || st.Gid != 0 {
			if err := unix.Lchown(d, 0, 0); err != nil {
				return err
			}
		}
		if st.Mode&0o7777 != 0o711 {
			if err := unix.Chmod(d, 0o711); err != nil {
				return err
			}
		}
	}
	return nil
}

// startedInit is a session init that waits for "go".
type startedInit struct {
	st          *State
	logf        *os.File
	goW, readyR *os.File
}

// startInit starts the session init in new namespaces. It waits, without
// looking at the jail, until release has put it into the cgroup.
//
// held, if not nil, is handed to the init as fd 5 and stays open there for
// the init's life, as nothing of the init closes it: the lock of a
// persistent jail. Like everything the init inherits it is marked
// close-on-exec before a command starts (fds_linux.go), so no command
// holds it.
func startInit(s *Spec, st *State, root string, held *os.File) (in *startedInit, err error) {
	cfg := initConfig{
		Root: root, Mounts: s.Jail.Mounts, Hostname: s.Jail.Hostname,
		Network: s.Jail.Network, Seccomp: s.Jail.Seccomp, Capabilities: s.Jail.Capabilities, User: s.User,
		IdleTimeout: int64(s.Jail.IdleTimeout), MaxLifetime: int64(s.Jail.MaxLifetime),
		Limits:      sessionLimits{Memory: s.Jail.Memory, CPUs: s.Jail.CPUs, Pids: s.Jail.Pids},
		Personality: -1,
	}
	for _, b := range s.Jail.Binds {
		cfg.Binds = append(cfg.Binds, bindMount(b))
	}
	if p, ok := conf.Personalities[s.Jail.Personality]; ok {
		cfg.Personality = int64(p)
	}
	if p := s.Jail.Seccomp; p != "default" && p != "none" {
		if cfg.SeccompProfile, err = os.ReadFile(p); err != nil {
			return nil, fmt.Errorf("begin session: read seccomp profile: %w", err)
		}
	}
	if cfg.Hostname == "" {
		cfg.Hostname = s.Jail.Name
	}
	// Host files the jail asks for are copied when the host has them, as
	// schroot's copyfiles does (it skips missing ones with a warning).
	for _, f := range append([]string{"/etc/resolv.conf", "/etc/hosts"}, s.Jail.CopyFiles...) {
		if data, err := os.ReadFile(f); err == nil {
			cfg.Files = append(cfg.Files, copiedFile{Path: f, Data: data})
		}
	}
	cfg.Build = buildStamp
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "spec.json"), data, 0o600); err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	program, err := initProgram()
	if err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	in = &startedInit{st: st}
	defer func() {
		if err != nil {
			in.close()
		}
	}()
	if in.logf, err = os.OpenFile(filepath.Join(st.Dir, "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	goR, goW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	defer goR.Close()
	in.goW = goW
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	defer readyW.Close()
	in.readyR = readyR
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if s.Jail.Network == "none" {
		flags |= unix.CLONE_NEWNET
	}
	cmd := exec.Command(program, sessionInitArg, st.Dir)
	cmd.Args[0] = "jailmgr-init"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, in.logf, in.logf
	cmd.ExtraFiles = []*os.File{goR, readyW}
	if held != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, held)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Setsid: true}
	if s.Automatic {
		// The session is the caller's: killed with it, its commands go too
		// (as pid 1, the init takes its namespace down), and what is left
		// is torn down by the monitor if one was started, else by recover.
		// (The signal comes when the thread that started the init exits;
		// jailmgr's threads last as long as its process.)
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("begin session: start init: %w", err)
	}
	st.InitPid = cmd.Process.Pid
	st.InitStart, _ = processStart(st.InitPid)
	// The init outlives a 'session begin'; a longer-lived caller (run,
	// tests) reaps it when it ends.
	go cmd.Wait()
	return in, nil
}

// release puts the init into the session's cgroup, tells it to go on, and
// waits until it reports that the jail is set up.
func (in *startedInit) release(g *cgroup.Group) error {
	err := g.Add(in.st.InitPid)
	if err == nil {
		_, err = in.goW.Write([]byte("go\n"))
	}
	if err != nil {
		// The init may have failed already (it reads its config before
		// "go"); its own word on why is the better message.
		in.goW.Close()
		if msg := in.readReady(); msg != "" && msg != errNoGo.Error() {
			return fmt.Errorf("begin session: set up jail: %s", msg)
		}
		return fmt.Errorf("begin session: start init: %w", err)
	}
	msg := in.readReady()
	if msg != "ok" {
		return fmt.Errorf("begin session: set up jail: %s", msg)
	}
	return nil
}

// readReady reads the init's report: "ok", or what went wrong.
func (in *startedInit) readReady() string {
	line, err := bufio.NewReader(io.LimitReader(in.readyR, 64<<10)).ReadString('\n')
	if msg := strings.TrimSpace(line); msg != "" {
		return msg
	}
	return fmt.Sprintf("init exited (%v); see %s", err, filepath.Join(in.st.Dir, "init.log"))
}

// close closes the pipes to the init; one that has not been told to go
// then gives up and exits.
func (in *startedInit) close() {
	for _, f := range []*os.File{in.logf, in.goW, in.readyR} {
		if f != nil {
			f.Close()
		}
	}
}

// initProgram is the program a session init runs: jailmgr-init where it
// is installed with this jailmgr (in the same folder, or in
// ../lib/jailmgr), else jailmgr itself, which has every role. The separate
// init starts in about half the time; it is used only when both carry the
// same build stamp, and only from where nobody but the owner of jailmgr
// could have put it (jailmgr may be setuid root).
func initProgram() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if buildStamp == "" {
		return selfExe, nil
	}
	var me unix.Stat_t
	if err := unix.Stat(self, &me); err != nil {
		return "", err
	}
	dir := filepath.Dir(self)
	for _, p := range []string{filepath.Join(dir, "jailmgr-init"), filepath.Join(filepath.Dir(dir), "lib", "jailmgr", "jailmgr-init")} {
		if ownedLikeSelf(p, me.Uid) && ownedLikeSelf(filepath.Dir(p), me.Uid) {
			return p, nil
		}
	}
	return selfExe, nil
}

// selfExe is how jailmgr runs itself again: the file this process runs,
// whatever is at its path by now. A user may hard-link the setuid jailmgr
// into a folder of theirs and put a program of their own at that name
// while it runs; os.Executable's path would then run that program as root.
const selfExe = "/proc/self/exe"

// ownedLikeSelf tells whether path is a file or folder (not a symlink) of
// root or of jailmgr's owner that nobody else may write.
func ownedLikeSelf(path string, owner uint32) bool {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false
	}
	typ := st.Mode & unix.S_IFMT
	return (typ == unix.S_IFREG || typ == unix.S_IFDIR) && (st.Uid == 0 || st.Uid == owner) && st.Mode&0o022 == 0
}

// openBeneath opens rel beneath dir as an O_PATH descriptor, resolved by
// the kernel without leaving dir.
func openBeneath(dir, rel string) (int, error) {
	root, err := tree.OpenRoot(dir)
	if err != nil {
		return -1, err
	}
	defer root.Close()
	return root.OpenPath(rel)
}
