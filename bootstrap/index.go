package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unique"

	"github.com/ProtonMail/go-crypto/openpgp"

	"jailmgr/debian/control"
	"jailmgr/debian/dependency"
	"jailmgr/debian/release"
	"jailmgr/debian/version"
)

// ErrVerify is wrapped by every size, hash or signature mismatch.
var ErrVerify = errors.New("bootstrap: verification failed")

// HashError names a file whose size or SHA256 is not what the signed index says.
type HashError struct {
	File               string
	WantSize, GotSize  int64
	WantSHA256, GotSHA string
}

func (e *HashError) Error() string {
	if e.WantSize != e.GotSize {
		return fmt.Sprintf("verify %s: size is %d bytes, the index says %d (a truncated or altered download; try again, or use another mirror)", e.File, e.GotSize, e.WantSize)
	}
	return fmt.Sprintf("verify %s: sha256 is %s, the index says %s (the file was altered; use another mirror)", e.File, e.GotSHA, e.WantSHA256)
}

func (e *HashError) Unwrap() error { return ErrVerify }

// Candidate is one package of the archive's Packages indexes.
type Candidate struct {
	Name, Version, Arch, Priority, MultiArch, Component string
	Essential                                           bool
	Filename                                            string
	Size                                                int64
	SHA256                                              string
	// Mirror is the mirror Filename is relative to: that of the pocket
	// the candidate came from (Debian's security pocket has its own pool).
	Mirror string

	depends, preDepends, provides string
	rel                           *relations // parsed on first use
}

// relations are a candidate's parsed relation fields. Most candidates of an
// index are never looked at, so they are parsed only when needed.
type relations struct {
	deps, predeps, provs dependency.Relations
}

// ver is the candidate's version, checked when the index was read.
func (c *Candidate) ver() version.Version {
	v, _ := version.Parse(c.Version)
	return v
}

// relations parses the candidate's relation fields once.
func (c *Candidate) relations() error {
	if c.rel != nil {
		return nil
	}
	r := &relations{}
	var err error
	if r.deps, err = dependency.Parse(c.depends); err != nil {
		return fmt.Errorf("%s %s: Depends: %w", c.Name, c.Version, err)
	}
	if r.predeps, err = dependency.Parse(c.preDepends); err != nil {
		return fmt.Errorf("%s %s: Pre-Depends: %w", c.Name, c.Version, err)
	}
	if r.provs, err = dependency.Parse(c.provides); err != nil {
		return fmt.Errorf("%s %s: Provides: %w", c.Name, c.Version, err)
	}
	c.rel = r
	return nil
}

// Index is the verified view of a suite's pockets on their mirrors.
type Index struct {
	Release         *release.Release // the release pocket's
	InReleaseSHA256 string           // the release pocket's
	// Pockets are the pockets read, the release first, each with the
	// SHA256 of the InRelease (or Release) file that was verified.
	Pockets    []PocketState
	Components []string
	// Packages holds every candidate of every pocket by name, newest
	// version first, as apt would choose among them.
	Packages map[string][]*Candidate
}

// PocketState is the state of one pocket that an index was read from.
type PocketState struct {
	Suite, Mirror, InReleaseSHA256 string
}

// fetchIndex downloads and verifies, for every pocket of the plan,
// InRelease (or Release + Release.gpg) and the Packages index of every
// component, and merges their packages.
func fetchIndex(ctx context.Context, o *Options, p *Plan, cache indexCache) (*Index, error) {
	keyring, err := loadKeyring(p.Keyring)
	if err != nil {
		return nil, err
	}
	idx := &Index{Components: p.Components, Packages: map[string][]*Candidate{}}
	for i, pk := range p.pockets(o.Suite) {
		rel, sum, err := fetchPocketRelease(ctx, o, p.Keyring, keyring, pk)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			idx.Release, idx.InReleaseSHA256 = rel, sum
		}
		idx.Pockets = append(idx.Pockets, PocketState{Suite: pk.Suite, Mirror: pk.Mirror, InReleaseSHA256: sum})
		for _, comp := range p.Components {
			if !hasComponent(rel.Components, comp) {
				return nil, fmt.Errorf("%w: %s has no component %s (it has %s)", ErrUsage, pk.Suite, comp, strings.Join(rel.Components, " "))
			}
			if err := idx.fetchPackages(ctx, o, pk, rel, comp, cache); err != nil {
				return nil, err
			}
		}
	}
	for name, cs := range idx.Packages {
		sortNewestFirst(cs)
		idx.Packages[name] = dropCopies(cs)
	}
	return idx, nil
}

// fetchPocketRelease downloads and verifies one pocket's InRelease (or
// Release and Release.gpg) and returns the parsed Release with the SHA256
// of the file that was verified.
func fetchPocketRelease(ctx context.Context, o *Options, keyringPath string, keyring openpgp.EntityList, pk Pocket) (*release.Release, string, error) {
	dist := "dists/" + pk.Suite
	now := o.Now()
	raw, content, err := fetchRelease(ctx, o, pk.Mirror, dist, keyring, keyringPath)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(raw)
	rel, err := release.Parse(bytes.NewReader(content))
	if err != nil {
		return nil, "", fmt.Errorf("read %s/Release: %w", dist, err)
	}
	if err := rel.CheckValid(now); err != nil {
		if !o.IgnoreValidUntil {
			return nil, "", fmt.Errorf("verify %s/%s: %w (the mirror is stale; use another one, or pass --ignore-valid-until to proceed with a snapshot archive or a frozen mirror)", pk.Mirror, dist, err)
		}
		fmt.Fprintf(o.Log, "%s/%s: %v; accepted because of --ignore-valid-until (its signature and hashes are checked)\n", pk.Mirror, dist, err)
	}
	if len(rel.Architectures) > 0 && !slices.Contains(rel.Architectures, o.Arch) {
		return nil, "", fmt.Errorf("%w: %s has no architecture %s (it has %s)", ErrUsage, pk.Suite, o.Arch, strings.Join(rel.Architectures, " "))
	}
	return rel, hex.EncodeToString(sum[:]), nil
}

// fetchPackages streams one component's Packages index of a pocket:
// downloaded, hashed, decompressed and parsed in one pass; nothing is kept
// if the hash is wrong.
func (idx *Index) fetchPackages(ctx context.Context, o *Options, pk Pocket, rel *release.Release, comp string, cache indexCache) error {
	base := comp + "/binary-" + o.Arch + "/Packages"
	var name string
	var want release.FileHash
	for _, ext := range []string{".xz", ".gz", ""} {
		if fh, ok := rel.Files[base+ext]; ok {
			name, want = base+ext, fh
			break
		}
	}
	if name == "" {
		return fmt.Errorf("%w: the Release file of %s lists no %s index", ErrVerify, pk.Suite, base)
	}
	found := map[string][]*Candidate{}
	src := source{mirror: pk.Mirror, comp: comp, arch: o.Arch}
	hit, err := cache.read(want.SHA256, func(r io.Reader) error { return parsePackages(r, name, src, found) })
	if err != nil {
		return err
	}
	if !hit {
		err = withRetry(ctx, func() error {
			clear(found)
			return fetchPackagesFile(ctx, o, pk, name, src, want, cache, found)
		})
		if err != nil {
			return err
		}
	}
	for k, v := range found {
		idx.Packages[k] = append(idx.Packages[k], v...)
	}
	return nil
}

// fetchPackagesFile streams one Packages index: downloaded, hashed,
// decompressed, parsed and copied into the index cache in one pass; the
// copy is kept only if the hash is right.
func fetchPackagesFile(ctx context.Context, o *Options, pk Pocket, name string, src source, want release.FileHash, cache indexCache, found map[string][]*Candidate) error {
	path := "dists/" + pk.Suite + "/" + name
	body, _, err := open(ctx, o.Client, pk.Mirror, path)
	if err != nil {
		return err
	}
	defer body.Close()
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(io.LimitReader(body, want.Size+1), h)}
	dec, err := decompress(name, counted)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer dec.Close()
	w, err := cache.create()
	if err != nil {
		return err
	}
	defer w.abort()
	parseErr := parsePackages(io.TeeReader(dec, w), name, src, found)
	// Drain what is left so the hash covers the whole file.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return retryable{fmt.Errorf("get %s: %w", path, err)}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if counted.n != want.Size || got != want.SHA256 {
		herr := &HashError{File: path, WantSize: want.Size, GotSize: counted.n, WantSHA256: want.SHA256, GotSHA: got}
		if counted.n < want.Size {
			return retryable{herr}
		}
		return herr
	}
	if parseErr != nil {
		return fmt.Errorf("read %s: %w", path, parseErr)
	}
	return w.commit(want.SHA256)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// source is where the candidates of one Packages index come from.
type source struct {
	mirror, comp, arch string
}

// parsePackages reads a Packages index, keeping packages of src.arch or "all".
func parsePackages(r io.Reader, name string, src source, out map[string][]*Candidate) error {
	cr := control.NewReader(r, name)
	for {
		para, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		a := para.Get("Architecture")
		if a != src.arch && a != "all" {
			continue
		}
		c := newCandidate(para, a, src)
		if c.Name == "" || c.Filename == "" || len(c.SHA256) != 64 {
			return fmt.Errorf("%s: line %d: package %q lacks Package, Filename or SHA256", name, para.Line, c.Name)
		}
		if strings.Contains(c.Filename, "..") || strings.HasPrefix(c.Filename, "/") {
			return fmt.Errorf("%s: line %d: package %s: unsafe Filename %q", name, para.Line, c.Name, c.Filename)
		}
		if c.Size, err = strconv.ParseInt(para.Get("Size"), 10, 64); err != nil || c.Size < 0 {
			return fmt.Errorf("%s: line %d: package %s: Size %q is not a number", name, para.Line, c.Name, para.Get("Size"))
		}
		if _, err = version.Parse(c.Version); err != nil {
			return fmt.Errorf("%s: line %d: package %s: %w", name, para.Line, c.Name, err)
		}
		out[c.Name] = append(out[c.Name], c)
	}
}

// dropCopies removes, from candidates sorted newest first, a version that
// an earlier pocket already has as the same file (Ubuntu copies security
// fixes into -updates): the first pocket's copy is the one used.
func dropCopies(cs []*Candidate) []*Candidate {
	out := cs[:0]
	for i, c := range cs {
		if i > 0 && slices.ContainsFunc(out, func(k *Candidate) bool { return k.Version == c.Version && k.SHA256 == c.SHA256 }) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func sortNewestFirst(cs []*Candidate) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && version.Compare(cs[j].ver(), cs[j-1].ver()) > 0; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// newCandidate keeps what selection and download need of a paragraph, in
// one fresh string: a Packages index has tens of thousands of paragraphs,
// and holding on to their whole text (descriptions and all) would triple
// the bootstrap's peak memory.
func newCandidate(para *control.Paragraph, arch string, src source) *Candidate {
	fields := [...]string{para.Get("Package"), para.Get("Version"), para.Get("Filename"), para.Get("SHA256"),
		para.Get("Depends"), para.Get("Pre-Depends"), para.Get("Provides")}
	n := 0
	for _, f := range fields {
		n += len(f)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fields {
		b.WriteString(f)
	}
	all := b.String()
	var parts [len(fields)]string
	off := 0
	for i, f := range fields {
		parts[i] = all[off : off+len(f)]
		off += len(f)
	}
	return &Candidate{
		Name: parts[0], Version: parts[1], Filename: parts[2], SHA256: parts[3],
		depends: parts[4], preDepends: parts[5], provides: parts[6],
		Arch: intern(arch), Priority: intern(para.Get("Priority")), MultiArch: intern(para.Get("Multi-Arch")),
		Component: src.comp, Mirror: src.mirror, Essential: para.Get("Essential") == "yes",
	}
}

// intern returns the canonical copy of a value that many paragraphs share
// (Priority, Multi-Arch, Architecture), not a slice of one paragraph's text.
func intern(s string) string { return unique.Make(s).Value() }
