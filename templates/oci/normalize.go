package oci

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/acetate/acetate/layers"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// normalizer turns the tar stream of a layer blob (plain, gzip or zstd)
// into the form the store reads: entry and hardlink names made relative
// ("/etc/x" → "etc/x"), as container runtimes read them (umoci, for one,
// writes the root as "/"). Nothing else changes; "../" stays and is refused
// by the store.
type normalizer struct {
	*io.PipeReader
	done chan struct{}
	// empty says, after Close, that the stream ended cleanly without entries.
	empty bool
}

// normalized normalizes the layer blob whose uncompressed tar stream must
// hash to diffID: on a mismatch the output fails before its end-of-archive
// marker, so the store never takes the layer.
func normalized(blob io.Reader, diffID v1.Hash) *normalizer {
	pr, pw := io.Pipe()
	n := &normalizer{PipeReader: pr, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		pw.CloseWithError(n.copy(blob, diffID, pw))
	}()
	return n
}

// Close stops the copy and waits until it no longer reads the blob.
func (n *normalizer) Close() error {
	err := n.PipeReader.Close()
	<-n.done
	return err
}

func (n *normalizer) copy(blob io.Reader, diffID v1.Hash, w io.Writer) error {
	plain, err := layers.NewUncompressed(blob)
	if err != nil {
		return fmt.Errorf("layer blob: %w", err)
	}
	defer plain.Close()
	h := sha256.New()
	plain.Tee(h)
	tr, tw := tar.NewReader(plain), tar.NewWriter(w)
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			n.empty = entries == 0
			if err := checkDiffID(plain, h, diffID); err != nil {
				return err
			}
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("layer tar: %w", plain.Explain(err))
		}
		hdr.Name = relative(hdr.Name)
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = relative(hdr.Linkname)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("layer tar entry %q: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("layer tar entry %q: %w", hdr.Name, err)
		}
	}
}

func relative(name string) string {
	if !strings.HasPrefix(name, "/") {
		return name
	}
	if name = strings.TrimLeft(name, "/"); name == "" {
		return "./"
	}
	return name
}

// checkDiffID reads the rest of the uncompressed stream and checks that all
// of it hashed to diffID.
func checkDiffID(plain *layers.Uncompressed, h hash.Hash, diffID v1.Hash) error {
	if err := plain.Finish(layers.MaxTarTrailer); err != nil {
		return fmt.Errorf("layer blob: %w", err)
	}
	if got := fmt.Sprintf("%x", h.Sum(nil)); diffID.Algorithm != "sha256" || got != diffID.Hex {
		return fmt.Errorf("uncompressed layer hashes to sha256:%s, the image config's diff_id is %s: %w", got, diffID, layers.ErrCorrupt)
	}
	return nil
}
