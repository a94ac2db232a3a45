package bootstrap

import (
	"context"
	"errors"
	"testing"

	"jailmgr/debian/archivetest"
	"jailmgr/debian/release"
)

func TestReleaseFallback(t *testing.T) {
	a := tinyArchive()
	a.NoInRelease = true
	srv := archivetest.Serve(t, a)
	o := options(srv)
	p, err := MakePlan(&o)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := fetchIndex(context.Background(), &o, p, indexCache{})
	if err != nil {
		t.Fatalf("Release + Release.gpg: %v", err)
	}
	if len(idx.Packages["libfoo"]) != 1 || idx.Packages["libfoo"][0].Version != "1.2" {
		t.Errorf("index = %v", idx.Packages)
	}
	if srv.Requests("dists/bookworm/Release.gpg") == 0 {
		t.Errorf("Release.gpg was not fetched")
	}
}

func TestUnsignedRefused(t *testing.T) {
	a := tinyArchive()
	a.Unsigned = true
	srv := archivetest.Serve(t, a)
	o := options(srv)
	p, err := MakePlan(&o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fetchIndex(context.Background(), &o, p, indexCache{}); !errors.Is(err, release.ErrNotSigned) {
		t.Errorf("unsigned archive: err = %v, want ErrNotSigned", err)
	}
}

func TestForeignArchRefused(t *testing.T) {
	o := Options{Suite: "bookworm", Arch: "s390x", Mirror: "http://127.0.0.1:1/debian"}
	if hostArch() == "s390x" {
		o.Arch = "amd64"
	}
	if _, err := MakePlan(&o); !errors.Is(err, ErrUsage) {
		t.Errorf("foreign arch: err = %v, want ErrUsage", err)
	}
}
