package store

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"jailmgr/store/tree"
)

var isRoot = os.Getuid() == 0

// capNetRaw is security.capability for cap_net_raw+ep (vfs_cap_data
// revision 2: magic with the effective flag, then permitted/inheritable
// for the two 32-bit halves).
var capNetRaw = func() string {
	b := binary.LittleEndian.AppendUint32(nil, 0x02000000|1)
	for _, v := range []uint32{1 << 13, 0, 0, 0} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return string(b)
}()

// fillExportTree writes a tree with every kind of entry an image holds:
// files of odd modes and owners, a setuid and a setgid file, symlinks
// (relative, absolute, dangling, merged /usr), a hard link triple, a
// fifo, devices and a file capability (as root), user.* extended
// attributes, an empty and a sticky folder, long and odd names, and
// times with nanoseconds, before 1970 and after 2242 (past USTAR's field).
func fillExportTree(t *testing.T, root string) {
	t.Helper()
	uid, gid := os.Getuid(), os.Getgid()
	owner := func(u, g int) (int, int) {
		if isRoot {
			return u, g
		}
		return uid, gid
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	times := map[string]int64{}
	dir := func(p string, mode uint32, mtime int64) {
		must(os.MkdirAll(filepath.Join(root, p), 0o755))
		must(os.Chmod(filepath.Join(root, p), os.FileMode(mode&0o777)|modeBits(mode)))
		times[p] = mtime
	}
	file := func(p, body string, mode uint32, u, g int, mtime int64) {
		full := filepath.Join(root, p)
		must(os.MkdirAll(filepath.Dir(full), 0o755))
		must(os.WriteFile(full, []byte(body), 0o600))
		u, g = owner(u, g)
		must(os.Lchown(full, u, g))
		must(os.Chmod(full, os.FileMode(mode&0o777)|modeBits(mode)))
		times[p] = mtime
	}
	link := func(target, p string, mtime int64) {
		must(os.Symlink(target, filepath.Join(root, p)))
		times[p] = mtime
	}
	big := make([]byte, 3<<20)
	rand.New(rand.NewSource(1)).Read(big[:1<<20]) // the rest compresses
	dir("etc", 0o755, 1700000000_123456789)
	dir("usr/bin", 0o755, 1600000000_000000001)
	dir("usr/lib/x86_64-linux-gnu", 0o755, 1500000000_000000005)
	dir("usr", 0o755, 1400000000_000000000)
	dir("srv/empty", 0o700, -315619200_000000000) // 1960
	dir("srv", 0o755, 1700000000_000000000)
	dir("tmp", 0o1777, 1700000000_999999999)
	dir("run", 0o755, 1700000000_000000000)
	dir("dev", 0o755, 1700000000_000000000)
	file("etc/hostname", "jail\n", 0o644, 0, 0, 1700000000_123456789)
	file("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640, 0, 42, 1700000001_000000000)
	file("etc/empty", "", 0o644, 0, 0, 0)
	noPerm := uint32(0o000) // only root reads it
	if !isRoot {
		noPerm = 0o400
	}
	file("etc/none", "no permissions", noPerm, 0, 0, 9000000000_000000000) // 2255: past USTAR's 11 octal digits
	file("etc/old", "old", 0o644, 0, 0, -86400_000000000)
	file("usr/bin/bash", "#!bash", 0o755, 0, 0, 1700000000_000000000)
	file("usr/bin/su", "setuid", 0o4755, 0, 0, 1700000000_000000000)
	file("usr/bin/wall", "setgid", 0o2755, 0, 5, 1700000000_000000000)
	file("usr/bin/ping", "ping", 0o755, 0, 0, 1700000000_000000000)
	file("usr/bin/a", "linked three times", 0o755, 1000, 1000, 1650000000_250000000)
	file("usr/lib/x86_64-linux-gnu/libbig.so.1", string(big), 0o644, 0, 0, 1700000000_000000000)
	file("srv/"+strings.Repeat("long-name-", 12)+"/file with spaces and ünïcode", "x", 0o644, 65534, 65534, 1700000000_000000000)
	must(os.Link(filepath.Join(root, "usr/bin/a"), filepath.Join(root, "usr/bin/b")))
	must(os.Link(filepath.Join(root, "usr/bin/a"), filepath.Join(root, "usr/lib/a-too")))
	link("usr/bin", "bin", 1700000000_000000000)
	link("usr/lib", "lib", 1700000000_000000000)
	link("/usr/share/zoneinfo/Etc/UTC", "etc/localtime", 1700000000_000000007)
	link("../nowhere", "etc/dangling", 1700000000_000000000)
	must(unix.Mkfifo(filepath.Join(root, "run/initctl"), 0o600))
	times["run/initctl"] = 1700000000_000000000
	must(unix.Setxattr(filepath.Join(root, "etc/hostname"), "user.origin", []byte("test\x00with nul"), 0))
	must(unix.Setxattr(filepath.Join(root, "etc/hostname"), "user.a", []byte("first by name"), 0))
	must(unix.Setxattr(filepath.Join(root, "srv"), "user.folder", []byte("yes"), 0))
	if isRoot {
		must(unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(unix.Mknod(filepath.Join(root, "dev/loop0"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
		must(os.Chown(filepath.Join(root, "dev/loop0"), 0, 6))
		times["dev/null"], times["dev/loop0"] = 1700000000_000000000, 1700000000_000000000
		must(unix.Setxattr(filepath.Join(root, "usr/bin/ping"), "security.capability", []byte(capNetRaw), 0))
	}
	// Times last, children before their folders; those not set above
	// (folders made on the way) get a fixed one.
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(root, p); err == nil && d.IsDir() && rel != "." {
			if _, ok := times[rel]; !ok {
				times[rel] = 1700000000_000000000
			}
		}
		return nil
	})
	paths := make([]string, 0, len(times))
	for p := range times {
		paths = append(paths, p)
	}
	for i := range paths {
		for j := i + 1; j < len(paths); j++ {
			if strings.Count(paths[j], "/") > strings.Count(paths[i], "/") {
				paths[i], paths[j] = paths[j], paths[i]
			}
		}
	}
	for _, p := range paths {
		ts := []unix.Timespec{unix.NsecToTimespec(times[p]), unix.NsecToTimespec(times[p])}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, p), ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func modeBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

var testManifest = Manifest{
	Suite: "bookworm", Distribution: "debian", Arch: "amd64", Variant: "minbase", Components: []string{"main"},
	InReleaseSHA256: strings.Repeat("ab", 32), MergedUsr: true,
	Packages: []Package{{Name: "bash", Version: "5.2.15-2+b2", Arch: "amd64", SHA256: strings.Repeat("cd", 32)}},
	Created:  time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Size: 12345,
}

// exportFixture opens a store holding the fixture tree as src:1.
func exportFixture(t *testing.T) (*Store, *Image) {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stg, err := s.NewStaging()
	if err != nil {
		t.Fatal(err)
	}
	fillExportTree(t, stg.Root())
	m := testManifest
	img, err := stg.Commit("src", &m)
	if err != nil {
		t.Fatal(err)
	}
	return s, img
}

func index(t *testing.T, img *Image) []Entry {
	t.Helper()
	entries, err := img.Index()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// sameTree compares two indexes entry by entry, folder times included
// unless a tool is known not to restore them.
func sameTree(t *testing.T, what string, want, got []Entry, dirTimes bool) {
	t.Helper()
	byPath := map[string]*Entry{}
	for i := range got {
		byPath[got[i].Path] = &got[i]
	}
	for i := range want {
		w := &want[i]
		if w.Type == TypeSocket {
			continue
		}
		g := byPath[w.Path]
		switch {
		case g == nil:
			t.Errorf("%s: %s is missing", what, w.Path)
		case !g.Same(w):
			t.Errorf("%s: %s is %s, want %s (%+v vs %+v)", what, w.Path, describe(g), describe(w), g, w)
		case dirTimes && g.MTime != w.MTime:
			t.Errorf("%s: %s has mtime %d, want %d", what, w.Path, g.MTime, w.MTime)
		}
		delete(byPath, w.Path)
	}
	for p := range byPath {
		t.Errorf("%s: %s is extra", what, p)
	}
}

func export(t *testing.T, img *Image, format string) (string, []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "export."+format)
	if err := img.Export(context.Background(), out, ExportOptions{Format: format}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, data
}

// checkNothingCommitted fails unless the store holds exactly the images
// named and an empty staging folder.
func checkNothingCommitted(t *testing.T, s *Store, refs ...string) {
	t.Helper()
	imgs, err := s.Images()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range imgs {
		got = append(got, i.Ref())
	}
	if !reflect.DeepEqual(got, refs) {
		t.Errorf("store holds %v, want %v", got, refs)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir, "staging")); len(ents) != 0 {
		t.Errorf("staging holds %d entries after a failed import", len(ents))
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	s, src := exportFixture(t)
	want := index(t, src)
	if !isRoot {
		t.Log("not root: no devices, capabilities or foreign owners in the tree (CI runs as root)")
	}
	for _, format := range []string{FormatTar, FormatOCI} {
		t.Run(format, func(t *testing.T) {
			file, first := export(t, src, format)
			_, second := export(t, src, format)
			if !bytes.Equal(first, second) {
				t.Errorf("two exports differ (%d and %d bytes)", len(first), len(second))
			}
			img, err := s.Import(context.Background(), file, ImportOptions{Name: "copy-" + format})
			if err != nil {
				t.Fatal(err)
			}
			if img.Ref() != "copy-"+format+":1" {
				t.Errorf("imported as %s", img.Ref())
			}
			// Folder times are compared too: import sets them last.
			sameTree(t, "import", want, index(t, img), true)
			now, err := BuildIndex(img.RootFS())
			if err != nil {
				t.Fatal(err)
			}
			sameTree(t, "imported tree", want, now, true)
			m := img.Manifest
			m.Name, m.Version = src.Manifest.Name, src.Manifest.Version
			if !reflect.DeepEqual(m, src.Manifest) {
				t.Errorf("manifest after import:\n%+v\nwant\n%+v", m, src.Manifest)
			}
			checkHardLinks(t, img.RootFS())
		})
	}
	// Without a name, the carried one: the next version of src.
	file, _ := export(t, src, FormatTar)
	img, err := s.Import(context.Background(), file, ImportOptions{})
	if err != nil || img.Ref() != "src:2" {
		t.Fatalf("import without a name = %v, %v; want src:2", img, err)
	}
	sameTree(t, "src:2", want, index(t, img), true)
}

func checkHardLinks(t *testing.T, root string) {
	t.Helper()
	var a, b, c unix.Stat_t
	for p, st := range map[string]*unix.Stat_t{"usr/bin/a": &a, "usr/bin/b": &b, "usr/lib/a-too": &c} {
		if err := unix.Lstat(filepath.Join(root, p), st); err != nil {
			t.Fatal(err)
		}
	}
	if a.Ino != b.Ino || a.Ino != c.Ino || a.Nlink != 3 {
		t.Errorf("hard links not kept: inodes %d %d %d, %d links", a.Ino, b.Ino, c.Ino, a.Nlink)
	}
}

// TestExportSameBytesFromAnotherCopy builds the tree twice, in two stores
// (other inodes, other creation order of the links): the exports must be
// the same bytes.
func TestExportSameBytesFromAnotherCopy(t *testing.T) {
	_, one := exportFixture(t)
	_, two := exportFixture(t)
	for _, format := range []string{FormatTar, FormatOCI} {
		_, a := export(t, one, format)
		_, b := export(t, two, format)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: exports of two copies of one tree differ", format)
		}
	}
}

// TestCompressorsIgnoreWriteSizes backs the claim that exports are
// deterministic: the zstd and gzip encoders, as Export sets them up, give
// the same bytes however the writes into them are cut (a short read of a
// file must not change the output).
func TestCompressorsIgnoreWriteSizes(t *testing.T) {
	data := make([]byte, 2<<20)
	r := rand.New(rand.NewSource(2))
	for i := range data {
		if i%7 < 3 {
			data[i] = byte(r.Intn(256))
		} else {
			data[i] = byte(i / 1000)
		}
	}
	var zstds, gzips [][]byte
	for _, cut := range []int{512, 7, 300 << 10, 5 << 20} {
		var zb, gb bytes.Buffer
		zw, _ := zstd.NewWriter(&zb, zstdExportOptions()...)
		gw, _ := gzip.NewWriterLevel(&gb, gzipLevel)
		for p := 0; p < len(data); {
			n := min(1+r.Intn(cut), len(data)-p)
			if cut == 512 {
				n = min(512, len(data)-p)
			}
			zw.Write(data[p : p+n])
			gw.Write(data[p : p+n])
			p += n
		}
		zw.Close()
		gw.Close()
		zstds, gzips = append(zstds, zb.Bytes()), append(gzips, gb.Bytes())
	}
	for i := 1; i < len(zstds); i++ {
		if !bytes.Equal(zstds[0], zstds[i]) {
			t.Errorf("zstd: writes cut another way (%d) gave other bytes", i)
		}
		if !bytes.Equal(gzips[0], gzips[i]) {
			t.Errorf("gzip: writes cut another way (%d) gave other bytes", i)
		}
	}
}

// TestTarExportWithTarTools extracts the tar export with GNU tar (and
// bsdtar when installed): the same tree, and not a word on stderr.
func TestTarExportWithTarTools(t *testing.T) {
	_, src := exportFixture(t)
	want := index(t, src)
	file, _ := export(t, src, FormatTar)
	// GNU tar warns of the fixture's odd times (1960, 2255) as it would
	// for any archive of them: not a word about the format is allowed.
	tools := [][]string{{"tar", "--zstd", "--xattrs", "--xattrs-include=*", "--numeric-owner", "--warning=no-timestamp", "-xpf", file, "-C"}}
	if _, err := exec.LookPath("bsdtar"); err == nil {
		tools = append(tools, []string{"bsdtar", "--numeric-owner", "-xpf", file, "-C"})
	} else {
		t.Log("bsdtar not installed (libarchive-tools): only GNU tar checked")
	}
	for _, argv := range tools {
		dir := t.TempDir()
		var stderr bytes.Buffer
		cmd := exec.Command(argv[0], append(argv[1:], dir)...)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v: %s", argv, err, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("%s said: %s", argv[0], stderr.String())
		}
		got, err := BuildIndex(dir)
		if err != nil {
			t.Fatal(err)
		}
		sameTree(t, argv[0], want, got, true)
	}
	out, err := exec.Command("tar", "--zstd", "-tf", file).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -t: %v: %s", err, out)
	}
	if n := strings.Count(string(out), "\n"); n != len(want) {
		t.Errorf("tar -t lists %d entries, the index %d", n, len(want))
	}
}

// TestImportOfGNUTar imports a root made by GNU tar (no carried manifest):
// it needs a name, and gives the same tree.
func TestImportOfGNUTar(t *testing.T) {
	s, src := exportFixture(t)
	file := filepath.Join(t.TempDir(), "root.tar.zst")
	out, err := exec.Command("tar", "--zstd", "--format=posix", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-cf", file, "-C", src.RootFS(), ".").CombinedOutput()
	if err != nil {
		t.Fatalf("tar -c: %v: %s", err, out)
	}
	if _, err := s.Import(context.Background(), file, ImportOptions{}); !errors.Is(err, ErrBadRef) || !strings.Contains(err.Error(), "--name") {
		t.Errorf("import of a plain tar without a name: %v, want ErrBadRef asking for --name", err)
	}
	img, err := s.Import(context.Background(), file, ImportOptions{Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	// GNU tar's PAX atime/ctime records are ignored; all else is kept.
	sameTree(t, "GNU tar import", index(t, src), index(t, img), true)
}

func TestExportRefusesChangedTree(t *testing.T) {
	_, src := exportFixture(t)
	p := filepath.Join(src.RootFS(), "etc/hostname")
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("JAIL\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(src.RootFS(), "etc/hostname"))
	os.Chtimes(p, st.ModTime(), time.Unix(0, 1700000000_123456789))
	for _, format := range []string{FormatTar, FormatOCI} {
		dir := t.TempDir()
		err := src.Export(context.Background(), filepath.Join(dir, "out"), ExportOptions{Format: format})
		if !errors.Is(err, ErrTreeChanged) || !strings.Contains(err.Error(), "etc/hostname") {
			t.Errorf("%s: export of a changed tree: %v, want ErrTreeChanged naming etc/hostname", format, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: a failed export left %s", format, ents[0].Name())
		}
	}
}

// rewriteCarried replaces the index a tar export carries.
func rewriteCarried(t *testing.T, file string, change func([]Entry) []Entry) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	a, err := openTarZst(f, fi.Size())
	f.Close()
	if err != nil || a.index == nil {
		t.Fatalf("open export: %v (index %v)", err, a != nil && a.index != nil)
	}
	data, _ := os.ReadFile(file)
	raw, _ := json.Marshal(a.m)
	b := bytes.NewBuffer(data[:a.tarSize:a.tarSize])
	if err := writeCarried(b, raw, change(a.index)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImportChecksCarriedIndex(t *testing.T) {
	s, src := exportFixture(t)
	cases := map[string]func([]Entry) []Entry{
		"other content": func(es []Entry) []Entry {
			for i := range es {
				if es[i].Path == "etc/hostname" {
					es[i].SHA256 = strings.Repeat("0", 64)
				}
			}
			return es
		},
		"other mode": func(es []Entry) []Entry {
			for i := range es {
				if es[i].Path == "usr/bin/su" {
					es[i].Mode = 0o755
				}
			}
			return es
		},
		"entry missing from the archive": func(es []Entry) []Entry {
			return append(es, Entry{Path: "zzz", Type: TypeFile, Mode: 0o644})
		},
		"entry missing from the index": func(es []Entry) []Entry { return es[:len(es)-1] },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			file, _ := export(t, src, FormatTar)
			rewriteCarried(t, file, change)
			_, err := s.Import(context.Background(), file, ImportOptions{Name: "bad"})
			if !errors.Is(err, ErrCarried) {
				t.Errorf("import: %v, want ErrCarried", err)
			}
			checkNothingCommitted(t, s, "src:1")
		})
	}
}

// maliciousTars are tar streams that try to write outside the root;
// OUTSIDE stands for a folder next to the store (an absolute path).
var maliciousTars = map[string][]*tar.Header{
	"dot-dot":        {{Typeflag: tar.TypeReg, Name: "../x"}},
	"deep dot-dot":   {{Typeflag: tar.TypeDir, Name: "a/"}, {Typeflag: tar.TypeReg, Name: "a/../../x"}},
	"absolute":       {{Typeflag: tar.TypeReg, Name: "OUTSIDE/x"}},
	"symlink escape": {{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "OUTSIDE"}, {Typeflag: tar.TypeReg, Name: "l/x"}},
	"climbing link":  {{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "../../../../../../../../../..OUTSIDE"}, {Typeflag: tar.TypeReg, Name: "up/x"}},
	"hard link out":  {{Typeflag: tar.TypeLink, Name: "h", Linkname: "../../../../../../../../../..OUTSIDE/secret"}},
}

func maliciousTar(t *testing.T, hdrs []*tar.Header, outside string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		h := *h
		h.Name = strings.ReplaceAll(h.Name, "OUTSIDE", outside)
		h.Linkname = strings.ReplaceAll(h.Linkname, "OUTSIDE", outside)
		h.Mode = 0o755
		if h.Typeflag == tar.TypeReg {
			h.Size, h.Mode = 4, 0o644
		}
		h.Uid, h.Gid, h.ModTime = os.Getuid(), os.Getgid(), time.Unix(1700000000, 0)
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("evil"))
		}
	}
	tw.Close()
	return b.Bytes()
}

func writeZstd(t *testing.T, file string, data []byte) {
	t.Helper()
	zw, _ := zstd.NewWriter(nil)
	if err := os.WriteFile(file, zw.EncodeAll(data, nil), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkOutside(t *testing.T, outside string) {
	t.Helper()
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 || ents[0].Name() != "secret" {
		t.Errorf("outside the store now holds %d entries", len(ents))
	}
	if data, _ := os.ReadFile(filepath.Join(outside, "secret")); string(data) != "keep" {
		t.Errorf("outside/secret = %q", data)
	}
}

func TestImportRefusesUnsafeTar(t *testing.T) {
	for name, hdrs := range maliciousTars {
		t.Run(name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			outside := t.TempDir()
			os.WriteFile(filepath.Join(outside, "secret"), []byte("keep"), 0o644)
			file := filepath.Join(t.TempDir(), "evil.tar.zst")
			writeZstd(t, file, maliciousTar(t, hdrs, outside))
			_, err = s.Import(context.Background(), file, ImportOptions{Name: "evil"})
			last := hdrs[len(hdrs)-1]
			if err == nil {
				t.Fatal("import accepted it")
			}
			if !errors.Is(err, tree.ErrUnsafePath) {
				t.Errorf("import: %v, want an unsafe path error", err)
			}
			entry := strings.ReplaceAll(last.Name, "OUTSIDE", outside)
			if !strings.Contains(err.Error(), entry) {
				t.Errorf("the error does not name the entry %q: %v", entry, err)
			}
			checkNothingCommitted(t, s)
			checkOutside(t, outside)
		})
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestAsyncWriter: bytes pass unchanged and in order, and an error of the
// writer behind it reaches the caller.
func TestAsyncWriter(t *testing.T) {
	var b bytes.Buffer
	a := newAsyncWriter(&b)
	var want []byte
	for i := 0; i < 5000; i++ {
		p := bytes.Repeat([]byte{byte(i)}, i%1500)
		want = append(want, p...)
		if _, err := a.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil || !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("asyncWriter passed %d bytes (want %d), %v", b.Len(), len(want), err)
	}
	a = newAsyncWriter(&failAfter{3 << 20})
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = a.Write(make([]byte, 1<<20))
	}
	if cerr := a.Close(); err == nil || cerr == nil || cerr.Error() != "disk full" {
		t.Errorf("write error %v, close error %v; want disk full from both", err, cerr)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("bad block")
	}
	k := min(len(p), f.n, 1000)
	f.n -= k
	return k, nil
}

// TestAsyncReader: bytes pass unchanged and in order, the reader's error
// or end reaches the caller, and Close stops early.
func TestAsyncReader(t *testing.T) {
	data := make([]byte, 5<<20+123)
	rand.New(rand.NewSource(3)).Read(data)
	a := newAsyncReader(bytes.NewReader(data))
	got, err := io.ReadAll(a)
	a.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("asyncReader gave %d bytes (want %d), %v", len(got), len(data), err)
	}
	a = newAsyncReader(&failingReader{3<<20 + 5})
	got, err = io.ReadAll(a)
	a.Close()
	if err == nil || err.Error() != "bad block" || len(got) != 3<<20+5 {
		t.Errorf("after %d bytes: %v; want 3 MiB and 5 bytes, then bad block", len(got), err)
	}
	a = newAsyncReader(bytes.NewReader(data))
	buf := make([]byte, 10)
	if _, err := a.Read(buf); err != nil || !bytes.Equal(buf, data[:10]) {
		t.Errorf("first read: %v", err)
	}
	a.Close()
	a.Close()
}
