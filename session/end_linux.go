//go:build !jailmgr_init

package session

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"jailmgr/session/cgroup"
)

// End ends a session: every process in its cgroup is killed, its root is
// unmounted, packed back into its archive if the jail repacks, and its
// cgroup, overlay dirs and state folder are removed.
func End(runDir, id string) error {
	st, err := Get(runDir, id)
	if err != nil {
		return err
	}
	return EndState(st)
}

// EndState is End of the session st describes, read (and its owner
// checked) before: if its name has since gone to another session, that
// one is left alone.
func EndState(st *State) error { return teardownRepack(st, true) }

// teardown removes everything a session made, in reverse order, and is
// safe to run on a half-made session or twice. It holds the session's lock
// so that End and the monitor never tear down at the same time.
//
// Only End repacks an archive: a session that died by itself (a crash, a
// timeout) may have left its root half-written, and recovery must not
// replace a good archive with it.
func teardown(st *State) error { return teardownRepack(st, false) }

func teardownRepack(st *State, repack bool) error {
	// Begin made the lock file with the folder; it is not created here:
	// a teardown that lost the race must not put it back into a folder
	// the winner is removing.
	lock, err := os.OpenFile(filepath.Join(st.Dir, "lock"), os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // already torn down
	}
	if err != nil {
		return fmt.Errorf("end session %s: %w", st.ID, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("end session %s: %w", st.ID, err)
	}
	// The folder is found by the session's name, which a new session may
	// have taken since st was read (its owner ended it, then anyone began
	// another under that name): only the instance st describes is torn
	// down. (Begin writes the state before the lock, so a lock is never
	// without one.)
	cur, err := readState(st.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // already torn down
	}
	if err != nil {
		return fmt.Errorf("end session %s: %w", st.ID, err)
	}
	if cur.Instance != st.Instance {
		return nil // gone; another session has its name now
	}
	var errs []error
	killInit(st)
	if g, err := cgroup.Open(st.Cgroup); err == nil {
		if err := g.Kill(); err != nil {
			errs = append(errs, err)
		}
	} else if !errors.Is(err, cgroup.ErrNotFound) {
		errs = append(errs, err)
	}
	// The init is in the cgroup and died with it; make sure even if the
	// cgroup was lost.
	if st.Alive() {
		syscall.Kill(st.InitPid, syscall.SIGKILL)
		for i := 0; i < 100 && st.Alive(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Every mount the session has on the host is below its state folder
	// (the host's view at <dir>/root, the jail's own root at
	// <dir>/private/root, whatever was mounted below them); unmountAll
	// takes them deepest first. The folder, not the state's word, says
	// where: nothing else of the host is touched.
	if err := unmountAll(st.Dir); err != nil {
		errs = append(errs, err)
	}
	if repack && st.Repack != "" && len(errs) == 0 {
		unpacked := filepath.Join(st.Upper, "rootfs")
		if _, err := os.Stat(unpacked); err == nil {
			if err := repackArchive(unpacked, st.Repack); err != nil {
				// The unpacked root stays, with the state, for another try.
				return fmt.Errorf("end session %s: %w", st.ID, err)
			}
		}
	}
	if g, err := cgroup.Open(st.Cgroup); err == nil {
		if err := g.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if st.Upper != "" && !st.Keep {
		if err := removeTree(st.Upper); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("end session %s: %w", st.ID, errors.Join(errs...))
	}
	if err := os.RemoveAll(st.Dir); err != nil {
		return fmt.Errorf("end session %s: %w", st.ID, err)
	}
	return nil
}

// killInit kills a session's init and waits until it has exited. As pid 1
// of the session's pid namespace it goes last: the kernel kills every other
// process of the namespace and waits for them before the init is gone, so
// the cgroup is then empty, and the kill of the cgroup that follows (for
// whatever escaped the namespace) finds nothing. A pidfd tells of the exit
// at once, where polling the cgroup oversleeps it. Kernels without pidfds
// (before 5.3) leave it all to the cgroup.
func killInit(st *State) {
	if st.InitPid <= 0 {
		return
	}
	fd, err := unix.PidfdOpen(st.InitPid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	// The pidfd pins whichever process has the pid now; Alive checks that
	// it is still the init (by its start time), not a reuse of its pid.
	if !st.Alive() {
		return
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		return
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, int(killInitWait/time.Millisecond)); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// killInitWait bounds killInit's wait; an init stuck in the kernel is
// left to the cgroup's kill, which reports it.
const killInitWait = 2 * time.Second

// unmountAll detaches every mount at or below dir, deepest first.
func unmountAll(dir string) error {
	for i := 0; i < 20; i++ {
		mounts, err := mountsBelow(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		for j := len(mounts) - 1; j >= 0; j-- {
			if err := unix.Unmount(mounts[j], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return &MountError{Op: "unmount", Target: mounts[j], Err: err}
			}
		}
	}
	return fmt.Errorf("unmount %s: mounts keep coming back", dir)
}

// removeTree deletes an overlay upper dir after checking nothing is
// mounted below it.
func removeTree(dir string) error {
	mounts, err := mountsBelow(dir)
	if err != nil {
		return err
	}
	if len(mounts) > 0 {
		return fmt.Errorf("remove %s: still mounted: %s", dir, strings.Join(mounts, ", "))
	}
	return os.RemoveAll(dir)
}

// Recover finds sessions whose init is gone (a crash, a reboot) and tears
// them down; a session whose init is alive is left alone. mine chooses the
// sessions to look at (a user's own); nil looks at every one, and also
// removes what Begins that died early and damaged sessions left, which
// belong to no one it could tell (root's recover). It returns the ids it
// cleaned; a damaged state never stops the others.
func Recover(runDir string, mine func(*State) bool) ([]string, error) {
	states, err := List(runDir)
	if err != nil && !OnlyDamaged(err) {
		return nil, err
	}
	var cleaned []string
	var errs []error
	for _, st := range states {
		if st.Alive() || (mine != nil && !mine(st)) {
			continue
		}
		if err := teardown(st); err != nil {
			errs = append(errs, err)
			continue
		}
		cleaned = append(cleaned, st.ID)
	}
	if mine != nil {
		return cleaned, errors.Join(errs...)
	}
	damaged, _ := damagedIn(err)
	for _, d := range damaged {
		if err := EndDamaged(runDir, d.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		cleaned = append(cleaned, d.ID)
	}
	// State folders without a state file: a Begin that died before its
	// first write; nothing else of theirs exists.
	if ents, err := os.ReadDir(runDir); err == nil {
		for _, e := range ents {
			dir := filepath.Join(runDir, e.Name())
			if _, err := os.Stat(filepath.Join(dir, "state.json")); errors.Is(err, fs.ErrNotExist) && e.IsDir() {
				if m, _ := mountsBelow(dir); len(m) == 0 {
					os.RemoveAll(dir)
					cleaned = append(cleaned, e.Name())
				}
			}
		}
	}
	return cleaned, errors.Join(errs...)
}

// RecoverSession tears down one session if its init is gone, as Recover
// does for all; it reports whether it did. A live session is left alone.
func RecoverSession(runDir, id string) (bool, error) {
	st, err := Get(runDir, id)
	if err != nil {
		return false, err
	}
	if st.Alive() {
		return false, nil
	}
	return true, teardown(st)
}

// Watch starts a small daemon in the host's namespaces that tears the
// session down when its init exits by itself (idle timeout, maximum
// lifetime, a crash, its caller killed), so that nothing is left for
// 'recover'. Begin starts it, except for automatic sessions.
func Watch(st *State) {
	cmd := exec.Command(selfExe, monitorArg, st.Dir, st.Instance)
	cmd.Args[0] = "jailmgr-monitor"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}

// runMonitor waits for the init of the session in dir to exit, then tears
// the session down.
func runMonitor(dir, instance string) int {
	st, err := readState(dir)
	if err != nil {
		return 1
	}
	// A monitor that starts late (a loaded machine) may find its session
	// ended and another begun under its name, not yet with an init: that
	// one is not its to watch, let alone to tear down.
	if st.Instance != instance {
		return 0
	}
	fd, err := unix.PidfdOpen(st.InitPid, 0)
	if err != nil {
		// Gone already (or no pidfd): clean up if it is not alive.
		if !st.Alive() {
			teardown(st)
		}
		return 0
	}
	if !st.Alive() { // the pid was reused before we opened it
		unix.Close(fd)
		teardown(st)
		return 0
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == nil || !errors.Is(err, unix.EINTR) {
			break
		}
	}
	unix.Close(fd)
	teardown(st)
	return 0
}
