package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The parts of the OCI image spec (v1.1) that jailmgr writes and reads.
// Fields are declared in the spec's order with its JSON names, so that
// encoding/json writes the documents every OCI tool writes; fields that
// jailmgr neither sets nor reads are left out.

// Media types of OCI documents and layers.
const (
	MediaTypeImageIndex     = "application/vnd.oci.image.index.v1+json"
	MediaTypeImageManifest  = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeImageConfig    = "application/vnd.oci.image.config.v1+json"
	MediaTypeImageLayer     = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeImageLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeImageLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
)

// Annotation keys of the OCI image spec.
const (
	AnnotationCreated     = "org.opencontainers.image.created"
	AnnotationVersion     = "org.opencontainers.image.version"
	AnnotationRefName     = "org.opencontainers.image.ref.name"
	AnnotationTitle       = "org.opencontainers.image.title"
	AnnotationDescription = "org.opencontainers.image.description"
)

// Names in an OCI image layout, and the layout version jailmgr writes.
const (
	ImageLayoutFile    = "oci-layout"
	ImageLayoutVersion = "1.0.0"
	ImageIndexFile     = "index.json"
	ImageBlobsDir      = "blobs"
)

// OCILayout is the oci-layout file of an image layout.
type OCILayout struct {
	Version string `json:"imageLayoutVersion"`
}

// OCIDescriptor names a blob: its media type, digest and size.
type OCIDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      Digest            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *OCIPlatform      `json:"platform,omitempty"`
}

// OCIPlatform is the CPU and operating system an image runs on.
type OCIPlatform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// OCIIndex is the index.json of a layout: the manifests it holds.
type OCIIndex struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType,omitempty"`
	Manifests     []OCIDescriptor `json:"manifests"`
}

// OCIManifest is an image manifest: the config and layers of an image.
type OCIManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	Config        OCIDescriptor     `json:"config"`
	Layers        []OCIDescriptor   `json:"layers"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// OCIImage is an image config: the platform, how to run the image, and
// the diff_ids of its layers.
type OCIImage struct {
	Created *time.Time `json:"created,omitempty"`
	OCIPlatform
	Config  OCIImageConfig `json:"config"`
	RootFS  OCIRootFS      `json:"rootfs"`
	History []OCIHistory   `json:"history,omitempty"`
}

// OCIImageConfig is the execution part of an image config.
type OCIImageConfig struct {
	Env    []string          `json:"Env,omitempty"`
	Cmd    []string          `json:"Cmd,omitempty"`
	Labels map[string]string `json:"Labels,omitempty"`
}

// OCIRootFS lists the digests of the uncompressed layers (diff_ids).
type OCIRootFS struct {
	Type    string   `json:"type"`
	DiffIDs []Digest `json:"diff_ids"`
}

// OCIHistory is one step of the history of an image config.
type OCIHistory struct {
	Created   *time.Time `json:"created,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	Comment   string     `json:"comment,omitempty"`
}

// Digest is a content digest, "sha256:" and 64 lowercase hex digits.
type Digest string

// Algorithm is the part of d before the colon.
func (d Digest) Algorithm() string {
	alg, _, _ := strings.Cut(string(d), ":")
	return alg
}

// Encoded is the part of d after the colon.
func (d Digest) Encoded() string {
	_, enc, _ := strings.Cut(string(d), ":")
	return enc
}

var errDigestForm = errors.New("not a digest (sha256:<64 lowercase hex digits>)")

// Validate checks that d is a sha256 digest, the only kind jailmgr checks.
func (d Digest) Validate() error {
	alg, enc, ok := strings.Cut(string(d), ":")
	switch {
	case !ok || alg == "":
		return errDigestForm
	case alg != "sha256":
		return fmt.Errorf("algorithm %s: jailmgr checks sha256 digests", alg)
	case len(enc) != 64 || strings.Trim(enc, "0123456789abcdef") != "":
		return errDigestForm
	}
	return nil
}
