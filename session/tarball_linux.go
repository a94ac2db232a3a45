//go:build !jailmgr_init

package session

import (
	"archive/tar"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"jailmgr/debian/compress"
	"jailmgr/store/tree"
)

// Sessions of jails with a Tarball (schroot's file chroots) unpack it into
// a folder of their own on the store's filesystem, bound as their root,
// and remove it when they end; with Repack, End first packs the root back
// into the archive, replacing it atomically. The names schroot accepts
// decide the compression: .tar, .tar.gz/.tgz, .tar.xz/.txz,
// .tar.zstd/.tar.zst, and .tar.bz2/.tbz (read only: Go has no bzip2
// writer, so such archives cannot be repacked).

// ErrArchive is wrapped by problems with a session's archive.
var ErrArchive = errors.New("session: unusable root archive")

// archiveCompression is the compress package's suffix for an archive name.
func archiveCompression(name string) (string, error) {
	for _, c := range []struct{ suffixes, comp string }{
		{".tar", ""}, {".tar.gz .tgz", ".gz"}, {".tar.xz .txz", ".xz"}, {".tar.zstd .tar.zst", ".zst"}, {".tar.bz2 .tbz", ".bz2"},
	} {
		for _, s := range strings.Fields(c.suffixes) {
			if strings.HasSuffix(name, s) {
				return c.comp, nil
			}
		}
	}
	return "", fmt.Errorf("%w: %s: use .tar, .tar.gz, .tgz, .tar.xz, .txz, .tar.zstd or .tar.bz2", ErrArchive, name)
}

// unpackArchive unpacks the archive into dir (which exists, empty). Every
// entry is written beneath dir, whatever its name or the links before it
// say; ownership and modes are kept.
func unpackArchive(archive, dir string) error {
	comp, err := archiveCompression(archive)
	if err != nil {
		return err
	}
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrArchive, err)
	}
	defer f.Close()
	var r io.Reader = f
	switch comp {
	case "":
	case ".bz2":
		r = bzip2.NewReader(f)
	default:
		rc, err := compress.NewReader(archive+comp, f)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrArchive, err)
		}
		defer rc.Close()
		r = rc
	}
	root, err := tree.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: read %s: %v", ErrArchive, archive, err)
		}
		switch hdr.Typeflag {
		case tar.TypeXHeader, tar.TypeXGlobalHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			continue
		}
		if err := root.WriteEntry(hdr, tr, tree.Options{NoChown: os.Geteuid() != 0}); err != nil {
			return fmt.Errorf("unpack %s: %w", archive, err)
		}
	}
}

// repackArchive packs dir into a new archive beside the old one, with the
// old one's owner and mode, and renames it over the old one: a failure
// leaves the old archive as it was.
func repackArchive(dir, archive string) (err error) {
	comp, err := archiveCompression(archive)
	if err != nil {
		return err
	}
	if comp == ".bz2" {
		return fmt.Errorf("%w: %s: bzip2 archives cannot be repacked (use .tar.xz or .tar.gz)", ErrArchive, archive)
	}
	tmp, err := os.CreateTemp(filepath.Dir(archive), "."+filepath.Base(archive)+".*")
	if err != nil {
		return fmt.Errorf("repack %s: %w", archive, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	var cw io.WriteCloser
	if comp != "" {
		if cw, err = compress.NewWriter(archive+comp, tmp); err != nil {
			return fmt.Errorf("repack %s: %w", archive, err)
		}
		w = cw
	}
	tw := tar.NewWriter(w)
	if err := writeTree(tw, dir); err != nil {
		return fmt.Errorf("repack %s: %w", archive, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("repack %s: %w", archive, err)
	}
	if cw != nil {
		if err := cw.Close(); err != nil {
			return fmt.Errorf("repack %s: %w", archive, err)
		}
	}
	mode, uid, gid := fs.FileMode(0o600), 0, 0
	if st, err := os.Stat(archive); err == nil {
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	}
	if os.Geteuid() == 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("repack %s: %w", archive, err)
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("repack %s: %w", archive, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("repack %s: %w", archive, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("repack %s: %w", archive, err)
	}
	if err := os.Rename(tmp.Name(), archive); err != nil {
		return fmt.Errorf("repack %s: %w", archive, err)
	}
	return nil
}

// writeTree writes every entry below dir into tw as "./path", symlinks as
// symlinks (never followed), files linked more than once as hard links.
// Nothing mounted below dir is entered: by then the session's mounts are
// gone, and a crossing would pack a foreign filesystem.
func writeTree(tw *tar.Writer, dir string) error {
	var rootDev uint64
	if st, err := os.Lstat(dir); err == nil {
		rootDev = st.Sys().(*syscall.Stat_t).Dev
	}
	links := map[[2]uint64]string{}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, path)
		name := "./" + filepath.ToSlash(rel)
		if rel == "." {
			name = "./"
		}
		if st.Dev != rootDev {
			return filepath.SkipDir
		}
		target := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, target)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Uname, hdr.Gname = name, "", ""
		if d.IsDir() && !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		if info.Mode().IsRegular() && st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[key] = name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		// Never through a symlink swapped in since the walk saw a file:
		// this runs as root over a tree the jail's users wrote.
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}
