package bootstrap

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"jailmgr/debian/deb"
	"jailmgr/store/tree"
)

// unpacked is what dpkg must learn about one unpacked package.
type unpacked struct {
	c         *Candidate
	control   *deb.Control
	files     []string // dpkg's .list: "/." then every path, in archive order
	md5sums   []byte   // the package's md5sums, or ones computed while unpacking
	conffiles []string
}

// mergedDirs are the top-level folders a merged-/usr root makes symlinks
// into /usr, as debootstrap does; the ones beyond the first three only when
// a package ships them.
var mergedDirs = []string{"bin", "sbin", "lib", "lib32", "lib64", "libo32", "libx32"}

// unpacker writes packages into a staged root, several at a time.
type unpacker struct {
	root      *tree.Root
	cacheDir  string
	mergedUsr bool
	noChown   bool

	mu     sync.Mutex
	linked map[string]bool // merged-/usr symlinks made so far
}

func newUnpacker(root *tree.Root, cacheDir string, mergedUsr bool) (*unpacker, error) {
	u := &unpacker{root: root, cacheDir: cacheDir, mergedUsr: mergedUsr, linked: map[string]bool{}, noChown: os.Getuid() != 0}
	if mergedUsr {
		for _, d := range mergedDirs[:3] {
			if err := u.link(d); err != nil {
				return nil, err
			}
		}
	}
	return u, nil
}

// link makes the merged-/usr symlink for a top-level folder.
func (u *unpacker) link(dir string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.linked[dir] {
		return nil
	}
	if err := u.root.MkdirAll("usr/" + dir); err != nil {
		return err
	}
	if err := u.root.Symlink("usr/"+dir, dir); err != nil {
		return err
	}
	u.linked[dir] = true
	return nil
}

// unpackAll unpacks every candidate, Jobs at a time, and returns them in
// the order given.
func (u *unpacker) unpackAll(ctx context.Context, jobs int, cands []*Candidate) ([]*unpacked, error) {
	out := make([]*unpacked, len(cands))
	errs := make([]error, len(cands))
	idx := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if ctx.Err() != nil {
					errs[i] = ctx.Err()
					continue
				}
				out[i], errs[i] = u.unpack(ctx, cands[i])
			}
		}()
	}
	for i := range cands {
		idx <- i
	}
	close(idx)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// readers are the read buffers of unpack, kept from one package to the
// next: a new one each would be most of what the unpack allocates.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 256<<10) }}

// unpack extracts one cached package, hashing the .deb as it streams so a
// cache file altered since its download is caught.
func (u *unpacker) unpack(ctx context.Context, c *Candidate) (*unpacked, error) {
	path := filepath.Join(u.cacheDir, c.SHA256+".deb")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", c.Name, err)
	}
	defer f.Close()
	br := readers.Get().(*bufio.Reader)
	br.Reset(f)
	defer readers.Put(br)
	h := sha256.New()
	tee := io.TeeReader(br, h)
	d := deb.NewReader(tee)
	d.Decompress = decompress
	defer d.Close()
	res, err := u.extract(ctx, c, d)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", c.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != c.SHA256 {
		os.Remove(path)
		return nil, &HashError{File: path, WantSHA256: c.SHA256, GotSHA: got}
	}
	return res, nil
}

func (u *unpacker) extract(ctx context.Context, c *Candidate, d *deb.Reader) (*unpacked, error) {
	ctl, err := d.Control()
	if err != nil {
		return nil, fmt.Errorf("unpack %s (%s): %w", c.Name, c.Filename, err)
	}
	if n := ctl.Paragraph.Get("Package"); n != c.Name {
		return nil, fmt.Errorf("unpack %s: %w: its control file names package %q", c.Filename, ErrVerify, n)
	}
	res := &unpacked{c: c, control: ctl}
	conf := map[string]bool{}
	if cf, ok := ctl.File("conffiles"); ok {
		for _, l := range strings.Split(string(cf.Data), "\n") {
			// "remove-on-upgrade /etc/x" lines name files the package no longer ships.
			if l = strings.TrimSpace(l); strings.HasPrefix(l, "/") {
				conf[strings.TrimPrefix(l, "/")] = true
				res.conffiles = append(res.conffiles, l)
			}
		}
	}
	_, hasSums := ctl.File("md5sums")
	var sums strings.Builder
	tr, err := d.Data()
	if err != nil {
		return nil, fmt.Errorf("unpack %s (%s): %w", c.Name, c.Filename, err)
	}
	seenRoot := false
	for {
		// A large package takes seconds: an interrupt stops it between
		// two of its files.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("unpack %s: data.tar: %w", c.Name, err)
		}
		name, err := tree.CleanName(hdr.Name)
		if err != nil {
			return nil, fmt.Errorf("unpack %s: %w", c.Name, err)
		}
		if name == "" {
			if !seenRoot {
				res.files = append(res.files, "/.")
				seenRoot = true
			}
			continue
		}
		if u.mergedUsr {
			top, _, _ := strings.Cut(name, "/")
			if slices.Contains(mergedDirs, top) {
				if err := u.link(top); err != nil {
					return nil, fmt.Errorf("unpack %s: %w", c.Name, err)
				}
			}
		}
		o := tree.Options{NoChown: u.noChown}
		isReg := hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA
		if isReg && conf[name] {
			o.Name = name + ".dpkg-new"
		}
		var mh = md5.New()
		if isReg && !hasSums {
			o.Hash = mh
		}
		if err := u.root.WriteEntry(hdr, tr, o); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", c.Name, err)
		}
		if o.Hash != nil {
			fmt.Fprintf(&sums, "%x  %s\n", mh.Sum(nil), name)
		}
		res.files = append(res.files, "/"+name)
	}
	if hasSums {
		cf, _ := ctl.File("md5sums")
		res.md5sums = cf.Data
	} else {
		res.md5sums = []byte(sums.String())
	}
	return res, nil
}
