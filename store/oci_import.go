package store

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Limits on the JSON documents of an OCI layout: far above what any image
// needs, low enough that a hostile archive cannot exhaust memory.
const (
	maxLayoutJSON = 4 << 20
	maxConfigJSON = 64 << 20
)

// ociArchive is a tar of an OCI image layout, read in place: the outer tar
// is scanned once for where each file's data lies, then every blob is read
// from there, checked against the digest and size that name it.
type ociArchive struct {
	f       *os.File
	files   map[string]section
	layers  []OCIDescriptor
	diffs   []Digest
	m       *Manifest
	carried bool // m is the jailmgr manifest the config carries
}

type section struct{ off, size int64 }

func openOCI(f *os.File, size int64) (*ociArchive, error) {
	a := &ociArchive{f: f, files: map[string]section{}}
	sr := io.NewSectionReader(f, 0, size)
	tr := tar.NewReader(sr) // it seeks over data it is not asked for
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read OCI layout tar: %w", ErrFormat, err)
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		if _, dup := a.files[name]; dup {
			return nil, fmt.Errorf("%w: the OCI layout holds %s twice", ErrFormat, name)
		}
		off, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		a.files[name] = section{off, hdr.Size}
	}
	if _, ok := a.files[ImageLayoutFile]; !ok {
		return nil, fmt.Errorf("%w: a tar without %s: neither a jailmgr export nor an OCI image layout", ErrFormat, ImageLayoutFile)
	}
	var layout OCILayout
	if err := a.readJSON(ImageLayoutFile, maxLayoutJSON, &layout); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(layout.Version, "1.") {
		return nil, fmt.Errorf("%w: OCI layout version %q (this jailmgr reads 1.x)", ErrFormat, layout.Version)
	}
	var index OCIIndex
	if err := a.readJSON(ImageIndexFile, maxLayoutJSON, &index); err != nil {
		return nil, err
	}
	if index.SchemaVersion != 2 || len(index.Manifests) != 1 {
		return nil, fmt.Errorf("%w: %s lists %d images (schema %d); jailmgr imports a layout of exactly one", ErrFormat, ImageIndexFile, len(index.Manifests), index.SchemaVersion)
	}
	md := index.Manifests[0]
	if md.MediaType != MediaTypeImageManifest {
		return nil, fmt.Errorf("%w: %s names a %q; jailmgr imports an OCI image manifest", ErrFormat, ImageIndexFile, md.MediaType)
	}
	var manifest OCIManifest
	if err := a.readBlob("manifest", md, maxLayoutJSON, &manifest); err != nil {
		return nil, err
	}
	if manifest.SchemaVersion != 2 || manifest.Config.MediaType != MediaTypeImageConfig {
		return nil, fmt.Errorf("%w: the OCI manifest (schema %d) has a config of type %q", ErrFormat, manifest.SchemaVersion, manifest.Config.MediaType)
	}
	var config OCIImage
	if err := a.readBlob("config", manifest.Config, maxConfigJSON, &config); err != nil {
		return nil, err
	}
	if config.OS != "linux" {
		return nil, fmt.Errorf("%w: the image is for %q, not linux", ErrFormat, config.OS)
	}
	if len(manifest.Layers) == 0 || len(config.RootFS.DiffIDs) != len(manifest.Layers) {
		return nil, fmt.Errorf("%w: the OCI manifest lists %d layers, the config %d diff_ids", ErrFormat, len(manifest.Layers), len(config.RootFS.DiffIDs))
	}
	for i, l := range manifest.Layers {
		if _, err := layerDecompressor(l.MediaType); err != nil {
			return nil, err
		}
		if err := config.RootFS.DiffIDs[i].Validate(); err != nil {
			return nil, fmt.Errorf("%w: diff_id %q: jailmgr checks sha256 digests", ErrDigest, config.RootFS.DiffIDs[i])
		}
	}
	a.layers, a.diffs = manifest.Layers, config.RootFS.DiffIDs
	a.m = &Manifest{Arch: debianArch(config.OCIPlatform)}
	if config.Created != nil {
		a.m.Created = *config.Created
	}
	if raw, ok := config.Config.Labels[LabelManifest]; ok {
		if want, ok := manifest.Annotations[AnnotationManifestSHA256]; ok && want != hex.EncodeToString(sha256Sum([]byte(raw))) {
			return nil, fmt.Errorf("%w: the carried jailmgr manifest does not have the sha256 that annotation %s names", ErrDigest, AnnotationManifestSHA256)
		}
		a.m, a.carried = &Manifest{}, true
		if err := json.Unmarshal([]byte(raw), a.m); err != nil {
			return nil, fmt.Errorf("%w: read the jailmgr manifest in label %s: %w", ErrFormat, LabelManifest, err)
		}
	}
	return a, nil
}

func (a *ociArchive) manifest() (*Manifest, bool) { return a.m, a.carried }

func (a *ociArchive) size() int64 {
	var n int64
	for _, l := range a.layers {
		n += l.Size
	}
	return n
}

// open returns the data of the file name in the layout.
func (a *ociArchive) open(name string) (*io.SectionReader, error) {
	s, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("%w: the OCI layout has no %s", ErrFormat, name)
	}
	return io.NewSectionReader(a.f, s.off, s.size), nil
}

func (a *ociArchive) readJSON(name string, limit int64, v any) error {
	r, err := a.open(name)
	if err != nil {
		return err
	}
	if r.Size() > limit {
		return fmt.Errorf("%w: %s is %d bytes, more than %d", ErrFormat, name, r.Size(), limit)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrFormat, name, err)
	}
	return nil
}

// blob opens the blob a descriptor names, after checking the digest's form
// and the blob's size.
func (a *ociArchive) blob(what string, d OCIDescriptor) (*io.SectionReader, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s digest %q: %w", ErrDigest, what, d.Digest, err)
	}
	r, err := a.open(blobPath(d.Digest))
	if err != nil {
		return nil, err
	}
	if r.Size() != d.Size {
		return nil, fmt.Errorf("%w: %s %s is %d bytes, its descriptor says %d", ErrDigest, what, d.Digest, r.Size(), d.Size)
	}
	return r, nil
}

// readBlob reads and decodes a JSON blob whose digest and size are checked.
func (a *ociArchive) readBlob(what string, d OCIDescriptor, limit int64, v any) error {
	r, err := a.blob(what, d)
	if err != nil {
		return err
	}
	if d.Size > limit {
		return fmt.Errorf("%w: %s is %d bytes, more than %d", ErrFormat, what, d.Size, limit)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if got := sum256(data); got != d.Digest {
		return fmt.Errorf("%w: %s has digest %s, its descriptor says %s", ErrDigest, what, got, d.Digest)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrFormat, what, err)
	}
	return nil
}

// unpack writes the layers in order. Each is checked while it streams:
// the compressed bytes against the layer's digest, the tar against the
// config's diff_id. A mismatch is found once the layer is written, and
// fails the import: the staging area is removed.
func (a *ociArchive) unpack(u *unpacker) error {
	u.layer = true
	for i, l := range a.layers {
		what := fmt.Sprintf("layer %d", i+1)
		r, err := a.blob(what, l)
		if err != nil {
			return err
		}
		compressed := sha256.New()
		raw := io.TeeReader(u.counted(r), compressed)
		dec, err := layerDecompressor(l.MediaType)
		if err != nil {
			return err
		}
		plain, err := dec(raw)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrDigest, what, err)
		}
		diff := sha256.New()
		ahead := newAsyncReader(plain)
		err = u.unpackTar(io.TeeReader(ahead, diff))
		if err == nil {
			_, err = io.Copy(diff, ahead) // the tar's end blocks are in the diff_id too
		}
		ahead.Close()
		plain.Close()
		// Read the rest in any case: when the layer is not what its
		// digest says, that is the cause of whatever went wrong.
		_, rerr := io.Copy(compressed, raw)
		if got := sum(compressed); rerr == nil && got != l.Digest {
			if err != nil {
				return fmt.Errorf("%w: %s has digest %s, the manifest says %s (reading it: %v)", ErrDigest, what, got, l.Digest, err)
			}
			return fmt.Errorf("%w: %s has digest %s, the manifest says %s", ErrDigest, what, got, l.Digest)
		}
		if err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if got := sum(diff); got != a.diffs[i] {
			return fmt.Errorf("%w: %s has diff_id %s, the config says %s", ErrDigest, what, got, a.diffs[i])
		}
	}
	return nil
}

// layerDecompressor returns how to read a layer of a media type.
func layerDecompressor(mediaType string) (func(io.Reader) (io.ReadCloser, error), error) {
	switch mediaType {
	case MediaTypeImageLayer:
		return func(r io.Reader) (io.ReadCloser, error) { return io.NopCloser(r), nil }, nil
	case MediaTypeImageLayerGzip, "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }, nil
	case MediaTypeImageLayerZstd:
		return func(r io.Reader) (io.ReadCloser, error) {
			zr, err := zstd.NewReader(r)
			if err != nil {
				return nil, err
			}
			return zr.IOReadCloser(), nil
		}, nil
	}
	return nil, fmt.Errorf("%w: layer type %q (jailmgr reads tar, tar+gzip and tar+zstd layers)", ErrFormat, mediaType)
}
