package store

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"jailmgr/store/tree"
)

// ociSections opens an OCI export and returns where its files lie.
func ociSections(t *testing.T, file string) *ociArchive {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	a, err := openOCI(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestOCIExportLayout(t *testing.T) {
	_, src := exportFixture(t)
	file, _ := export(t, src, FormatOCI)
	a := ociSections(t, file)
	var index OCIIndex
	if err := a.readJSON(ImageIndexFile, maxLayoutJSON, &index); err != nil {
		t.Fatal(err)
	}
	md := index.Manifests[0]
	if md.Annotations[AnnotationRefName] != "1" || md.Platform == nil || md.Platform.Architecture != "amd64" || md.Platform.OS != "linux" {
		t.Errorf("index.json manifest descriptor: %+v", md)
	}
	var m OCIManifest
	if err := a.readBlob("manifest", md, maxLayoutJSON, &m); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(src.Dir, "manifest.json"))
	for k, v := range map[string]string{
		AnnotationSuite: "bookworm", AnnotationVariant: "minbase", AnnotationManifestSHA256: sum256(raw).Encoded(),
		AnnotationCreated: "2024-05-06T07:08:09Z", AnnotationTitle: "src", AnnotationVersion: "1",
	} {
		if m.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != MediaTypeImageLayerGzip {
		t.Errorf("layers: %+v", m.Layers)
	}
	var config OCIImage
	if err := a.readBlob("config", m.Config, maxConfigJSON, &config); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(config.Config.Cmd, []string{"/bin/bash"}) || !reflect.DeepEqual(config.Config.Env, []string{defaultPath}) {
		t.Errorf("config: Cmd %q, Env %q", config.Config.Cmd, config.Config.Env)
	}
	if config.Config.Labels[LabelManifest] != string(raw) {
		t.Errorf("the config does not carry manifest.json byte for byte")
	}
	if config.Architecture != "amd64" || config.OS != "linux" || len(config.RootFS.DiffIDs) != 1 {
		t.Errorf("config platform %s/%s, %d diff_ids", config.OS, config.Architecture, len(config.RootFS.DiffIDs))
	}
}

func TestDefaultShell(t *testing.T) {
	exe := func(p string) Entry { return Entry{Path: p, Type: TypeFile, Mode: 0o755} }
	dir := func(p string) Entry { return Entry{Path: p, Type: TypeDir, Mode: 0o755} }
	link := func(p, to string) Entry { return Entry{Path: p, Type: TypeSymlink, Link: to} }
	for want, entries := range map[string][]Entry{
		"/bin/bash": {dir("bin"), exe("bin/bash")},
		"/bin/sh":   {dir("bin"), exe("bin/sh")},
	} {
		if got := defaultShell(entries); got != want {
			t.Errorf("defaultShell(%v) = %s, want %s", entries, got, want)
		}
	}
	cases := []struct {
		entries []Entry
		ok      bool
	}{
		{[]Entry{link("bin", "usr/bin"), dir("usr"), dir("usr/bin"), exe("usr/bin/bash")}, true},
		{[]Entry{link("bin", "/usr/bin"), dir("usr"), dir("usr/bin"), exe("usr/bin/bash")}, true},
		{[]Entry{dir("bin"), link("bin/bash", "../../../usr/bin/bash"), dir("usr"), dir("usr/bin"), exe("usr/bin/bash")}, true},
		{[]Entry{link("bin", "bin")}, false},
		{[]Entry{dir("bin"), link("bin/bash", "nowhere")}, false},
		{[]Entry{dir("bin"), {Path: "bin/bash", Type: TypeFile, Mode: 0o644}}, false},
	}
	for _, c := range cases {
		if got := defaultShell(c.entries) == "/bin/bash"; got != c.ok {
			t.Errorf("defaultShell(%v) found bash: %v, want %v", c.entries, got, c.ok)
		}
	}
}

func TestOCIPlatform(t *testing.T) {
	for deb, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "armhf": "arm/v7", "armel": "arm/v5", "i386": "386", "ppc64el": "ppc64le"} {
		p := ociPlatform(deb)
		got := p.Architecture
		if p.Variant != "" {
			got += "/" + p.Variant
		}
		if got != want || p.OS != "linux" {
			t.Errorf("ociPlatform(%s) = %s/%s, want linux/%s", deb, p.OS, got, want)
		}
		if back := debianArch(p); back != deb {
			t.Errorf("debianArch(%s) = %s, want %s", got, back, deb)
		}
	}
}

func TestDigestValidate(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	if err := Digest("sha256:" + hex64).Validate(); err != nil {
		t.Errorf("sha256:%s: %v", hex64, err)
	}
	for _, d := range []string{"", "sha256", "sha256:", ":" + hex64, "sha256:" + hex64[1:], "sha256:" + hex64 + "0",
		"sha256:" + strings.ToUpper(hex64), "sha256:" + hex64[1:] + "g", "SHA256:" + hex64,
		"sha512:" + hex64 + hex64, "md5:0123456789abcdef0123456789abcdef"} {
		if err := Digest(d).Validate(); err == nil {
			t.Errorf("%q is valid", d)
		}
	}
}

// tamper changes the bytes of one file of an OCI layout archive in place.
func tamper(t *testing.T, file, name string, change func([]byte) []byte) {
	t.Helper()
	a := ociSections(t, file)
	s, ok := a.files[name]
	if !ok {
		t.Fatalf("no %s in the layout", name)
	}
	data, _ := os.ReadFile(file)
	part := change(bytes.Clone(data[s.off : s.off+s.size]))
	if len(part) != int(s.size) {
		t.Fatalf("tamper changed the size of %s", name)
	}
	copy(data[s.off:], part)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImportRefusesTamperedOCI(t *testing.T) {
	s, src := exportFixture(t)
	flip := func(at func(n int) int) func([]byte) []byte {
		return func(b []byte) []byte { b[at(len(b))] ^= 0x20; return b }
	}
	middle := func(n int) int { return n / 2 }
	for _, c := range []struct {
		name   string
		blob   func(a *ociArchive, m OCIManifest, md OCIDescriptor) string
		change func([]byte) []byte
	}{
		{"layer byte", func(a *ociArchive, m OCIManifest, _ OCIDescriptor) string { return blobPath(m.Layers[0].Digest) }, flip(middle)},
		{"layer's last byte", func(a *ociArchive, m OCIManifest, _ OCIDescriptor) string { return blobPath(m.Layers[0].Digest) }, flip(func(n int) int { return n - 1 })},
		{"config byte", func(a *ociArchive, m OCIManifest, _ OCIDescriptor) string { return blobPath(m.Config.Digest) }, flip(middle)},
		{"manifest byte", func(a *ociArchive, m OCIManifest, md OCIDescriptor) string { return blobPath(md.Digest) }, flip(func(n int) int { return n - 3 })},
		{"manifest size", func(a *ociArchive, m OCIManifest, md OCIDescriptor) string { return ImageIndexFile }, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			file, _ := export(t, src, FormatOCI)
			a := ociSections(t, file)
			var index OCIIndex
			a.readJSON(ImageIndexFile, maxLayoutJSON, &index)
			var m OCIManifest
			a.readBlob("manifest", index.Manifests[0], maxLayoutJSON, &m)
			change := c.change
			if change == nil { // one more byte than the manifest has
				size := strconv.FormatInt(index.Manifests[0].Size, 10)
				bigger := strconv.FormatInt(index.Manifests[0].Size+1, 10)
				if len(size) != len(bigger) {
					t.Skip("the manifest's size changes length")
				}
				change = func(b []byte) []byte {
					return bytes.Replace(b, []byte(`"size":`+size), []byte(`"size":`+bigger), 1)
				}
			}
			tamper(t, file, c.blob(a, m, index.Manifests[0]), change)
			_, err := s.Import(context.Background(), file, ImportOptions{Name: "tampered"})
			if !errors.Is(err, ErrDigest) {
				t.Errorf("import: %v, want ErrDigest", err)
			}
			checkNothingCommitted(t, s, "src:1")
		})
	}
}

// layout builds an OCI layout archive around one layer (a tar, gzipped
// here); fix, when set, changes the config before its digest is taken.
func layout(t *testing.T, layerTar []byte, fix func(*OCIImage)) []byte {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layerTar)
	zw.Close()
	config := OCIImage{OCIPlatform: OCIPlatform{Architecture: "arm64", OS: "linux"}, RootFS: OCIRootFS{Type: "layers", DiffIDs: []Digest{sum256(layerTar)}}}
	if fix != nil {
		fix(&config)
	}
	configJSON, _ := json.Marshal(config)
	m := OCIManifest{SchemaVersion: 2, MediaType: MediaTypeImageManifest,
		Config: descriptor(MediaTypeImageConfig, configJSON), Layers: []OCIDescriptor{descriptor(MediaTypeImageLayerGzip, gz.Bytes())}}
	manifestJSON, _ := json.Marshal(m)
	index, _ := json.Marshal(OCIIndex{SchemaVersion: 2, Manifests: []OCIDescriptor{descriptor(MediaTypeImageManifest, manifestJSON)}})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct {
		name string
		data []byte
	}{{"index.json", index}, {"./oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"blobs/sha256/" + sum256(configJSON).Encoded(), configJSON},
		{"blobs/sha256/" + sum256(manifestJSON).Encoded(), manifestJSON},
		{"blobs/sha256/" + sum256(gz.Bytes()).Encoded(), gz.Bytes()}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.data)), Mode: 0o644})
		tw.Write(f.data)
	}
	tw.Close()
	return b.Bytes()
}

func simpleLayer(t *testing.T, names ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: 2, Uid: os.Getuid(), Gid: os.Getgid(), ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		tw.WriteHeader(h)
		if h.Size > 0 {
			tw.Write([]byte("hi"))
		}
	}
	tw.Close()
	return b.Bytes()
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "layout.tar")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestImportForeignOCI imports a layout of another tool: no jailmgr
// manifest, so it needs a name, and the architecture comes from the config.
func TestImportForeignOCI(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, layout(t, simpleLayer(t, "./", "etc/", "etc/hostname"), nil))
	if _, err := s.Import(context.Background(), file, ImportOptions{}); !errors.Is(err, ErrBadRef) {
		t.Errorf("import without a name: %v, want ErrBadRef", err)
	}
	img, err := s.Import(context.Background(), file, ImportOptions{Name: "foreign"})
	if err != nil {
		t.Fatal(err)
	}
	if m := img.Manifest; m.Arch != "arm64" || m.Size <= 0 || time.Since(m.Created) > time.Hour {
		t.Errorf("manifest of a foreign import: arch %q (want arm64), size %d, created %v", m.Arch, m.Size, m.Created)
	}
	if data, err := os.ReadFile(filepath.Join(img.RootFS(), "etc/hostname")); err != nil || string(data) != "hi" {
		t.Errorf("etc/hostname: %q, %v", data, err)
	}
}

func TestImportRefusesBadOCILayers(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("keep"), 0o644)
	cases := map[string]struct {
		layout []byte
		want   error
		entry  string
	}{
		"wrong diff_id": {layout(t, simpleLayer(t, "a"), func(c *OCIImage) { c.RootFS.DiffIDs[0] = sum256([]byte("other")) }), ErrDigest, ""},
		"whiteout":      {layout(t, simpleLayer(t, "etc/", "etc/.wh.passwd"), nil), ErrWhiteout, "etc/.wh.passwd"},
		"opaque":        {layout(t, simpleLayer(t, "etc/", "etc/.wh..wh..opq"), nil), ErrWhiteout, "etc/.wh..wh..opq"},
		"bad platform":  {layout(t, simpleLayer(t, "a"), func(c *OCIImage) { c.OS = "windows" }), ErrFormat, ""},
		"not a layout":  {simpleLayer(t, "etc/", "etc/hostname"), ErrFormat, ""},
		"garbage":       {[]byte(strings.Repeat("not an archive ", 100)), ErrFormat, ""},
	}
	for name, hdrs := range maliciousTars {
		cases["unsafe "+name] = struct {
			layout []byte
			want   error
			entry  string
		}{layout(t, maliciousTar(t, hdrs, outside), nil), tree.ErrUnsafePath, strings.ReplaceAll(hdrs[len(hdrs)-1].Name, "OUTSIDE", outside)}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Import(context.Background(), writeFile(t, c.layout), ImportOptions{Name: "bad"})
			if !errors.Is(err, c.want) {
				t.Errorf("import: %v, want %v", err, c.want)
			}
			if err != nil && !strings.Contains(err.Error(), c.entry) {
				t.Errorf("the error does not name %q: %v", c.entry, err)
			}
			checkNothingCommitted(t, s)
			checkOutside(t, outside)
		})
	}
}

// TestOCIExportWithSkopeoAndUmoci checks the export with the reference
// tools: skopeo reads it, umoci unpacks it to the same tree, and an
// archive that skopeo rewrites imports to the same tree again.
func TestOCIExportWithSkopeoAndUmoci(t *testing.T) {
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install skopeo umoci; CI installs both)", tool)
		}
	}
	s, src := exportFixture(t)
	want := index(t, src)
	file, _ := export(t, src, FormatOCI)
	a := ociSections(t, file)
	var idx OCIIndex
	a.readJSON(ImageIndexFile, maxLayoutJSON, &idx)
	var m OCIManifest
	a.readBlob("manifest", idx.Manifests[0], maxLayoutJSON, &m)

	out, err := exec.Command("skopeo", "inspect", "oci-archive:"+file).Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v: %s", err, stderrOf(err))
	}
	var inspect struct {
		Digest       Digest
		Architecture string
		Os           string
		Layers       []Digest
		Labels       map[string]string
		Env          []string
	}
	if err := json.Unmarshal(out, &inspect); err != nil {
		t.Fatalf("skopeo inspect printed %s: %v", out, err)
	}
	if inspect.Digest != idx.Manifests[0].Digest || inspect.Architecture != "amd64" || inspect.Os != "linux" ||
		!reflect.DeepEqual(inspect.Layers, []Digest{m.Layers[0].Digest}) || inspect.Labels[LabelManifest] == "" ||
		!reflect.DeepEqual(inspect.Env, []string{defaultPath}) {
		t.Errorf("skopeo inspect: %s", out)
	}

	// An archive rewritten by skopeo (its own outer tar) imports too.
	copied := filepath.Join(t.TempDir(), "copy.tar")
	if out, err := exec.Command("skopeo", "copy", "--quiet", "oci-archive:"+file, "oci-archive:"+copied+":copied").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v: %s", err, out)
	}
	img, err := s.Import(context.Background(), copied, ImportOptions{Name: "copied"})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, "import of skopeo's copy", want, index(t, img), true)

	if !isRoot {
		t.Skip("umoci unpack keeps owners and devices only as root (CI runs as root)")
	}
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	os.Mkdir(layoutDir, 0o755)
	if out, err := exec.Command("tar", "-xf", file, "-C", layoutDir).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v: %s", err, out)
	}
	bundle := filepath.Join(dir, "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", layoutDir+":1", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v: %s", err, out)
	}
	got, err := BuildIndex(filepath.Join(bundle, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, "umoci unpack", want, got, true)
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
