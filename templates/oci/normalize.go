package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
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

func normalized(blob io.Reader) *normalizer {
	pr, pw := io.Pipe()
	n := &normalizer{PipeReader: pr, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		pw.CloseWithError(n.copy(blob, pw))
	}()
	return n
}

// Close stops the copy and waits until it no longer reads the blob.
func (n *normalizer) Close() error {
	err := n.PipeReader.Close()
	<-n.done
	return err
}

func (n *normalizer) copy(blob io.Reader, w io.Writer) error {
	plain, closeFn, err := decompress(blob)
	if err != nil {
		return err
	}
	defer closeFn()
	tr, tw := tar.NewReader(plain), tar.NewWriter(w)
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			n.empty = entries == 0
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("layer tar: %w", err)
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

// decompress detects gzip and zstd from the first bytes of r.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("layer blob: %w", err)
		}
		return z, func() { z.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("layer blob: %w", err)
		}
		return z, z.Close, nil
	}
	return br, func() {}, nil
}
