package store

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMergeOverlay changes an overlay in every way a package upgrade can,
// then checks that the merged tree is what the overlay showed, that the
// lower tree is untouched, and that unchanged files are shared with it.
func TestMergeOverlay(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounts an overlay: run as root")
	}
	base := t.TempDir()
	lower, upper, work, mnt, dst := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "mnt"), filepath.Join(base, "dst")
	for _, d := range []string{upper, work, mnt, dst} {
		os.Mkdir(d, 0o755)
	}
	fill(t, lower, "b")
	for _, d := range []string{"gone/sub", "replaced/old", "keep/deep"} {
		os.MkdirAll(filepath.Join(lower, d), 0o755)
	}
	os.WriteFile(filepath.Join(lower, "keep/deep/f"), []byte("deep"), 0o600)
	os.WriteFile(filepath.Join(lower, "replaced/old/f"), []byte("old"), 0o644)
	before, err := BuildIndex(lower)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("overlay", mnt, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work+",redirect_dir=off,metacopy=off,index=off"); err != nil {
		t.Fatal(err)
	}
	mounted := true
	defer func() {
		if mounted {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	}()
	script := `set -e
echo changed > etc/b.conf
chmod 600 etc/a.conf
rm usr/bin/tool
rm -r gone
rm -r replaced && mkdir -p replaced/new && echo new > replaced/new/f
ln -sfn usr/sbin bin
mkdir -p new/dir && echo fresh > new/dir/file && ln new/dir/file new/link
`
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = mnt
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("change the overlay: %v\n%s", err, out)
	}
	want, err := BuildIndex(mnt)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	if err := MergeOverlay(lower, upper, dst, nil); err != nil {
		t.Fatal(err)
	}
	got, err := BuildIndex(dst)
	if err != nil {
		t.Fatal(err)
	}
	compareIndexes(t, "merged", got, want)
	after, err := BuildIndex(lower)
	if err != nil {
		t.Fatal(err)
	}
	compareIndexes(t, "lower", after, before)
	ino := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	if ino(filepath.Join(lower, "keep/deep/f")) != ino(filepath.Join(dst, "keep/deep/f")) {
		t.Error("an unchanged file was copied, not shared")
	}
	if ino(filepath.Join(lower, "etc/a.conf")) == ino(filepath.Join(dst, "etc/a.conf")) {
		t.Error("a file whose mode changed is shared with the lower tree")
	}
}

func compareIndexes(t *testing.T, what string, got, want []Entry) {
	t.Helper()
	g := map[string]*Entry{}
	for i := range got {
		g[got[i].Path] = &got[i]
	}
	for i := range want {
		w := &want[i]
		e := g[w.Path]
		switch {
		case e == nil:
			t.Errorf("%s: %s missing", what, w.Path)
		case !e.Same(w) || (w.Type == TypeDir && e.MTime != w.MTime):
			t.Errorf("%s: %s is %+v, want %+v", what, w.Path, *e, *w)
		}
		delete(g, w.Path)
	}
	for p := range g {
		t.Errorf("%s: %s is extra", what, p)
	}
}
