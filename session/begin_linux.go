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

const (
	sessionInitArg = "__jailmgr-session-init"
	monitorArg     = "__jailmgr-session-monitor"
	execArg        = "__jailmgr-exec"
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
	if err := os.MkdirAll(s.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	dir := filepath.Join(s.RunDir, id)
	// 0711: the owner reaches the session's root at <dir>/root, where
	// schroot clients (sbuild) copy files in and out; the state and the
	// control socket inside stay root's (0600).
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("begin session: a session named %s is already open", id)
		}
		return nil, fmt.Errorf("begin session: %w", err)
	}
	// The lock that keeps teardowns apart, made with the folder and never
	// by a teardown (see teardownRepack).
	if err := os.WriteFile(filepath.Join(dir, "lock"), nil, 0o600); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("begin session: %w", err)
	}
	st = &State{
		ID: id, Jail: s.Jail.Name, Image: s.ImageRef, Type: s.Jail.Type, Dir: dir,
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
	// Undone from this variable: the error returns below set st to nil.
	made := st
	defer func() {
		if err != nil {
			teardown(made)
		}
	}()
	// The state is written at once (without an init) so that a crash
	// during setup leaves something recover can find and clean.
	if err := writeState(st); err != nil {
		return nil, err
	}
	if _, err := cgroup.Create(st.Cgroup, cgroup.Limits{Memory: s.Jail.Memory, CPUs: s.Jail.CPUs, Pids: s.Jail.Pids}); err != nil {
		return nil, fmt.Errorf("begin session: %w", err)
	}
	if err := mountRoot(s, st); err != nil {
		return nil, err
	}
	if err := writeState(st); err != nil {
		return nil, err
	}
	if err := startInit(s, st); err != nil {
		return nil, err
	}
	if err := writeState(st); err != nil {
		return nil, err
	}
	if !s.Automatic {
		Watch(st)
	}
	return st, nil
}

// mountRoot mounts the session's root on the host at st.Root.
func mountRoot(s *Spec, st *State) error {
	if err := os.Mkdir(st.Root, 0o755); err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	if s.Jail.Tarball != "" {
		// The unpacked root is the session's own, like an upper dir: it
		// goes when the session does.
		st.Upper = filepath.Join(s.StoreDir, "sessions", st.ID)
		if err := writeState(st); err != nil {
			return err
		}
		unpacked := filepath.Join(st.Upper, "rootfs")
		if err := os.MkdirAll(unpacked, 0o755); err != nil {
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
		if err := unix.Mount(root, st.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return &MountError{Op: "bind", Source: root, Target: st.Root, Flags: unix.MS_BIND | unix.MS_REC, Err: err}
		}
		return nil
	}
	if s.ImageRef == "" && s.Jail.Type == "persistent" {
		if err := unix.Mount(s.Lower, st.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return &MountError{Op: "bind", Source: s.Lower, Target: st.Root, Flags: unix.MS_BIND | unix.MS_REC, Err: err}
		}
		return nil
	}
	// An overlay: the image (or directory) stays untouched below, writes
	// go to an upper dir on the store's filesystem.
	switch {
	case s.Jail.Type == "persistent":
		st.Upper, st.Keep = filepath.Join(s.StoreDir, "persist", s.Jail.Name), true
	case s.Jail.OverlayDir != "":
		st.Upper = filepath.Join(s.Jail.OverlayDir, st.ID)
	default:
		st.Upper = filepath.Join(s.StoreDir, "sessions", st.ID)
	}
	// Recorded before it is made, so that a crash leaves it to recover.
	if err := writeState(st); err != nil {
		return err
	}
	upper, work := filepath.Join(st.Upper, "upper"), filepath.Join(st.Upper, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("begin session: %w", err)
		}
	}
	for _, p := range []string{s.Lower, upper, work} {
		if strings.ContainsAny(p, ",:\\") {
			return fmt.Errorf("begin session: overlay path %q holds ',', ':' or '\\'", p)
		}
	}
	opts := "lowerdir=" + s.Lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", st.Root, "overlay", 0, opts); err != nil {
		return &MountError{Op: "mount", Source: "overlay " + opts, Target: st.Root, FSType: "overlay", Err: err}
	}
	return nil
}

// startInit starts the session init in new namespaces, puts it into the
// cgroup, and waits until it reports that the jail is set up.
func startInit(s *Spec, st *State) (err error) {
	cfg := initConfig{
		Root: st.Root, Mounts: s.Jail.Mounts, Binds: s.Jail.Binds, Hostname: s.Jail.Hostname,
		Network: s.Jail.Network, Seccomp: s.Jail.Seccomp, Capabilities: s.Jail.Capabilities, User: s.User,
		IdleTimeout: int64(s.Jail.IdleTimeout), MaxLifetime: int64(s.Jail.MaxLifetime),
		Limits:      sessionLimits{Memory: s.Jail.Memory, CPUs: s.Jail.CPUs, Pids: s.Jail.Pids},
		Personality: -1,
	}
	if p, ok := conf.Personalities[s.Jail.Personality]; ok {
		cfg.Personality = int64(p)
	}
	if p := s.Jail.Seccomp; p != "default" && p != "none" {
		if cfg.SeccompProfile, err = os.ReadFile(p); err != nil {
			return fmt.Errorf("begin session: read seccomp profile: %w", err)
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
	data, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	if err := os.WriteFile(filepath.Join(st.Dir, "spec.json"), data, 0o600); err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(st.Dir, "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	defer logf.Close()
	goR, goW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	defer goR.Close()
	defer goW.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	defer readyR.Close()
	defer readyW.Close()
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if s.Jail.Network == "none" {
		flags |= unix.CLONE_NEWNET
	}
	cmd := exec.Command(self, sessionInitArg, st.Dir)
	cmd.Args[0] = "jailmgr-init"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, logf, logf
	cmd.ExtraFiles = []*os.File{goR, readyW}
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
		return fmt.Errorf("begin session: start init: %w", err)
	}
	st.InitPid = cmd.Process.Pid
	st.InitStart, _ = processStart(st.InitPid)
	// The init outlives a 'session begin'; a longer-lived caller (run,
	// tests) reaps it when it ends.
	go cmd.Wait()
	readyW.Close()
	g, err := cgroup.Open(st.Cgroup)
	if err == nil {
		err = g.Add(st.InitPid)
	}
	if err != nil {
		return fmt.Errorf("begin session: %w", err)
	}
	if _, err := goW.Write([]byte("go\n")); err != nil {
		return fmt.Errorf("begin session: signal init: %w", err)
	}
	goW.Close()
	line, err := bufio.NewReader(io.LimitReader(readyR, 64<<10)).ReadString('\n')
	if line != "ok\n" {
		msg := strings.TrimSpace(line)
		if msg == "" {
			msg = fmt.Sprintf("init exited (%v); see %s", err, filepath.Join(st.Dir, "init.log"))
		}
		return fmt.Errorf("begin session: set up jail: %s", msg)
	}
	return nil
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
