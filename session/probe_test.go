package session

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// probeEnv makes the test binary, copied into a jail as /probe, try to
// break out instead of running tests; it prints one name=result a line.
const probeEnv = "JAILMGR_PROBE"

func errName(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.EPERM:
			return "EPERM"
		case unix.EACCES:
			return "EACCES"
		case unix.ESRCH:
			return "ESRCH"
		case unix.EROFS:
			return "EROFS"
		}
		return errno.Error()
	}
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func runProbes() int {
	switch os.Getenv(probeEnv) {
	case "memhog":
		// Touch 256 MiB, a page at a time, so it is really resident.
		var keep [][]byte
		for i := 0; i < 256; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep), "MiB")
		return 0
	case "sync":
		// fsync of a descriptor that is not open fails with EBADF, unless
		// sync calls are suppressed; and no_new_privs as it is.
		fmt.Println("fsync=" + errName(unix.Fsync(-1)))
		nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
		fmt.Println("no_new_privs=" + strconv.Itoa(nnp))
		return 0
	case "ischroot":
		// What debianutils' ischroot compares: / against /proc/1/root.
		var root, init unix.Stat_t
		if err := unix.Stat("/", &root); err != nil {
			fmt.Println("chroot=" + errName(err))
			return 0
		}
		if err := unix.Stat("/proc/1/root", &init); err != nil {
			fmt.Println("chroot=" + errName(err))
			return 0
		}
		fmt.Println("chroot=" + strconv.FormatBool(root.Dev != init.Dev || root.Ino != init.Ino))
		return 0
	case "spin":
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
		}
		return 0
	}
	say := func(k, v string) { fmt.Printf("%s=%s\n", k, v) }
	for _, ns := range []string{"mnt", "pid", "uts", "ipc", "net", "cgroup"} {
		link, _ := os.Readlink("/proc/self/ns/" + ns)
		if link != "" && link != os.Getenv("HOSTNS_"+ns) {
			say("ns."+ns, "new")
		} else {
			say("ns."+ns, "shared:"+link)
		}
	}
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	if n <= 4 {
		say("processes", "few")
	} else {
		say("processes", strconv.Itoa(n))
	}
	marker := os.Getenv("MARKER")
	say("proc1-root", contained("/proc/1/root"+marker))
	say("double-chroot", doubleChroot(marker))
	cwd := unix.AT_FDCWD
	_, _, e := unix.Syscall6(unix.SYS_OPEN_BY_HANDLE_AT, uintptr(cwd), uintptr(unsafe.Pointer(&[64]byte{})), 0, 0, 0, 0)
	say("open_by_handle_at", errName(errnoOrNil(e)))
	os.MkdirAll("/mnt/x", 0o755)
	say("mount", errName(unix.Mount("tmpfs", "/mnt/x", "tmpfs", 0, "")))
	_, _, e = unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER, 0, 0)
	say("unshare-user", errName(errnoOrNil(e)))
	say("mknod-block", errName(unix.Mknod("/tmp/blockdev", unix.S_IFBLK|0o600, int(unix.Mkdev(8, 0)))))
	if err := os.WriteFile("/proc/sysrq-trigger", []byte("h"), 0o200); err != nil {
		say("sysrq-trigger", "refused")
	} else {
		say("sysrq-trigger", "written")
	}
	if err := os.WriteFile("/sys/kernel/uevent_helper", []byte(""), 0o644); err != nil {
		say("sys-readonly", "refused")
	} else {
		say("sys-readonly", "written")
	}
	hostPid, _ := strconv.Atoi(os.Getenv("HOST_PID"))
	say("kill-host", errName(unix.Kill(hostPid, 0)))
	if err := unix.PtraceAttach(1); err != nil {
		say("ptrace-init", "refused")
	} else {
		say("ptrace-init", "attached")
		unix.PtraceDetach(1)
	}
	_, _, e = unix.Syscall6(unix.SYS_KEYCTL, 0, 0, 0, 0, 0, 0)
	say("keyctl", errName(errnoOrNil(e)))
	_, _, e = unix.Syscall(unix.SYS_BPF, 0, 0, 0)
	say("bpf", errName(errnoOrNil(e)))
	return 0
}

func errnoOrNil(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// contained reports whether a host-only path is out of reach.
func contained(path string) string {
	if _, err := os.Stat(path); err == nil {
		return "escaped"
	}
	return "contained"
}

// doubleChroot is the classic escape: chroot into a subfolder, climb with
// "..", chroot("."). Under a pivoted root with the old root detached there
// is nothing above the jail's root to climb to.
func doubleChroot(marker string) string {
	os.MkdirAll("/tmp/inner", 0o755)
	if err := unix.Chroot("/tmp/inner"); err != nil {
		return "chroot: " + errName(err)
	}
	for i := 0; i < 64; i++ {
		unix.Chdir("..")
	}
	if err := unix.Chroot("."); err != nil {
		return "chroot .: " + errName(err)
	}
	if strings.HasPrefix(marker, "/") {
		return contained(marker)
	}
	return "no marker"
}
