package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"

	"jailmgr/store"
)

// A bootstrap is a function of its inputs: the archive's published state
// and the options that shape the tree. When the newest version of an image
// was built from the same inputs, building again would only commit an equal
// tree under a new number, so Run returns that version instead (unless
// --force). The inputs are recorded in the manifest as one hash. Run asks
// before it reads the Packages indexes: the pockets' signed InRelease files
// settle the archive's state, so a repeated bootstrap costs their download.

// archiveState is one pocket of an archive as a bootstrap read it: its
// suite, its mirror, and its published state, which the signed InRelease
// (or Release) file pins down: every index it lists is checked against it.
type archiveState struct {
	Suite, Mirror, InReleaseSHA256 string
}

// buildInputs is what decides the tree a bootstrap builds. Left out, as
// they do not change the tree: the image name, --jobs, the keyring (it only
// decides whether the archive is trusted; the InRelease hash pins what was
// read) and the mirror's origin (flag, config or apt sources).
type buildInputs struct {
	// Tool is jailmgr's own build: another one may select, unpack or
	// configure differently, and its suite table is built in.
	Tool    string
	Suite   string
	Variant string
	Arch    string
	// Components keep their order: sources.list lists them so.
	Components []string
	// Include and Exclude are sets: Select closes the seeds over their
	// dependencies into a sorted list, so neither their order nor repeats
	// change the selection.
	Include []string
	Exclude []string
	// CustomizeHooks keep their order: they run one after the other on
	// the same root. Only their text is an input; a hook that reads
	// something else (a file, the network) needs --force to see it change.
	CustomizeHooks []string
	// Mirror is the release pocket's.
	Mirror string
	// Pockets keep their order: it is the order the indexes are read in
	// (where two pockets hold the same version the earlier one is used)
	// and the order of the image's sources.list.
	Pockets   []archiveState
	MergedUsr bool
	// IgnoreValidUntil writes an apt setting into the image.
	IgnoreValidUntil bool
	// SourceDateEpoch clamps the tree's times and sets the creation time.
	// Unset, it is "": a bootstrap without it reuses a version built
	// without it, with that build's times.
	SourceDateEpoch string
}

// inputsVersion names the encoding hashed below; a change of what the hash
// covers or how must change it, so that old manifests stop matching.
const inputsVersion = "jailmgr bootstrap inputs 1\n"

// hash is the canonical SHA256 of the inputs, hex-encoded. Every field is
// written with its name, lists with their length and strings Go-quoted,
// which is one-to-one for any bytes (encoding/json would turn invalid
// UTF-8 of two different hooks into the same U+FFFD).
func (in buildInputs) hash() string {
	h := sha256.New()
	io.WriteString(h, inputsVersion)
	str := func(k, v string) { fmt.Fprintf(h, "%s %q\n", k, v) }
	list := func(k string, vs []string) {
		fmt.Fprintf(h, "%s %d", k, len(vs))
		for _, v := range vs {
			fmt.Fprintf(h, " %q", v)
		}
		io.WriteString(h, "\n")
	}
	str("tool", in.Tool)
	str("suite", in.Suite)
	str("variant", in.Variant)
	str("arch", in.Arch)
	list("components", in.Components)
	list("include", sortedSet(in.Include))
	list("exclude", sortedSet(in.Exclude))
	list("customize-hooks", in.CustomizeHooks)
	str("mirror", in.Mirror)
	fmt.Fprintf(h, "pockets %d\n", len(in.Pockets))
	for _, p := range in.Pockets {
		list("pocket", []string{p.Suite, p.Mirror, p.InReleaseSHA256})
	}
	str("merged-usr", strconv.FormatBool(in.MergedUsr))
	str("ignore-valid-until", strconv.FormatBool(in.IgnoreValidUntil))
	epoch := in.SourceDateEpoch
	if secs, err := strconv.ParseInt(epoch, 10, 64); err == nil {
		epoch = strconv.FormatInt(secs, 10) // "0100" clamps as "100" does
	}
	str("source-date-epoch", epoch)
	return hex.EncodeToString(h.Sum(nil))
}

// sortedSet is s sorted, without repeats.
func sortedSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// inputsOf collects the inputs of a bootstrap whose options have their
// defaults set, planned as p, that read the given pockets.
func inputsOf(o *Options, p *Plan, pockets []archiveState) buildInputs {
	return buildInputs{
		Tool:    toolVersion(),
		Suite:   o.Suite,
		Variant: o.Variant, Arch: o.Arch,
		Components: p.Components,
		Include:    o.Include, Exclude: o.Exclude,
		CustomizeHooks:   o.CustomizeHooks,
		Mirror:           p.Mirror,
		Pockets:          pockets,
		MergedUsr:        p.MergedUsr,
		IgnoreValidUntil: o.IgnoreValidUntil,
		SourceDateEpoch:  os.Getenv("SOURCE_DATE_EPOCH"),
	}
}

// pocketsOf is the archive state an index was read from: every pocket,
// the release first.
func pocketsOf(idx *Index) []archiveState {
	out := make([]archiveState, 0, len(idx.Pockets))
	for _, ps := range idx.Pockets {
		out = append(out, archiveState{Suite: ps.Suite, Mirror: ps.Mirror, InReleaseSHA256: ps.InReleaseSHA256})
	}
	return out
}

// toolVersion identifies this build of jailmgr: the SHA256 of its own
// executable, read once (about 20 ms). A version string would not do:
// builds without version-control stamps (GOFLAGS=-buildvcs=false, a
// source tarball) all say "(devel)", whatever their code.
var toolVersion = sync.OnceValue(func() string {
	if f, err := os.Open("/proc/self/exe"); err == nil {
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err == nil {
			return "sha256:" + hex.EncodeToString(h.Sum(nil))
		}
	}
	// Without /proc, only the module version tells builds apart.
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return ""
})

// reuse returns the newest version of o.Name when it was built from the
// inputs a bootstrap with o and p has now, saying so; nil when a build is
// due (always with Force). archive gives the state of the pockets, and is
// only asked when that version records inputs at all: that is the one
// network use, a few KiB.
func reuse(st *store.Store, o *Options, p *Plan, archive func() ([]archiveState, error), logf func(string, ...any)) (*store.Image, error) {
	if !store.ValidName(o.Name) {
		// Not a reference either: "NAME:TAG" would resolve to a version
		// of some image. The commit would refuse it after all the work.
		return nil, fmt.Errorf("%w: --name %q: an image name is letters, digits, '.', '-' and '_'", ErrUsage, o.Name)
	}
	if o.Force {
		return nil, nil
	}
	img, err := st.Resolve(o.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		logf("not reusing %s: %v", o.Name, err)
		return nil, nil
	case img.Manifest.InputsSHA256 == "":
		return nil, nil // an update's, or older than inputs: build
	}
	pockets, err := archive()
	if err != nil {
		return nil, err
	}
	if inputsOf(o, p, pockets).hash() != img.Manifest.InputsSHA256 {
		logf("%s was built from other inputs: building a new version", img.Ref())
		return nil, nil
	}
	if err := present(img); err != nil {
		logf("not reusing %s: it has the same inputs but is not whole (%v)", img.Ref(), err)
		return nil, nil
	}
	logf("%s has the same inputs: reusing it (--force builds anyway)", img.Ref())
	return img, nil
}

// archiveNow fetches and verifies the InRelease (or Release) file of every
// pocket of the plan, as fetchIndex does first: the archive's state without
// its Packages indexes, whose reading (even from the index cache) is most
// of a second per pocket.
func archiveNow(ctx context.Context, o *Options, p *Plan) ([]archiveState, error) {
	keyring, err := loadKeyring(p.Keyring)
	if err != nil {
		return nil, err
	}
	var out []archiveState
	for _, pk := range p.pockets(o.Suite) {
		_, sum, err := fetchPocketRelease(ctx, o, p.Keyring, keyring, pk)
		if err != nil {
			return nil, err
		}
		out = append(out, archiveState{Suite: pk.Suite, Mirror: pk.Mirror, InReleaseSHA256: sum})
	}
	return out, nil
}

// present checks, in a few stats, that a version is still all there: its
// root with a dpkg database and the file index its commit wrote. What is
// inside is for 'image verify', which reads every file.
func present(img *store.Image) error {
	fi, err := os.Lstat(img.RootFS())
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", img.RootFS())
	}
	for _, p := range []string{filepath.Join(img.Dir, store.IndexFile), filepath.Join(img.RootFS(), "var/lib/dpkg/status")} {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
	}
	if len(img.Manifest.Packages) == 0 {
		return fmt.Errorf("its manifest lists no packages")
	}
	return nil
}
