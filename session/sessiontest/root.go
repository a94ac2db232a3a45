// Package sessiontest builds small roots to open sessions in, for tests of
// the session layer and of the commands above it, as net/http/httptest
// serves tests of HTTP clients.
//
// A root is made of the host's own installed packages (dpkg, dash,
// coreutils, libc and what they depend on, see archivetest.MinimalSystem),
// so it needs a Debian or Ubuntu host, and root to be used in a session.
package sessiontest

import (
	"fmt"
	"os"
	"path/filepath"

	"jailmgr/debian/archivetest"
)

// MinimalRoot writes a small root into dir (which is created): the files
// of the host's minimal system, the folders sessions mount on, and a
// passwd and group that know root only.
func MinimalRoot(dir string, extra ...string) error {
	pkgs, err := archivetest.MinimalSystem(extra...)
	if err != nil {
		return fmt.Errorf("build test root: %w", err)
	}
	if err := writePackages(dir, pkgs); err != nil {
		return fmt.Errorf("build test root: %w", err)
	}
	for _, d := range []string{"proc", "sys", "dev", "tmp", "home", "etc", "mnt", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\n"), 0o644)
}

func writePackages(dir string, pkgs []archivetest.Package) error {
	for _, p := range pkgs {
		for _, f := range p.Files {
			path := filepath.Join(dir, filepath.Clean("/"+f.Path))
			switch {
			case f.Mode.IsDir():
				os.MkdirAll(path, 0o755)
			case f.Link != "":
				os.MkdirAll(filepath.Dir(path), 0o755)
				if st, err := os.Lstat(path); err == nil && st.IsDir() {
					continue // a folder another package ships keeps its files
				}
				os.Remove(path)
				if err := os.Symlink(f.Link, path); err != nil {
					return err
				}
			case f.HardLink != "":
				os.MkdirAll(filepath.Dir(path), 0o755)
				os.Remove(path)
				if err := os.Link(filepath.Join(dir, filepath.Clean("/"+f.HardLink)), path); err != nil {
					return err
				}
			default:
				os.MkdirAll(filepath.Dir(path), 0o755)
				mode := f.Mode.Perm()
				if mode == 0 {
					mode = 0o644
				}
				if err := os.WriteFile(path, f.Data, mode); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
