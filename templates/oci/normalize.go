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

// normalized returns the tar stream of a layer blob (plain, gzip or zstd)
// with entry and hardlink names made relative ("/etc/x" → "etc/x"), as
// container runtimes read them: umoci, for one, writes the root as "/".
// Nothing else changes; "../" stays and is refused by the store.
func normalized(blob io.Reader) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(copyNormalized(blob, pw)) }()
	return pr
}

func copyNormalized(blob io.Reader, w io.Writer) error {
	plain, closeFn, err := decompress(blob)
	if err != nil {
		return err
	}
	defer closeFn()
	tr, tw := tar.NewReader(plain), tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
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
