package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"jailmgr/debian/archivetest"
	"jailmgr/store"
)

func sampleInputs() buildInputs {
	return buildInputs{
		Tool: "v0.0.0-20261208000000-077546f", Suite: "bookworm", Variant: "minbase", Arch: "amd64",
		Components: []string{"main", "contrib"}, Include: []string{"git", "curl"}, Exclude: []string{"nano"},
		CustomizeHooks: []string{"echo a", "echo b"}, Mirror: "http://mirror.invalid/debian",
		Pockets: []archiveState{
			{Suite: "bookworm", Mirror: "http://mirror.invalid/debian", InReleaseSHA256: strings.Repeat("a", 64)},
			{Suite: "bookworm-updates", Mirror: "http://mirror.invalid/debian", InReleaseSHA256: strings.Repeat("b", 64)},
		},
		MergedUsr: true, SourceDateEpoch: "1700000000",
	}
}

// TestInputsHashEveryField changes each field of buildInputs in turn, found
// by reflection so that a field added later is covered too, and wants a
// hash unlike the base's and unlike every other change's.
func TestInputsHashEveryField(t *testing.T) {
	base := sampleInputs()
	seen := map[string]string{base.hash(): "base"}
	try := func(what string, in buildInputs) {
		t.Helper()
		h := in.hash()
		if prev, ok := seen[h]; ok {
			t.Errorf("%s hashes as %s does", what, prev)
		}
		seen[h] = what
	}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		f := typ.Field(i)
		in := sampleInputs()
		v := reflect.ValueOf(&in).Elem().Field(i)
		switch f.Type.Kind() {
		case reflect.String:
			v.SetString(v.String() + "1")
			try(f.Name+" changed", in)
			in = sampleInputs()
			reflect.ValueOf(&in).Elem().Field(i).SetString("")
			try(f.Name+" empty", in)
		case reflect.Bool:
			v.SetBool(!v.Bool())
			try(f.Name+" flipped", in)
		case reflect.Slice:
			switch f.Type.Elem().Kind() {
			case reflect.String:
				v.Set(reflect.Append(v, reflect.ValueOf("extra")))
				try(f.Name+" longer", in)
				in = sampleInputs()
				reflect.ValueOf(&in).Elem().Field(i).Set(reflect.Zero(f.Type))
				try(f.Name+" empty", in)
			case reflect.Struct:
				for j := range v.Len() {
					for k := range f.Type.Elem().NumField() {
						in := sampleInputs()
						s := reflect.ValueOf(&in).Elem().Field(i).Index(j).Field(k)
						s.SetString(s.String() + "1")
						try(f.Name+"["+strconv.Itoa(j)+"]."+f.Type.Elem().Field(k).Name+" changed", in)
					}
				}
				v.Set(v.Slice(0, 1))
				try(f.Name+" shorter", in)
			default:
				t.Fatalf("field %s: no test changes a %s: add one", f.Name, f.Type)
			}
		default:
			t.Fatalf("field %s: no test changes a %s: add one", f.Name, f.Type)
		}
	}
	// Boundaries between list items and fields count.
	in := sampleInputs()
	in.CustomizeHooks = []string{"echo a echo b"}
	try("two hooks joined", in)
	in = sampleInputs()
	in.Components = []string{"main"}
	in.Include = []string{"contrib", "curl", "git"}
	try("a component moved to the includes", in)
}

// TestInputsHashCanonical: what does not change the tree does not change
// the hash. --include and --exclude are sets (Select sorts the closure it
// resolves them to); hooks and components keep their order (hooks run in
// turn; sources.list lists the components in order).
func TestInputsHashCanonical(t *testing.T) {
	base := sampleInputs().hash()
	same := map[string]func(*buildInputs){
		"includes reordered":  func(in *buildInputs) { in.Include = []string{"curl", "git"} },
		"an include repeated": func(in *buildInputs) { in.Include = []string{"git", "curl", "git"} },
		"excludes repeated":   func(in *buildInputs) { in.Exclude = []string{"nano", "nano"} },
		"epoch with a zero":   func(in *buildInputs) { in.SourceDateEpoch = "01700000000" },
	}
	for what, change := range same {
		in := sampleInputs()
		change(&in)
		if in.hash() != base {
			t.Errorf("%s changed the hash", what)
		}
	}
	differ := map[string]func(*buildInputs){
		"hooks reordered":      func(in *buildInputs) { in.CustomizeHooks = []string{"echo b", "echo a"} },
		"components reordered": func(in *buildInputs) { in.Components = []string{"contrib", "main"} },
		"pockets reordered": func(in *buildInputs) {
			in.Pockets[0], in.Pockets[1] = in.Pockets[1], in.Pockets[0]
		},
		"an include moved to the excludes": func(in *buildInputs) {
			in.Include, in.Exclude = []string{"git"}, []string{"curl", "nano"}
		},
	}
	for what, change := range differ {
		in := sampleInputs()
		change(&in)
		if in.hash() == base {
			t.Errorf("%s left the hash as it was", what)
		}
	}
	var empty buildInputs
	if empty.hash() != (buildInputs{Include: []string{}, Pockets: []archiveState{}}).hash() {
		t.Error("nil and empty lists hash differently")
	}
	if h := base; len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("hash %q is not hex SHA256", h)
	}
}

// TestInputsOf: the options, plan and environment reach the inputs.
func TestInputsOf(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1234")
	o := &Options{Suite: "bookworm", Variant: "buildd", Arch: "arm64", Include: []string{"git"}, Exclude: []string{"nano"}, CustomizeHooks: []string{"true"}}
	p := &Plan{Mirror: "http://mirror.invalid/debian", Components: []string{"main"}, MergedUsr: true}
	o.IgnoreValidUntil = true
	in := inputsOf(o, p, pocketsOf(&Index{Pockets: []PocketState{{Suite: "bookworm", Mirror: "http://mirror.invalid/debian", InReleaseSHA256: "abc"}}}))
	want := buildInputs{
		Tool: toolVersion(), Suite: "bookworm", Variant: "buildd", Arch: "arm64", Components: []string{"main"},
		Include: []string{"git"}, Exclude: []string{"nano"}, CustomizeHooks: []string{"true"}, Mirror: "http://mirror.invalid/debian",
		Pockets:   []archiveState{{Suite: "bookworm", Mirror: "http://mirror.invalid/debian", InReleaseSHA256: "abc"}},
		MergedUsr: true, IgnoreValidUntil: true, SourceDateEpoch: "1234",
	}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("inputsOf = %+v\nwant %+v", in, want)
	}
}

// commitFake commits a small tree as the next version of name, built from
// inputs sum.
func commitFake(t *testing.T, st *store.Store, name, sum string) *store.Image {
	t.Helper()
	stg, err := st.NewStaging()
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(stg.Root(), "var/lib/dpkg"), 0o755)
	os.WriteFile(filepath.Join(stg.Root(), "var/lib/dpkg/status"), []byte("Package: base\nStatus: install ok installed\n"), 0o644)
	img, err := stg.Commit(name, &store.Manifest{Suite: "bookworm", InputsSHA256: sum, Packages: []store.Package{{Name: "base", Version: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestReuse: only the newest version counts, only with the same inputs,
// only if it is whole, and never with Force; the archive is asked only
// when that version records inputs.
func TestReuse(t *testing.T) {
	st := openStore(t)
	var log bytes.Buffer
	logf := func(f string, args ...any) { fmt.Fprintf(&log, f+"\n", args...) }
	o := &Options{Name: "test", Suite: "bookworm", Variant: "minbase", Arch: "amd64"}
	p := &Plan{Mirror: "http://mirror.invalid/debian", Components: []string{"main"}}
	state := func(sha string) []archiveState {
		return []archiveState{{Suite: "bookworm", Mirror: p.Mirror, InReleaseSHA256: strings.Repeat(sha, 64)}}
	}
	asked := 0
	now := state("a")
	archive := func() ([]archiveState, error) { asked++; return now, nil }
	sumOf := func(sha string) string { return inputsOf(o, p, state(sha)).hash() }

	if img, err := reuse(st, o, p, archive, logf); img != nil || err != nil || asked != 0 {
		t.Errorf("empty store: reused %v (%v), asked the archive %d times", img, err, asked)
	}
	commitFake(t, st, "test", sumOf("a"))
	v2 := commitFake(t, st, "test", sumOf("b"))
	if img, _ := reuse(st, o, p, archive, logf); img != nil || asked != 1 {
		t.Errorf("reused %v, built from another archive state (asked %d times)", img, asked)
	}
	now = state("b")
	log.Reset()
	if img, err := reuse(st, o, p, archive, logf); err != nil || img == nil || img.Ref() != v2.Ref() ||
		!strings.Contains(log.String(), "test:2 has the same inputs: reusing it (--force builds anyway)") {
		t.Errorf("same inputs as %s: reused %v (%v), log:\n%s", v2.Ref(), img, err, log.String())
	}
	other := *o
	other.Include = []string{"git"}
	if img, _ := reuse(st, &other, p, archive, logf); img != nil {
		t.Errorf("another --include: reused %s", img.Ref())
	}
	other = *o
	other.Name = "other"
	if img, _ := reuse(st, &other, p, archive, logf); img != nil {
		t.Errorf("another name: reused %s", img.Ref())
	}
	other = *o
	other.Force = true
	asked = 0
	if img, _ := reuse(st, &other, p, archive, logf); img != nil || asked != 0 {
		t.Errorf("Force: reused %v, asked the archive %d times", img, asked)
	}
	other = *o
	other.Name = "test:2" // a reference, not a name
	if img, err := reuse(st, &other, p, archive, logf); img != nil || !errors.Is(err, ErrUsage) {
		t.Errorf("name test:2: reused %v (%v), want ErrUsage", img, err)
	}
	failing := func() ([]archiveState, error) { return nil, ErrVerify }
	if _, err := reuse(st, o, p, failing, logf); !errors.Is(err, ErrVerify) {
		t.Errorf("the archive's error is %v, want it returned", err)
	}

	// An update's version carries no inputs: its tree is not a bootstrap's,
	// and the archive is not even asked.
	commitFake(t, st, "test", "")
	asked = 0
	if img, _ := reuse(st, o, p, archive, logf); img != nil || asked != 0 {
		t.Errorf("the parent's inputs reused its update %v (asked %d times)", img, asked)
	}

	v4 := commitFake(t, st, "test", sumOf("b"))
	os.Remove(filepath.Join(v4.RootFS(), "var/lib/dpkg/status"))
	log.Reset()
	if img, _ := reuse(st, o, p, archive, logf); img != nil || !strings.Contains(log.String(), "not whole") {
		t.Errorf("a version without its dpkg status: reused %v, log:\n%s", img, log.String())
	}
	v5 := commitFake(t, st, "test", sumOf("b"))
	os.Remove(filepath.Join(v5.Dir, store.IndexFile))
	if img, _ := reuse(st, o, p, archive, logf); img != nil {
		t.Errorf("a version without its file index: reused %s", img.Ref())
	}
}

// TestBootstrapReuse: a bootstrap with the inputs of the newest version
// returns it, fetching no Packages index and no package and committing
// nothing; another --include, a new publication of the archive, or Force
// builds a new version.
func TestBootstrapReuse(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("a full bootstrap chroots and sets file ownership: run as root (CI does)")
	}
	if testing.Short() {
		t.Skip("bootstraps four images")
	}
	base := minimalSystem(t)
	extra := archivetest.Package{Name: "jailmgr-extra", Version: "1.0", Files: []archivetest.File{{Path: "/usr/share/extra/readme", Data: []byte("extra\n")}}}
	srv := archivetest.Serve(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: append(append([]archivetest.Package{}, base...), markerPackage(), extra)})
	st := openStore(t)
	indexPath := "dists/bookworm/main/binary-" + hostArch() + "/Packages.xz"
	bootstrap := func(what, want string, change func(*Options)) *Result {
		t.Helper()
		o := options(srv)
		if change != nil {
			change(&o)
		}
		res, err := runBootstrap(t, o, st)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, o.Log)
		}
		if res.Image.Ref() != want {
			t.Errorf("%s: %s, want %s\n%s", what, res.Image.Ref(), want, o.Log)
		}
		reused := strings.Contains(o.Log.(*bytes.Buffer).String(), want+" has the same inputs: reusing it")
		if reused != res.Reused {
			t.Errorf("%s: Reused is %v, the log says otherwise:\n%s", what, res.Reused, o.Log)
		}
		ents, _ := os.ReadDir(filepath.Join(st.Dir, "staging"))
		for _, e := range ents {
			t.Errorf("%s: staging leftover %s", what, e.Name())
		}
		return res
	}
	versions := func() int {
		imgs, err := st.Images()
		if err != nil {
			t.Fatal(err)
		}
		return len(imgs)
	}
	poolRequests := func() (n int) {
		for _, p := range srv.Archive.Packages {
			n += srv.Requests(srv.PoolPath(p.Name))
		}
		return n
	}

	v1 := bootstrap("first bootstrap", "test:1", nil)
	if v1.Reused || v1.Image.Manifest.InputsSHA256 == "" {
		t.Fatalf("first bootstrap: reused %v, inputs %q", v1.Reused, v1.Image.Manifest.InputsSHA256)
	}
	// With the index cache emptied, reading the Packages index would
	// download it: the reuse is decided from InRelease alone.
	cached, _ := os.ReadDir(st.IndexCacheDir())
	for _, e := range cached {
		os.Remove(filepath.Join(st.IndexCacheDir(), e.Name()))
	}
	pool, index := poolRequests(), srv.Requests(indexPath)
	again := bootstrap("same inputs", "test:1", nil)
	if !again.Reused || again.Downloaded != 0 || poolRequests() != pool || srv.Requests(indexPath) != index || versions() != 1 {
		t.Errorf("same inputs: reused %v, downloaded %d, %d pool and %d index requests, %d versions; want test:1 reused, nothing fetched, 1 version",
			again.Reused, again.Downloaded, poolRequests()-pool, srv.Requests(indexPath)-index, versions())
	}
	if len(cached) == 0 {
		t.Error("the first bootstrap cached no Packages index: the check above proves nothing")
	}
	if again.Packages != len(v1.Image.Manifest.Packages) {
		t.Errorf("same inputs: %d packages, test:1 has %d", again.Packages, len(v1.Image.Manifest.Packages))
	}
	// Order and repeats of --include do not change what is selected.
	bootstrap("another --include", "test:2", func(o *Options) { o.Include = []string{"jailmgr-extra", "jailmgr-marker"} })
	bootstrap("the same --include reordered", "test:2", func(o *Options) { o.Include = []string{"jailmgr-marker", "jailmgr-extra", "jailmgr-extra"} })
	bootstrap("the first inputs after another version", "test:3", nil)

	// The archive publishes a new version of the marker.
	up := markerPackage()
	up.Version = "1:2.1-1"
	srv.Replace(t, &archivetest.Archive{Suite: "bookworm", Codename: "bookworm", Packages: append(append([]archivetest.Package{}, base...), up, extra)})
	v4 := bootstrap("a new publication", "test:4", nil)
	for _, p := range v4.Image.Manifest.Packages {
		if p.Name == "jailmgr-marker" && p.Version != "1:2.1-1" {
			t.Errorf("test:4 has marker %s, want 1:2.1-1", p.Version)
		}
	}
	bootstrap("Force", "test:5", func(o *Options) { o.Force = true })
	if versions() != 5 {
		t.Errorf("%d versions, want 5", versions())
	}
}
