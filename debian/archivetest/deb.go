// Package archivetest builds Debian archives in code and serves them over
// loopback HTTP, the way net/http/httptest serves handlers: a test describes
// packages, gets .deb files, Packages indexes, a Release file signed with a
// fresh OpenPGP key, and a server that can tamper with or truncate what it
// serves and counts what it sent.
//
// Limits: one architecture per archive, flat "dists/SUITE/COMPONENT/binary-ARCH"
// indexes only (no Contents, no i18n, no by-hash), and .deb files written the
// way dpkg-deb writes them but without its checks: a fixture may be as broken
// as the test wants. It writes the formats itself so that it shares no code
// with the readers under test.
package archivetest

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// File is one entry of a package's data.tar.
//
// The type comes from the fields: HardLink set makes a hard link, Link set or
// fs.ModeSymlink a symbolic link, fs.ModeDir a directory, fs.ModeNamedPipe a
// FIFO, fs.ModeDevice a block device (with fs.ModeCharDevice a character
// device), anything else a regular file holding Data. A zero permission means
// the usual one (0644 files, 0755 directories, 0777 links).
type File struct {
	Path     string      // "/usr/bin/x", "usr/bin/x" or "./usr/bin/x"
	Mode     fs.FileMode // permission, setuid/setgid/sticky and type bits
	Data     []byte      // content of a regular file
	Link     string      // symlink target, written as given
	HardLink string      // path of an earlier entry this one is a hard link to
	Uid, Gid int

	// Raw writes Path (and HardLink) into the tarball exactly as given, with
	// no cleaning and no implied parent directories: for hostile fixtures
	// such as "../../etc/passwd".
	Raw bool
}

// ControlFile is one member of control.tar besides control itself: a
// maintainer script, conffiles, md5sums, triggers, shlibs...
type ControlFile struct {
	Name string
	Mode fs.FileMode // 0 means 0755 for maintainer scripts and config, 0644 otherwise
	Data []byte
}

// Package describes one binary package. Only Name is required.
type Package struct {
	Name         string
	Version      string // "1.0" when empty
	Architecture string // the archive's (or this host's) architecture when empty
	Priority     string
	Section      string
	MultiArch    string
	Essential    bool
	Maintainer   string // a placeholder when empty
	Description  string // "NAME test package" when empty; continuation lines start with a space

	Depends, PreDepends, Recommends, Suggests string
	Provides, Conflicts, Breaks, Replaces     string

	Component string // archive component; "main" when empty

	Files   []File
	Control []ControlFile // md5sums is generated unless supplied here

	// Compression of control.tar and data.tar: "xz" (default), "zst",
	// "gz" or "none" (plain .tar).
	Compression string

	// RawData, when set, is served verbatim as the .deb; the Packages index
	// still lists its real size and hashes and the fields above.
	RawData []byte
}

// buildTime is the mtime of every entry, so the same Package always gives
// the same bytes.
var buildTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildDeb returns p as a .deb: an ar archive holding debian-binary,
// control.tar.EXT and data.tar.EXT. If p.RawData is set it is returned as is.
func BuildDeb(p Package) ([]byte, error) {
	if p.RawData != nil {
		return p.RawData, nil
	}
	if p.Name == "" {
		return nil, errors.New("build deb: package has no name")
	}
	ext, err := compressionExt(p.Compression)
	if err != nil {
		return nil, fmt.Errorf("build deb %s: %w", p.Name, err)
	}
	data, md5sums, err := dataTar(p.Files)
	if err != nil {
		return nil, fmt.Errorf("build deb %s: %w", p.Name, err)
	}
	ctrl, err := controlTar(p, md5sums)
	if err != nil {
		return nil, fmt.Errorf("build deb %s: %w", p.Name, err)
	}
	cctrl, err := compress(p.Compression, ctrl)
	if err != nil {
		return nil, fmt.Errorf("build deb %s: compress control.tar: %w", p.Name, err)
	}
	cdata, err := compress(p.Compression, data)
	if err != nil {
		return nil, fmt.Errorf("build deb %s: compress data.tar: %w", p.Name, err)
	}
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	writeArMember(&ar, "debian-binary", []byte("2.0\n"))
	writeArMember(&ar, "control.tar"+ext, cctrl)
	writeArMember(&ar, "data.tar"+ext, cdata)
	return ar.Bytes(), nil
}

// writeArMember writes a common-format ar header, as dpkg-deb does: names
// without the GNU "/" terminator, odd sizes padded with "\n".
func writeArMember(w *bytes.Buffer, name string, data []byte) {
	fmt.Fprintf(w, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", name, buildTime.Unix(), 0, 0, 0o100644, len(data))
	w.Write(data)
	if len(data)%2 == 1 {
		w.WriteByte('\n')
	}
}

func compressionExt(kind string) (string, error) {
	switch kind {
	case "", "xz":
		return ".xz", nil
	case "zst":
		return ".zst", nil
	case "gz":
		return ".gz", nil
	case "none":
		return "", nil
	}
	return "", fmt.Errorf("unknown compression %q (want xz, zst, gz or none)", kind)
}

// compress returns data compressed with kind ("" is xz).
func compress(kind string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch kind {
	case "", "xz":
		// A small dictionary keeps many small fixtures cheap to build.
		w, err = xz.WriterConfig{DictCap: 1 << 20}.NewWriter(&buf)
	case "zst":
		w, err = zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
	case "gz":
		w, err = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case "none":
		return data, nil
	default:
		_, err = compressionExt(kind)
	}
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// entryName is the tar member name dpkg-deb would write: "./usr/bin/x",
// directories with a trailing slash.
func entryName(p string, dir bool) string {
	c := cleanPath(p)
	if c == "" {
		return "./"
	}
	if dir {
		return "./" + c + "/"
	}
	return "./" + c
}

// cleanPath turns "/usr/bin/", "./usr/bin" and "usr/bin" into "usr/bin";
// the root is "".
func cleanPath(p string) string {
	c := path.Clean("/" + p)
	return strings.TrimPrefix(c, "/")
}

func tarMode(m fs.FileMode, def int64) int64 {
	mode := int64(m.Perm())
	if mode == 0 {
		mode = def
	}
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

func owner(id int) string {
	if id == 0 {
		return "root"
	}
	return ""
}

// dataTar writes files as data.tar: the root, then every directory (given
// or implied by a path) parents first, then the other entries in the given
// order with hard links last so that their targets precede them. It also
// returns md5sums for the regular files.
func dataTar(files []File) (tarball, md5sums []byte, err error) {
	dirs := map[string]*File{"": nil}
	var others, links []File
	for i := range files {
		f := &files[i]
		if f.Raw {
			if f.HardLink != "" {
				links = append(links, *f)
			} else {
				others = append(others, *f)
			}
			continue
		}
		c := cleanPath(f.Path)
		for d := path.Dir(c); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = nil
			}
		}
		switch {
		case f.HardLink != "":
			links = append(links, *f)
		case f.Mode&fs.ModeDir != 0 && f.Link == "":
			dirs[c] = f
		default:
			others = append(others, *f)
		}
	}
	dirNames := make([]string, 0, len(dirs))
	for d := range dirs {
		dirNames = append(dirNames, d)
	}
	// Lexical order puts every parent before its children.
	slices.Sort(dirNames)

	var buf, sums bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range dirNames {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: entryName(d, true), Mode: 0o755}
		if f := dirs[d]; f != nil {
			hdr.Mode = tarMode(f.Mode, 0o755)
			hdr.Uid, hdr.Gid = f.Uid, f.Gid
		}
		if err := writeEntry(tw, hdr, nil); err != nil {
			return nil, nil, err
		}
	}
	for _, f := range append(others, links...) {
		name := entryName(f.Path, false)
		if f.Raw {
			name = f.Path
		}
		hdr := &tar.Header{Name: name, Uid: f.Uid, Gid: f.Gid}
		var body []byte
		switch {
		case f.HardLink != "":
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = entryName(f.HardLink, false)
			if f.Raw {
				hdr.Linkname = f.HardLink
			}
			hdr.Mode = tarMode(f.Mode, 0o644)
		case f.Link != "" || f.Mode&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = f.Link
			hdr.Mode = 0o777
		case f.Mode&fs.ModeDir != 0: // only a Raw directory gets here
			hdr.Typeflag = tar.TypeDir
			hdr.Mode = tarMode(f.Mode, 0o755)
		case f.Mode&fs.ModeNamedPipe != 0:
			hdr.Typeflag = tar.TypeFifo
			hdr.Mode = tarMode(f.Mode, 0o644)
		case f.Mode&fs.ModeCharDevice != 0:
			hdr.Typeflag = tar.TypeChar
			hdr.Mode = tarMode(f.Mode, 0o644)
		case f.Mode&fs.ModeDevice != 0:
			hdr.Typeflag = tar.TypeBlock
			hdr.Mode = tarMode(f.Mode, 0o644)
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Mode = tarMode(f.Mode, 0o644)
			hdr.Size = int64(len(f.Data))
			body = f.Data
			sum := md5.Sum(f.Data)
			fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), strings.TrimPrefix(name, "./"))
		}
		if err := writeEntry(tw, hdr, body); err != nil {
			return nil, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, fmt.Errorf("write data.tar: %w", err)
	}
	return buf.Bytes(), sums.Bytes(), nil
}

func writeEntry(tw *tar.Writer, hdr *tar.Header, body []byte) error {
	// GNU format as dpkg-deb writes it: long names go in ././@LongLink
	// records, which every dpkg understands.
	hdr.Format = tar.FormatGNU
	hdr.ModTime = buildTime
	hdr.Uname, hdr.Gname = owner(hdr.Uid), owner(hdr.Gid)
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar header %s: %w", hdr.Name, err)
	}
	if _, err := tw.Write(body); err != nil {
		return fmt.Errorf("write tar entry %s: %w", hdr.Name, err)
	}
	return nil
}

var scriptNames = map[string]bool{"preinst": true, "postinst": true, "prerm": true, "postrm": true, "config": true}

// controlTar writes ./control, ./md5sums (unless p.Control has one) and
// p.Control.
func controlTar(p Package, md5sums []byte) ([]byte, error) {
	var ctrl bytes.Buffer
	writeFields(&ctrl, controlFields(p, ""))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeEntry(tw, &tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}, nil); err != nil {
		return nil, err
	}
	files := []ControlFile{{Name: "control", Data: ctrl.Bytes()}}
	if !slices.ContainsFunc(p.Control, func(c ControlFile) bool { return c.Name == "md5sums" }) && len(md5sums) > 0 {
		files = append(files, ControlFile{Name: "md5sums", Data: md5sums})
	}
	files = append(files, p.Control...)
	for _, f := range files {
		def := int64(0o644)
		if scriptNames[f.Name] {
			def = 0o755
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "./" + f.Name, Mode: tarMode(f.Mode, def), Size: int64(len(f.Data))}
		if err := writeEntry(tw, hdr, f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("write control.tar: %w", err)
	}
	return buf.Bytes(), nil
}

// field is one "Name: value" line of a deb822 paragraph; a multi-line value
// keeps its continuation lines with their leading space.
type field struct{ name, value string }

func writeFields(w *bytes.Buffer, fields []field) {
	for _, f := range fields {
		first, rest, _ := strings.Cut(f.value, "\n")
		w.WriteString(f.name + ":")
		if first != "" {
			w.WriteString(" " + first)
		}
		if rest != "" {
			w.WriteString("\n" + rest)
		}
		w.WriteByte('\n')
	}
}

// installedSize is the Installed-Size dpkg-gencontrol would compute, roughly:
// KiB of regular file data, at least one per entry.
func installedSize(files []File) int64 {
	var kib int64
	for _, f := range files {
		kib += (int64(len(f.Data)) + 1023) / 1024
		if len(f.Data) == 0 {
			kib++
		}
	}
	return kib
}

// controlFields returns the control paragraph of p, with arch as the
// architecture when p has none.
func controlFields(p Package, arch string) []field {
	if arch == "" {
		arch = hostArch()
	}
	out := []field{{"Package", p.Name}}
	add := func(name, value string) {
		if value != "" {
			out = append(out, field{name, value})
		}
	}
	if p.Essential {
		add("Essential", "yes")
	}
	add("Priority", p.Priority)
	add("Section", p.Section)
	add("Installed-Size", strconv.FormatInt(installedSize(p.Files), 10))
	add("Maintainer", orDefault(p.Maintainer, "jailmgr tests <tests@localhost>"))
	add("Architecture", orDefault(p.Architecture, arch))
	add("Multi-Arch", p.MultiArch)
	add("Version", orDefault(p.Version, "1.0"))
	add("Replaces", p.Replaces)
	add("Provides", p.Provides)
	add("Pre-Depends", p.PreDepends)
	add("Depends", p.Depends)
	add("Recommends", p.Recommends)
	add("Suggests", p.Suggests)
	add("Breaks", p.Breaks)
	add("Conflicts", p.Conflicts)
	add("Description", orDefault(p.Description, p.Name+" test package"))
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// hostArch is the Debian name of the architecture this test runs on.
func hostArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	case "mips64le":
		return "mips64el"
	case "mipsle":
		return "mipsel"
	}
	return runtime.GOARCH
}
