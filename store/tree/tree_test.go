package tree

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// entry is a shorthand for a tar entry in the tests below.
func entry(typ byte, name, link string) *tar.Header {
	return &tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: 0o644, ModTime: time.Unix(1700000000, 0), Uid: os.Getuid(), Gid: os.Getgid()}
}

// setup makes base/root (the tree) and base/outside (what must stay untouched).
func setup(t *testing.T) (root *Root, rootDir, outside string) {
	t.Helper()
	base := t.TempDir()
	rootDir = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{rootDir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRoot(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, rootDir, outside
}

func write(r *Root, h *tar.Header, body string) error {
	h.Size = int64(len(body))
	return r.WriteEntry(h, strings.NewReader(body), Options{NoChown: os.Getuid() != 0})
}

// checkOutside fails if anything outside the root changed.
func checkOutside(t *testing.T, outside string) {
	t.Helper()
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "secret" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("outside the root now holds %v, want only [secret]", names)
	}
	if data, _ := os.ReadFile(filepath.Join(outside, "secret")); string(data) != "keep" {
		t.Errorf("outside/secret = %q, want %q", data, "keep")
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(outside), "evil")); err == nil {
		t.Errorf("a file landed next to the root")
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{"./usr/bin/x": "usr/bin/x", "usr//lib/": "usr/lib", "./": "", ".": "", "a/./b": "a/b"} {
		got, err := CleanName(in)
		if err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"../x", "a/../../x", "/etc/passwd", "a/..", "x\x00y"} {
		if _, err := CleanName(in); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("CleanName(%q) error = %v, want ErrUnsafePath", in, err)
		}
	}
}

func TestMaliciousEntries(t *testing.T) {
	cases := []struct {
		name  string
		steps []*tar.Header // all but the last must succeed; the last must be refused
	}{
		{"traversal", []*tar.Header{entry(tar.TypeReg, "./../evil", "")}},
		{"deep traversal", []*tar.Header{entry(tar.TypeDir, "./a/", ""), entry(tar.TypeReg, "./a/../../evil", "")}},
		{"absolute name", []*tar.Header{entry(tar.TypeReg, "/evil", "")}},
		{"write through absolute symlink", []*tar.Header{entry(tar.TypeSymlink, "./link", "OUTSIDE"), entry(tar.TypeReg, "./link/evil", "")}},
		{"write through climbing symlink", []*tar.Header{entry(tar.TypeSymlink, "./up", "../outside"), entry(tar.TypeReg, "./up/evil", "")}},
		{"nested climbing symlink", []*tar.Header{entry(tar.TypeDir, "./usr/", ""), entry(tar.TypeSymlink, "./usr/up", "../../outside"), entry(tar.TypeReg, "./usr/up/evil", "")}},
		{"directory entry over escaping symlink", []*tar.Header{entry(tar.TypeSymlink, "./d", "OUTSIDE"), entry(tar.TypeDir, "./d/", "")}},
		{"hard link out by ..", []*tar.Header{entry(tar.TypeLink, "./hl", "../outside/secret")}},
		{"hard link out by absolute name", []*tar.Header{entry(tar.TypeLink, "./hl", "OUTSIDE/secret")}},
		{"hard link out through symlink", []*tar.Header{entry(tar.TypeSymlink, "./s", "OUTSIDE"), entry(tar.TypeLink, "./hl", "./s/secret")}},
		{"symlink replaced by directory mid-archive", []*tar.Header{entry(tar.TypeDir, "./d/", ""), entry(tar.TypeSymlink, "./d", "OUTSIDE")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _, outside := setup(t)
			for i, h := range c.steps {
				if h.Linkname == "OUTSIDE" {
					h.Linkname = outside
				} else if strings.HasPrefix(h.Linkname, "OUTSIDE/") {
					h.Linkname = outside + strings.TrimPrefix(h.Linkname, "OUTSIDE")
				}
				err := write(r, h, "evil")
				last := i == len(c.steps)-1
				if !last && err != nil {
					t.Fatalf("step %d (%s) failed: %v", i, h.Name, err)
				}
				if last && err == nil {
					t.Fatalf("step %d (%s) was accepted, want it refused", i, h.Name)
				}
				if last && !errors.Is(err, ErrUnsafePath) && !errors.Is(err, ErrConflict) {
					t.Errorf("step %d error = %v, want ErrUnsafePath or ErrConflict", i, err)
				}
			}
			checkOutside(t, outside)
		})
	}
}

func TestFileReplacesSymlinkInsteadOfWritingThrough(t *testing.T) {
	r, rootDir, outside := setup(t)
	if err := write(r, entry(tar.TypeSymlink, "./f", filepath.Join(outside, "secret")), ""); err != nil {
		t.Fatal(err)
	}
	if err := write(r, entry(tar.TypeReg, "./f", ""), "new"); err != nil {
		t.Fatal(err)
	}
	checkOutside(t, outside)
	if data, err := os.ReadFile(filepath.Join(rootDir, "f")); err != nil || string(data) != "new" {
		t.Errorf("root/f = %q, %v; want a regular file with %q", data, err, "new")
	}
}

func TestMergedUsrSymlinkKept(t *testing.T) {
	r, rootDir, _ := setup(t)
	if err := r.MkdirAll("usr/bin"); err != nil {
		t.Fatal(err)
	}
	if err := r.Symlink("usr/bin", "bin"); err != nil {
		t.Fatal(err)
	}
	if err := write(r, entry(tar.TypeDir, "./bin/", ""), ""); err != nil {
		t.Fatalf("directory entry over an in-root symlink: %v", err)
	}
	if err := write(r, entry(tar.TypeReg, "./bin/sh", ""), "#!"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rootDir, "usr/bin/sh")); err != nil {
		t.Errorf("bin/sh did not land in usr/bin: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(rootDir, "bin")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("bin is no longer a symlink")
	}
}

func TestHardLinkInside(t *testing.T) {
	r, rootDir, _ := setup(t)
	if err := write(r, entry(tar.TypeReg, "./usr/bin/a", ""), "data"); err != nil {
		t.Fatal(err)
	}
	if err := write(r, entry(tar.TypeLink, "./usr/bin/b", "./usr/bin/a"), ""); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(filepath.Join(rootDir, "usr/bin/a"))
	b, err := os.Stat(filepath.Join(rootDir, "usr/bin/b"))
	if err != nil || !os.SameFile(a, b) {
		t.Errorf("usr/bin/b is not a hard link of usr/bin/a: %v", err)
	}
}

func TestRemoveContents(t *testing.T) {
	r, rootDir, outside := setup(t)
	for _, h := range []*tar.Header{entry(tar.TypeReg, "./var/lists/a", ""), entry(tar.TypeReg, "./var/lists/partial/b", ""), entry(tar.TypeSymlink, "./var/lists/out", outside)} {
		if err := write(r, h, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.RemoveContents("var/lists"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(rootDir, "var/lists"))
	if err != nil || len(ents) != 0 {
		t.Errorf("var/lists after RemoveContents: %d entries, %v", len(ents), err)
	}
	checkOutside(t, outside)
}

// TestSymlinkNeverGoesMissing rewrites the merged-/usr symlink sbin while
// other writers unpack into sbin/: the symlink must stay a symlink and every
// file must land in usr/sbin (a gap would let a writer make sbin a folder).
func TestSymlinkNeverGoesMissing(t *testing.T) {
	r, rootDir, _ := setup(t)
	if err := r.MkdirAll("usr/sbin"); err != nil {
		t.Fatal(err)
	}
	if err := write(r, entry(tar.TypeSymlink, "sbin", "usr/sbin"), ""); err != nil {
		t.Fatal(err)
	}
	const n = 300
	errs := make(chan error, 2*n)
	go func() {
		for i := 0; i < n; i++ {
			// Alternate targets so that every write replaces the link.
			target := "usr/sbin"
			if i%2 == 1 {
				target = "./usr/sbin"
			}
			errs <- write(r, entry(tar.TypeSymlink, "sbin", target), "")
		}
	}()
	go func() {
		for i := 0; i < n; i++ {
			errs <- write(r, entry(tar.TypeReg, "sbin/tool"+strconv.Itoa(i), ""), "x")
		}
	}()
	for i := 0; i < 2*n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(rootDir, "sbin")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("sbin is no longer a symlink: %v %v", fi.Mode(), err)
	}
	ents, _ := os.ReadDir(filepath.Join(rootDir, "usr/sbin"))
	if len(ents) != n {
		t.Errorf("usr/sbin holds %d files, want %d", len(ents), n)
	}
	top, _ := os.ReadDir(rootDir)
	if len(top) != 2 {
		t.Errorf("root holds %d entries, want usr and sbin (a temporary name was left?)", len(top))
	}
}
