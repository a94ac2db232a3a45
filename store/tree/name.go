// Package tree writes archive entries into a root directory so that nothing
// ever lands outside it, whatever the entries' names, link targets and the
// symlinks already in the tree say.
//
// Names with ".." or a leading "/" are refused outright. Every other path is
// resolved by the kernel with openat2(RESOLVE_BENEATH): a symlink that would
// lead out of the root (absolute, or climbing with "..") fails the lookup
// instead of being followed, and so does a mount point crossing. The last
// component is never followed: it is replaced, not written through.
//
// It needs Linux 5.6 or later (openat2).
package tree

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrUnsafePath is wrapped by errors for names or links that would leave the root.
	ErrUnsafePath = errors.New("tree: unsafe path")
	// ErrConflict is wrapped when an entry cannot replace what is in the tree.
	ErrConflict = errors.New("tree: conflicting entry")
	// ErrUnsupported is wrapped for entry types the tree does not write.
	ErrUnsupported = errors.New("tree: unsupported entry type")
)

// PathError records the operation and the entry name that failed.
type PathError struct {
	Op   string
	Name string
	Err  error
}

func (e *PathError) Error() string { return "tree: " + e.Op + " " + e.Name + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// CleanName turns an archive name ("./usr/bin/x", "usr/bin/x/") into a
// relative path ("usr/bin/x"); "" is the root itself. Absolute names and
// names with a ".." component are refused.
func CleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: %q has a NUL byte", ErrUnsafePath, name)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %q is absolute", ErrUnsafePath, name)
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: %q climbs out with '..'", ErrUnsafePath, name)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "/"), nil
}
