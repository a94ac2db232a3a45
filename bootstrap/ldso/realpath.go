package ldso

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// maxLinks is how many symlinks a lookup follows before it gives up, as
// the kernel's ELOOP limit does.
const maxLinks = 40

// Link is one symlink met while resolving a path. Path is where it is, with
// no symlink in its folder part; Target is what it says, verbatim.
type Link struct {
	Path   string
	Target string
}

// Realpath resolves name (absolute) inside root as the kernel would if root
// were "/": absolute symlink targets start again at root, ".." stops there.
// It returns the path with every symlink resolved and the symlinks it went
// through, in order. Recreating those symlinks and the final file at the
// same paths in another root makes name resolve the same way there.
func Realpath(root, name string) (string, []Link, error) {
	if !path.IsAbs(name) {
		return "", nil, fmt.Errorf("resolve %s: not an absolute path", name)
	}
	var links []Link
	cur := "/"
	rest := strings.Split(name, "/")
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		st, err := os.Lstat(hostPath(root, next))
		if err != nil {
			// Name the path inside root, not this process's view of it.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", nil, fmt.Errorf("resolve %s: %s: %w", name, next, err)
		}
		if st.Mode()&os.ModeSymlink == 0 {
			if len(rest) > 0 && !st.IsDir() && hasComponent(rest) {
				return "", nil, fmt.Errorf("resolve %s: %s: %w", name, next, syscall.ENOTDIR)
			}
			cur = next
			continue
		}
		if len(links) == maxLinks {
			return "", nil, fmt.Errorf("resolve %s: %w", name, syscall.ELOOP)
		}
		target, err := os.Readlink(hostPath(root, next))
		if err != nil {
			return "", nil, fmt.Errorf("resolve %s: %w", name, err)
		}
		links = append(links, Link{Path: next, Target: target})
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, links, nil
}

// hasComponent reports whether a rest of a path names anything beyond
// separators and ".": "x/" and "x/." resolve to x itself.
func hasComponent(rest []string) bool {
	for _, c := range rest {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}

// hostPath is the name of a root's path in this process's view.
func hostPath(root, name string) string {
	if root == "" || root == "/" {
		return name
	}
	return filepath.Join(root, name)
}
