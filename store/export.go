package store

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Export formats.
const (
	// FormatTar is a zstd-compressed tar of the root filesystem, with the
	// manifest and the file index carried in a zstd skippable frame after
	// the tar (see Export).
	FormatTar = "tar"
	// FormatOCI is an OCI image layout, as a tar, with one layer.
	FormatOCI = "oci"
)

var (
	// ErrFormat is returned for an unknown export format and for a file
	// that import cannot read as either format.
	ErrFormat = errors.New("store: unknown archive format")
	// ErrTreeChanged is returned when an image's tree no longer matches
	// its file index: the export would not be what the index promises.
	ErrTreeChanged = errors.New("store: image tree differs from its index")
)

// Bar follows a long job in bytes.
type Bar interface {
	Add(n int64)
	Finish()
}

// ExportOptions change what Export writes.
type ExportOptions struct {
	Format string // FormatTar (the default) or FormatOCI
	// Progress, when set, is called once with the bytes of file content
	// to write and returns the bar that follows them.
	Progress func(total int64) Bar
}

// Export writes the image to the file at dest, through a temporary file
// in the same folder renamed into place at the end: dest is whole or
// absent, never partial.
//
// Both formats are deterministic: the same tree gives the same bytes
// (with the same jailmgr build), with entries in index order, numeric
// owners and no user or group names, the tree's own times, extended
// attributes as SCHILY.xattr.* PAX records, hard links within the tree
// as tar hard links, and each compressor at a fixed level on one thread
// (fed from another, see asyncWriter).
// Sockets are left out: tar cannot hold them.
//
// FormatTar: `tar --zstd -xpf FILE` gives the root (add --xattrs
// --xattrs-include='*' to GNU tar to keep file capabilities). The image's
// manifest and the index of what the tar holds follow the tar as a zstd
// skippable frame, which every zstd decoder passes over: tar sees only
// the root, and import gets the manifest and checks every entry.
//
// FormatOCI: an OCI image layout archive; see writeOCI.
func (i *Image) Export(ctx context.Context, dest string, o ExportOptions) error {
	format := o.Format
	if format == "" {
		format = FormatTar
	}
	if format != FormatTar && format != FormatOCI {
		return fmt.Errorf("%w %q (tar or oci)", ErrFormat, o.Format)
	}
	entries, err := i.Index()
	if err != nil {
		return fmt.Errorf("export %s: %w", i.Ref(), err)
	}
	rawManifest, err := os.ReadFile(filepath.Join(i.Dir, "manifest.json"))
	if err != nil {
		return fmt.Errorf("export %s: %w", i.Ref(), err)
	}
	var bar Bar
	if o.Progress != nil {
		var total int64
		for _, e := range entries {
			total += e.Size
		}
		bar = o.Progress(total)
		defer bar.Finish()
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.tmp")
	if err != nil {
		return fmt.Errorf("export %s: %w", i.Ref(), err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	tw := &treeWriter{ctx: ctx, root: i.RootFS(), bar: bar, oci: format == FormatOCI}
	if format == FormatTar {
		err = writeTarZst(f, tw, entries, rawManifest)
	} else {
		err = writeOCI(f, tw, i, entries, rawManifest)
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dest)
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", i.Ref(), err)
	}
	done = true
	syncDir(filepath.Dir(dest))
	return nil
}

// carryMagic ends a tar export: the 16-byte footer is this magic and the
// length of the compressed carried data before it.
const carryMagic = "JAILMGR1"

// skippableMagic is the zstd skippable frame (IDs 0x184D2A50-5F) that
// holds the carried data.
const skippableMagic = 0x184D2A5A

// carriedHeader is the first JSON line of the carried data; the file
// index of the tar, one entry a line, follows.
type carriedHeader struct {
	Format   string          `json:"format"`
	Version  int             `json:"version"`
	Manifest json.RawMessage `json:"manifest"`
}

const carriedFormat = "jailmgr-export"

func writeTarZst(f *os.File, tw *treeWriter, entries []Entry, rawManifest []byte) error {
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := zstd.NewWriter(bw, zstdExportOptions()...)
	if err != nil {
		return err
	}
	aw := newAsyncWriter(zw)
	written, err := tw.write(aw, entries)
	if cerr := aw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		zw.Close()
		return err
	}
	if err := writeCarried(bw, rawManifest, written); err != nil {
		return err
	}
	return bw.Flush()
}

// writeCarried writes the manifest and the index of the tar, zstd
// compressed, in a skippable frame with a footer that says where it
// starts.
func writeCarried(w io.Writer, rawManifest []byte, entries []Entry) error {
	hdr, err := json.Marshal(carriedHeader{Format: carriedFormat, Version: 1, Manifest: rawManifest})
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	plain := append(hdr, '\n')
	for i := range entries {
		line, err := json.Marshal(&entries[i])
		if err != nil {
			return err
		}
		plain = append(append(plain, line...), '\n')
	}
	cw, err := zstd.NewWriter(nil, zstdExportOptions()...)
	if err != nil {
		return err
	}
	carried := cw.EncodeAll(plain, nil)
	cw.Close()
	frame := binary.LittleEndian.AppendUint32(nil, skippableMagic)
	frame = binary.LittleEndian.AppendUint32(frame, uint32(len(carried)+16))
	frame = append(frame, carried...)
	frame = binary.LittleEndian.AppendUint64(frame, uint64(len(carried)))
	frame = append(frame, carryMagic...)
	_, err = w.Write(frame)
	return err
}

// zstdExportOptions make the encoder a pure function of its input: one
// thread (blocks are then cut at fixed sizes, whatever the writes were)
// and a fixed level, no padding (its filler is random).
func zstdExportOptions() []zstd.EOption {
	return []zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(true)}
}

// treeWriter writes an image's tree as a tar stream, checking it against
// the image's index as it goes.
type treeWriter struct {
	ctx  context.Context
	root string
	bar  Bar
	oci  bool // names that would be OCI whiteouts are refused
	buf  []byte
}

type inode struct{ dev, ino uint64 }

// write streams the tree to w in index order and returns the index of
// what it wrote (the tree's times, sockets left out).
func (t *treeWriter) write(w io.Writer, entries []Entry) ([]Entry, error) {
	tw := tar.NewWriter(w)
	links := map[inode]int{} // first path of an inode with more links, as an index of out
	out := make([]Entry, 0, len(entries))
	t.buf = make([]byte, 256<<10)
	h := sha256.New()
	for i := range entries {
		want := &entries[i]
		if want.Type == TypeSocket {
			continue
		}
		if i%256 == 0 {
			if err := t.ctx.Err(); err != nil {
				return nil, err
			}
		}
		if t.oci && strings.HasPrefix(path.Base(want.Path), whiteoutPrefix) {
			return nil, fmt.Errorf("%s: %w: an OCI layer would read the name as a whiteout", want.Path, ErrFormat)
		}
		p := filepath.Join(t.root, filepath.FromSlash(want.Path))
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil, fmt.Errorf("%s: %w (%w)", want.Path, ErrTreeChanged, err)
		}
		got, err := entryOf(p, want.Path, &st)
		if err != nil {
			return nil, err
		}
		got.SHA256 = want.SHA256
		if !got.Same(want) {
			return nil, fmt.Errorf("%s: %w: the tree has %s, the index %s", want.Path, ErrTreeChanged, describe(&got), describe(want))
		}
		hdr := tarHeader(&got)
		if got.Type != TypeDir && st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := links[key]; ok {
				if out[first].SHA256 != got.SHA256 {
					return nil, fmt.Errorf("%s: %w: hard link of %s with another hash", want.Path, ErrTreeChanged, out[first].Path)
				}
				hdr = &tar.Header{Typeflag: tar.TypeLink, Name: got.Path, Linkname: out[first].Path, Mode: hdr.Mode,
					Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime, Format: tar.FormatPAX}
				if err := tw.WriteHeader(hdr); err != nil {
					return nil, err
				}
				if t.bar != nil {
					t.bar.Add(got.Size)
				}
				out = append(out, got)
				continue
			}
			links[key] = len(out)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", got.Path, err)
		}
		if got.Type == TypeFile {
			h.Reset()
			if err := t.copyFile(tw, p, &got, h); err != nil {
				return nil, err
			}
			if sum := hex.EncodeToString(h.Sum(nil)); sum != want.SHA256 {
				return nil, fmt.Errorf("%s: %w: content has sha256 %s, the index %s", want.Path, ErrTreeChanged, sum, want.SHA256)
			}
		}
		out = append(out, got)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

func (t *treeWriter) copyFile(w io.Writer, p string, e *Entry, h hash.Hash) error {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	defer f.Close()
	var dst io.Writer = io.MultiWriter(w, h)
	if t.bar != nil {
		dst = io.MultiWriter(w, h, barWriter{t.bar})
	}
	n, err := io.CopyBuffer(dst, io.LimitReader(f, e.Size), t.buf)
	if err == nil && n != e.Size {
		err = fmt.Errorf("%w: it shrank while being read", ErrTreeChanged)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	return nil
}

// tarHeader is the header of an index entry. The format is PAX so that
// times keep their nanoseconds and extended attributes fit; nothing in it
// depends on who or when exports.
func tarHeader(e *Entry) *tar.Header {
	hdr := &tar.Header{Name: e.Path, Mode: int64(e.Mode), Uid: e.UID, Gid: e.GID, ModTime: time.Unix(0, e.MTime), Format: tar.FormatPAX}
	switch e.Type {
	case TypeDir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, e.Path+"/"
	case TypeFile:
		hdr.Typeflag, hdr.Size = tar.TypeReg, e.Size
	case TypeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Link
	case TypeChar:
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, int64(e.Major), int64(e.Minor)
	case TypeBlock:
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeBlock, int64(e.Major), int64(e.Minor)
	case TypeFifo:
		hdr.Typeflag = tar.TypeFifo
	}
	for k, v := range e.Xattrs {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattr+k] = v
	}
	return hdr
}

const paxXattr = "SCHILY.xattr."

// describe says what an entry is, for errors that compare two.
func describe(e *Entry) string {
	s := fmt.Sprintf("%s mode %04o owner %d:%d", e.Type, e.Mode, e.UID, e.GID)
	switch e.Type {
	case TypeFile:
		s += fmt.Sprintf(" size %d", e.Size)
	case TypeSymlink:
		s += " -> " + e.Link
	case TypeChar, TypeBlock:
		s += fmt.Sprintf(" %d,%d", e.Major, e.Minor)
	}
	if e.Type != TypeDir {
		s += " mtime " + time.Unix(0, e.MTime).UTC().Format(time.RFC3339Nano)
	}
	if len(e.Xattrs) > 0 {
		s += fmt.Sprintf(" %d xattrs", len(e.Xattrs))
	}
	return s
}

type barWriter struct{ b Bar }

func (w barWriter) Write(p []byte) (int, error) { w.b.Add(int64(len(p))); return len(p), nil }
