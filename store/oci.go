package store

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Keys that jailmgr adds to an OCI export. The manifest label carries the
// whole jailmgr manifest.json, byte for byte, in the image config (which
// a registry keeps with the image); the annotations of the OCI manifest
// name what no org.opencontainers.image.* key does.
const (
	LabelManifest            = "jailmgr.manifest"
	AnnotationSuite          = "jailmgr.suite"
	AnnotationVariant        = "jailmgr.variant"
	AnnotationDistribution   = "jailmgr.distribution"
	AnnotationManifestSHA256 = "jailmgr.manifest.sha256"
)

// defaultPath is Debian's PATH for root (/etc/profile, login.defs).
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// gzipLevel is fixed: the layer's digest must not change between runs.
const gzipLevel = 6

// writeOCI writes an OCI image layout as a tar: oci-layout, the blobs
// (layer, config, manifest) and index.json, whose one manifest carries the
// annotation org.opencontainers.image.ref.name = the image's version, so
// that tools which want a tag (umoci) find one.
//
// The layer is the tree as a gzip tar, written straight into the archive:
// its header, which names its digest, is written over a placeholder once
// the layer is done, so the layer is never staged anywhere else.
func writeOCI(f *os.File, tw *treeWriter, img *Image, entries []Entry, rawManifest []byte) error {
	mtime := img.Manifest.Created.Truncate(time.Second)
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	outer := tar.NewWriter(bw)
	layout, _ := json.Marshal(OCILayout{Version: ImageLayoutVersion})
	if err := writeBlobEntry(outer, ImageLayoutFile, layout, mtime); err != nil {
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := outer.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
	}
	if err := outer.Flush(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	hdrAt, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := bw.Write(make([]byte, 512)); err != nil {
		return err
	}
	compressed := &hashCounter{w: bw, h: sha256.New()}
	gz, err := gzip.NewWriterLevel(compressed, gzipLevel)
	if err != nil {
		return err
	}
	diffID := sha256.New()
	aw := newAsyncWriter(gz)
	_, err = tw.write(io.MultiWriter(aw, diffID), entries)
	if cerr := aw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if pad := (512 - compressed.n%512) % 512; pad > 0 {
		if _, err := bw.Write(make([]byte, pad)); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	layer := OCIDescriptor{MediaType: MediaTypeImageLayerGzip, Digest: sum(compressed.h), Size: compressed.n}
	hdr, err := blobHeader(layer, mtime)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(hdr, hdrAt); err != nil {
		return err
	}

	platform := ociPlatform(img.Manifest.Arch)
	created := img.Manifest.Created
	var createdp *time.Time
	if !created.IsZero() {
		createdp = &created
	}
	config := OCIImage{
		Created:     createdp,
		OCIPlatform: platform,
		Config: OCIImageConfig{
			Env:    []string{defaultPath},
			Cmd:    []string{defaultShell(entries)},
			Labels: map[string]string{LabelManifest: string(rawManifest)},
		},
		RootFS: OCIRootFS{Type: "layers", DiffIDs: []Digest{sum(diffID)}},
		History: []OCIHistory{{Created: createdp, CreatedBy: "jailmgr image export " + img.Ref(),
			Comment: strings.TrimSpace(fmt.Sprintf("%s %s %s", img.Manifest.Distribution, img.Manifest.Suite, img.Manifest.Variant))}},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return fmt.Errorf("encode OCI config: %w", err)
	}
	m := img.Manifest
	ann := map[string]string{
		AnnotationTitle:          img.Name,
		AnnotationVersion:        strconv.Itoa(img.Version),
		AnnotationDescription:    strings.Join(strings.Fields(fmt.Sprintf("%s %s %s %s image built by jailmgr", m.Distribution, m.Suite, m.Variant, m.Arch)), " "),
		AnnotationManifestSHA256: hex.EncodeToString(sha256Sum(rawManifest)),
	}
	for k, v := range map[string]string{AnnotationSuite: m.Suite, AnnotationVariant: m.Variant, AnnotationDistribution: m.Distribution} {
		if v != "" {
			ann[k] = v
		}
	}
	if createdp != nil {
		ann[AnnotationCreated] = created.UTC().Format(time.RFC3339)
	}
	manifest := OCIManifest{
		SchemaVersion: 2,
		MediaType:     MediaTypeImageManifest,
		Config:        descriptor(MediaTypeImageConfig, configJSON),
		Layers:        []OCIDescriptor{layer},
		Annotations:   ann,
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return fmt.Errorf("encode OCI manifest: %w", err)
	}
	md := descriptor(MediaTypeImageManifest, manifestJSON)
	md.Platform = &platform
	md.Annotations = map[string]string{AnnotationRefName: strconv.Itoa(img.Version)}
	index, err := json.Marshal(OCIIndex{SchemaVersion: 2, MediaType: MediaTypeImageIndex, Manifests: []OCIDescriptor{md}})
	if err != nil {
		return fmt.Errorf("encode OCI index: %w", err)
	}

	outer = tar.NewWriter(bw)
	for _, b := range []struct {
		name string
		data []byte
	}{{blobPath(sum256(configJSON)), configJSON}, {blobPath(md.Digest), manifestJSON}, {ImageIndexFile, index}} {
		if err := writeBlobEntry(outer, b.name, b.data, mtime); err != nil {
			return err
		}
	}
	if err := outer.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// blobHeader is the one 512-byte tar header of a layer blob: USTAR, or
// GNU's base-256 size past 8 GiB (both one block, so that it fits the
// placeholder).
func blobHeader(d OCIDescriptor, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: blobPath(d.Digest), Size: d.Size, Mode: 0o644, ModTime: mtime, Format: tar.FormatUSTAR}
	if d.Size > 077777777777 {
		hdr.Format = tar.FormatGNU
	}
	if err := tar.NewWriter(&buf).WriteHeader(hdr); err != nil {
		return nil, err
	}
	if buf.Len() != 512 {
		return nil, fmt.Errorf("layer header takes %d bytes, not one block", buf.Len())
	}
	return buf.Bytes(), nil
}

func writeBlobEntry(tw *tar.Writer, name string, data []byte, mtime time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func blobPath(d Digest) string {
	return path.Join(ImageBlobsDir, d.Algorithm(), d.Encoded())
}

func descriptor(mediaType string, data []byte) OCIDescriptor {
	return OCIDescriptor{MediaType: mediaType, Digest: sum256(data), Size: int64(len(data))}
}

func sha256Sum(data []byte) []byte { s := sha256.Sum256(data); return s[:] }

func sum256(data []byte) Digest { return sha256Digest(sha256Sum(data)) }

func sum(h hash.Hash) Digest { return sha256Digest(h.Sum(nil)) }

func sha256Digest(sum []byte) Digest { return Digest("sha256:" + hex.EncodeToString(sum)) }

// hashCounter hashes and counts what it passes on.
type hashCounter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// debianToOCI maps Debian architecture names to OCI (Go) ones.
var debianToOCI = map[string]OCIPlatform{
	"amd64":    {Architecture: "amd64"},
	"arm64":    {Architecture: "arm64"},
	"armhf":    {Architecture: "arm", Variant: "v7"},
	"armel":    {Architecture: "arm", Variant: "v5"},
	"i386":     {Architecture: "386"},
	"ppc64el":  {Architecture: "ppc64le"},
	"s390x":    {Architecture: "s390x"},
	"riscv64":  {Architecture: "riscv64"},
	"mips64el": {Architecture: "mips64le"},
	"loong64":  {Architecture: "loong64"},
}

// ociPlatform is the OCI platform of a Debian architecture; an image
// whose manifest names none is taken to be the host's.
func ociPlatform(debArch string) OCIPlatform {
	p, ok := debianToOCI[debArch]
	switch {
	case ok:
	case debArch == "":
		p = OCIPlatform{Architecture: runtime.GOARCH}
	default:
		p = OCIPlatform{Architecture: debArch}
	}
	p.OS = "linux"
	return p
}

// debianArch is the Debian architecture of an OCI platform.
func debianArch(p OCIPlatform) string {
	if p.Architecture == "arm" {
		if p.Variant == "v5" || p.Variant == "v6" {
			return "armel"
		}
		return "armhf"
	}
	for deb, o := range debianToOCI {
		if o.Architecture == p.Architecture {
			return deb
		}
	}
	return p.Architecture
}

// defaultShell is the default command of an OCI export: /bin/bash when
// the tree has it (through its symlinks, merged /usr included), else
// /bin/sh.
func defaultShell(entries []Entry) string {
	byPath := make(map[string]*Entry, len(entries))
	for i := range entries {
		byPath[entries[i].Path] = &entries[i]
	}
	if e := resolveEntry(byPath, "bin/bash"); e != nil && e.Type == TypeFile && e.Mode&0o111 != 0 {
		return "/bin/bash"
	}
	return "/bin/sh"
}

// resolveEntry follows symlinks through an index the way the kernel would
// inside the root (absolute targets from the root, ".." stopping there).
func resolveEntry(byPath map[string]*Entry, p string) *Entry {
	todo := strings.Split(p, "/")
	var done []string
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := strings.Join(append(done, c), "/")
		e := byPath[cur]
		if e == nil {
			return nil
		}
		if e.Type != TypeSymlink {
			done = append(done, c)
			if len(todo) > 0 && e.Type != TypeDir {
				return nil
			}
			continue
		}
		if hops++; hops > 40 {
			return nil
		}
		if strings.HasPrefix(e.Link, "/") {
			done = nil
		}
		todo = append(strings.Split(e.Link, "/"), todo...)
	}
	if len(done) == 0 {
		return nil
	}
	return byPath[strings.Join(done, "/")]
}
