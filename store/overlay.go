package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MergeOverlay builds dst, an empty folder, as the tree an overlay of upper
// over lower shows: whatever upper holds is moved in, everything else is
// hard-linked from lower, so a new version shares every file it did not
// change with the version it came from. lower is never written to. upper
// must come from an overlay mounted without redirects or metacopy (whole
// files, whiteouts as 0/0 character devices, opaque folders marked with
// trusted.overlay.opaque). With clamp set, what comes from upper gets no
// mtime later than it.
func MergeOverlay(lower, upper, dst string, clamp *time.Time) error {
	m := &merger{lower: lower, upper: upper, dst: dst, clamp: clamp}
	var lst unix.Stat_t
	if err := unix.Lstat(lower, &lst); err != nil {
		return fmt.Errorf("merge overlay: %w", err)
	}
	fromUpper, err := m.dir("", true, true)
	if err != nil {
		return fmt.Errorf("merge overlay into %s: %w", dst, err)
	}
	if err := setOwnerMode(dst, &lst); err != nil {
		return err
	}
	mtime := lst.Mtim
	if fromUpper {
		var ust unix.Stat_t
		if err := unix.Lstat(upper, &ust); err == nil {
			mtime = m.clamped(ust.Mtim)
		}
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{mtime, mtime}, unix.AT_SYMLINK_NOFOLLOW)
}

type merger struct {
	lower, upper, dst string
	clamp             *time.Time
}

func (m *merger) clamped(t unix.Timespec) unix.Timespec {
	if m.clamp != nil && t.Nano() > m.clamp.UnixNano() {
		return unix.NsecToTimespec(m.clamp.UnixNano())
	}
	return t
}

// dir fills dst/rel from lower/rel (when inLower) and upper/rel (when
// inUpper), and reports whether anything came from upper.
func (m *merger) dir(rel string, inLower, inUpper bool) (bool, error) {
	names := map[string]bool{}
	for _, layer := range []struct {
		base string
		ok   bool
	}{{m.lower, inLower}, {m.upper, inUpper}} {
		if !layer.ok {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(layer.base, rel))
		if err != nil {
			return false, err
		}
		for _, e := range ents {
			names[e.Name()] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	fromUpper := false
	for _, name := range sorted {
		r := filepath.Join(rel, name)
		var ust, lst unix.Stat_t
		hasUpper := inUpper && unix.Lstat(filepath.Join(m.upper, r), &ust) == nil
		hasLower := inLower && unix.Lstat(filepath.Join(m.lower, r), &lst) == nil
		switch {
		case hasUpper:
			fromUpper = true
			if ust.Mode&unix.S_IFMT == unix.S_IFCHR && ust.Rdev == 0 {
				continue // a whiteout: deleted in the overlay
			}
			if ust.Mode&unix.S_IFMT == unix.S_IFDIR {
				opaque := getxattr(filepath.Join(m.upper, r), "trusted.overlay.opaque") == "y"
				below := hasLower && !opaque && lst.Mode&unix.S_IFMT == unix.S_IFDIR
				if err := m.makeDir(r, filepath.Join(m.upper, r), &ust, below, true); err != nil {
					return false, err
				}
				continue
			}
			if err := m.moveUp(r, &ust); err != nil {
				return false, err
			}
		case hasLower:
			if lst.Mode&unix.S_IFMT == unix.S_IFDIR {
				if err := m.makeDir(r, filepath.Join(m.lower, r), &lst, true, false); err != nil {
					return false, err
				}
				continue
			}
			if err := os.Link(filepath.Join(m.lower, r), filepath.Join(m.dst, r)); err != nil {
				return false, err
			}
		}
	}
	return fromUpper, nil
}

// makeDir creates dst/rel like src, fills it, then sets its times.
func (m *merger) makeDir(rel, src string, st *unix.Stat_t, inLower, inUpper bool) error {
	d := filepath.Join(m.dst, rel)
	if err := os.Mkdir(d, 0o700); err != nil {
		return err
	}
	if err := copyXattrs(src, d); err != nil {
		return err
	}
	if err := setOwnerMode(d, st); err != nil {
		return err
	}
	if _, err := m.dir(rel, inLower, inUpper); err != nil {
		return err
	}
	t := st.Mtim
	if inUpper {
		t = m.clamped(t)
	}
	return unix.UtimesNanoAt(unix.AT_FDCWD, d, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
}

// moveUp moves a non-folder entry of upper into dst, without the overlay's
// own attributes.
func (m *merger) moveUp(rel string, st *unix.Stat_t) error {
	src := filepath.Join(m.upper, rel)
	for _, name := range listxattrs(src) {
		if strings.HasPrefix(name, "trusted.overlay.") {
			if err := unix.Lremovexattr(src, name); err != nil {
				return fmt.Errorf("%s: remove %s: %w", src, name, err)
			}
		}
	}
	if t := m.clamped(st.Mtim); t != st.Mtim {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, src, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return os.Rename(src, filepath.Join(m.dst, rel))
}

func setOwnerMode(p string, st *unix.Stat_t) error {
	if err := unix.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "chown", Path: p, Err: err}
	}
	// After chown, which clears setgid.
	if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	return nil
}

func listxattrs(p string) []string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return nil
	}
	buf := make([]byte, sz)
	if sz, err = unix.Llistxattr(p, buf); err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00")
}

func getxattr(p, name string) string {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// copyXattrs copies a folder's extended attributes but the overlay's own.
func copyXattrs(src, dst string) error {
	for _, name := range listxattrs(src) {
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		sz, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			return err
		}
		val := make([]byte, sz)
		if sz, err = unix.Lgetxattr(src, name, val); err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, val[:sz], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("%s: set %s: %w", dst, name, err)
		}
	}
	return nil
}
