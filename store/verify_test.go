package store

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// writeFiles writes path → content below root, folders as needed, every
// file dated the same.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	when := time.Unix(1700000000, 0)
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, when, when)
	}
}

// dpkgTree is a small merged-/usr tree with a dpkg database:
//   - demo ships bin/tool (through the bin -> usr/bin symlink), its
//     copyright, the conffile etc/demo.conf and usr/bin/other, which
//     package div diverts to usr/bin/other.demo;
//   - div ships its own usr/bin/other;
//   - the copyright was edited after unpacking and the conffile too.
func dpkgTree(t *testing.T, root string) {
	t.Helper()
	writeFiles(t, root, map[string]string{
		"usr/bin/tool":                 "tool",
		"usr/bin/other":                "div's other",
		"usr/bin/other.demo":           "demo's other",
		"usr/share/doc/demo/copyright": "edited",
		"etc/demo.conf":                "edited by the admin",
		"var/lib/dpkg/info/demo.md5sums": md5hex("tool") + "  bin/tool\n" + md5hex("copyright") + "  usr/share/doc/demo/copyright\n" +
			md5hex("demo's other") + "  usr/bin/other\n" + md5hex("conf") + "  etc/demo.conf\n",
		"var/lib/dpkg/info/demo.list":   "/bin/tool\n/usr/share/doc/demo/copyright\n/usr/bin/other\n/etc/demo.conf\n",
		"var/lib/dpkg/info/div.md5sums": md5hex("div's other") + "  usr/bin/other\n",
		"var/lib/dpkg/info/div.list":    "/usr/bin/other\n",
		"var/lib/dpkg/diversions":       "/usr/bin/other\n/usr/bin/other.demo\ndiv\n",
		"var/lib/dpkg/status": "Package: demo\nStatus: install ok installed\nMaintainer: x <x@example.org>\nArchitecture: all\nVersion: 1.0\n" +
			"Conffiles:\n /etc/demo.conf " + md5hex("conf") + "\nDescription: demo\n\n" +
			"Package: div\nStatus: install ok installed\nMaintainer: x <x@example.org>\nArchitecture: all\nVersion: 1.0\nDescription: div\n",
	})
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "var/lib/dpkg/updates"), 0o755)
}

func commitTree(t *testing.T, fill func(root string)) *Image {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stg, err := s.NewStaging()
	if err != nil {
		t.Fatal(err)
	}
	fill(stg.Root())
	img, err := stg.Commit("v", &Manifest{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func find(l []PathChange, path string) *PathChange {
	for i := range l {
		if l[i].Path == path {
			return &l[i]
		}
	}
	return nil
}

func paths(l []PathChange) []string {
	out := []string{}
	for _, c := range l {
		out = append(out, c.Path)
	}
	return out
}

func TestVerifyIndex(t *testing.T) {
	img := commitTree(t, func(root string) {
		writeFiles(t, root, map[string]string{"etc/a.conf": "a", "etc/b.conf": "b", "usr/bin/tool": "tool", "usr/share/doc/x": "x"})
		os.Symlink("usr/bin", filepath.Join(root, "bin"))
	})
	r, err := Verify(img)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || !r.Indexed || r.Paths != 10 || r.Packages != 0 || len(r.Notes) != 1 {
		t.Fatalf("a fresh image: %+v; want OK, indexed, 10 paths, a note that there is no dpkg database", r)
	}

	rootfs := img.RootFS()
	os.WriteFile(filepath.Join(rootfs, "usr/bin/tool"), []byte("TOOL!"), 0o644) // content
	os.Remove(filepath.Join(rootfs, "etc/a.conf"))                              // missing
	os.WriteFile(filepath.Join(rootfs, "etc/new"), []byte("n"), 0o644)          // extra
	os.Chmod(filepath.Join(rootfs, "usr/share/doc/x"), 0o600)                   // mode only
	os.Remove(filepath.Join(rootfs, "bin"))                                     // a symlink retargeted
	os.Symlink("/", filepath.Join(rootfs, "bin"))
	r, err = Verify(img)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() {
		t.Fatal("Verify found nothing in a changed tree")
	}
	if c := find(r.Changed, "usr/bin/tool"); c == nil || !c.Content || !slices.Contains(c.Fields, "content") || !strings.Contains(strings.Join(c.Details, " "), "size 4 → 5") {
		t.Errorf("changed content: %+v", c)
	}
	if c := find(r.Changed, "usr/share/doc/x"); c == nil || c.Content || !c.Metadata || !slices.Equal(c.Fields, []string{"mode"}) || c.Details[0] != "mode 0644 → 0600" {
		t.Errorf("changed mode: %+v", c)
	}
	if c := find(r.Changed, "bin"); c == nil || !c.Content || !slices.Contains(c.Fields, "link") {
		t.Errorf("retargeted symlink: %+v", c)
	}
	if got := paths(r.Changed); len(got) != 3 {
		t.Errorf("changed: %v, want bin, usr/bin/tool, usr/share/doc/x", got)
	}
	if got := paths(r.Missing); !slices.Equal(got, []string{"etc/a.conf"}) {
		t.Errorf("missing: %v", got)
	}
	// bin now points at the host's root: the walk must not enter it.
	if got := paths(r.Extra); !slices.Equal(got, []string{"etc/new"}) {
		t.Errorf("extra: %v", got)
	}
}

func TestVerifyMD5Sums(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	img := commitTree(t, func(root string) {
		dpkgTree(t, root)
		// A symlink out of the root, and a package that lists a file
		// through it with the outside file's md5sum: found missing
		// inside the root, never read outside it.
		os.Symlink(outside, filepath.Join(root, "escape"))
		f, _ := os.OpenFile(filepath.Join(root, "var/lib/dpkg/info/demo.md5sums"), os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(md5hex("secret") + "  escape/secret\n")
		f.Close()
	})
	r, err := Verify(img)
	if err != nil {
		t.Fatal(err)
	}
	if r.Packages != 2 || r.Files != 5 { // the conffile is left out
		t.Errorf("checked %d packages, %d files; want 2, 5", r.Packages, r.Files)
	}
	// The index agrees with the tree; dpkg does not about the copyright.
	c := find(r.Changed, "usr/share/doc/demo/copyright")
	if c == nil || c.Package != "demo" || !slices.Equal(c.Fields, []string{"md5sum"}) || !c.Content {
		t.Errorf("md5sums mismatch: %+v", c)
	}
	if m := find(r.Missing, "escape/secret"); m == nil || m.Package != "demo" {
		t.Errorf("a path through a symlink out of the root: missing = %+v; it was followed out", r.Missing)
	}
	// The diverted file and the conffile are fine.
	if len(r.Changed) != 1 || len(r.Missing) != 1 || len(r.Extra) != 0 {
		t.Errorf("changed %v, missing %v, extra %v; want only the copyright and escape/secret", paths(r.Changed), paths(r.Missing), paths(r.Extra))
	}

	// A file changed since the commit is one finding, under the name the
	// index uses (bin/tool is usr/bin/tool), from both checks.
	os.WriteFile(filepath.Join(img.RootFS(), "usr/bin/tool"), []byte("TOOL"), 0o644)
	os.Remove(filepath.Join(img.RootFS(), "usr/bin/other.demo"))
	r, err = Verify(img)
	if err != nil {
		t.Fatal(err)
	}
	c = find(r.Changed, "usr/bin/tool")
	if c == nil || c.Package != "demo" || !slices.Contains(c.Fields, "content") || !slices.Contains(c.Fields, "md5sum") {
		t.Errorf("changed packaged file: %+v", c)
	}
	if m := find(r.Missing, "usr/bin/other.demo"); m == nil || m.Package != "demo" {
		t.Errorf("missing diverted file: %+v", r.Missing)
	}
	if got := paths(r.Changed); !slices.Equal(got, []string{"usr/bin/tool", "usr/share/doc/demo/copyright"}) {
		t.Errorf("changed: %v", got)
	}
}

// TestVerifyWithoutIndex: a version committed before files.zst existed is
// checked against dpkg's md5sums only, and the report says so.
func TestVerifyWithoutIndex(t *testing.T) {
	img := commitTree(t, func(root string) { dpkgTree(t, root) })
	if err := os.Remove(filepath.Join(img.Dir, IndexFile)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(img.RootFS(), "usr/bin/tool"), []byte("TOOL"), 0o644)
	os.WriteFile(filepath.Join(img.RootFS(), "etc/new"), []byte("n"), 0o644)
	r, err := Verify(img)
	if err != nil {
		t.Fatal(err)
	}
	if r.Indexed || len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "no file index") {
		t.Errorf("indexed %v, notes %q; want a note that there is no index", r.Indexed, r.Notes)
	}
	if got := paths(r.Changed); !slices.Equal(got, []string{"usr/bin/tool", "usr/share/doc/demo/copyright"}) {
		t.Errorf("changed: %v", got)
	}
	if len(r.Extra) != 0 {
		t.Errorf("extra %v: md5sums cannot know of added files", paths(r.Extra))
	}

	// With neither an index nor md5sums there is nothing to vouch for.
	bare := commitTree(t, func(root string) { writeFiles(t, root, map[string]string{"a": "a"}) })
	os.Remove(filepath.Join(bare.Dir, IndexFile))
	if _, err := Verify(bare); err == nil || !strings.Contains(err.Error(), "nothing to check") {
		t.Errorf("Verify of an image without index or md5sums: %v", err)
	}
}

// TestVerifyAgainstDpkg compares the md5sums findings with dpkg --verify's
// on the same tree.
func TestVerifyAgainstDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	img := commitTree(t, func(root string) { dpkgTree(t, root) })
	os.Remove(filepath.Join(img.RootFS(), "usr/bin/other"))
	// dpkg --verify finds a diverted file missing, but does not check its
	// content (it looks its md5sum up under the diverted name); Verify
	// does, as TestVerifyMD5Sums shows.
	os.Remove(filepath.Join(img.RootFS(), "usr/bin/other.demo"))
	out, err := exec.Command("dpkg", "--root="+img.RootFS(), "--verify").Output()
	if err != nil {
		t.Skipf("dpkg --verify on a test tree: %v", err)
	}
	var want []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		// "??5??????   /path", "??5?????? c /conffile", "missing     /path"
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			want = append(want, strings.TrimPrefix(f[1], "/"))
		}
	}
	slices.SortFunc(want, strings.Compare)
	r, err := Verify(img)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range [][]PathChange{r.Changed, r.Missing} {
		for _, c := range l {
			if c.Package != "" {
				got = append(got, c.Path)
			}
		}
	}
	slices.SortFunc(got, strings.Compare)
	if len(want) != 3 || !slices.Equal(got, want) {
		t.Errorf("dpkg --verify finds %v, Verify %v\n%s", want, got, out)
	}
}
