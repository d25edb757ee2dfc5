package registry

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/acetate/acetate/layers"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// A layer blob carries what a puller needs to know about one acetate layer:
// a zstd tar holding "manifest", the layer manifest's canonical encoding,
// and "packs", one line "DIGEST SIZE" per pack in partition order.

func encodeLayerBlob(m *layers.Manifest, packs []pack) ([]byte, error) {
	var lines strings.Builder
	for _, p := range packs {
		fmt.Fprintf(&lines, "%s %d\n", p.digest, p.size)
	}
	var b bytes.Buffer
	zw, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		data []byte
	}{{"manifest", m.Encode()}, {"packs", []byte(lines.String())}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// decodeLayerBlob reads a layer blob and checks the manifest against the
// layer digest want.
func decodeLayerBlob(blob []byte, want digest.Digest) (*layers.Manifest, []pack, error) {
	zr, err := zstd.NewReader(bytes.NewReader(blob), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, nil, err
	}
	defer zr.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("layer blob: %w", err)
		}
		if files[hdr.Name], err = io.ReadAll(tr); err != nil {
			return nil, nil, fmt.Errorf("layer blob: %w", err)
		}
	}
	raw := files["manifest"]
	if got := digest.FromBytes(raw); got != want {
		return nil, nil, fmt.Errorf("layer %s: manifest hashes to %s: %w", want, got, layers.ErrCorrupt)
	}
	m, err := layers.DecodeManifest(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("layer %s: %w", want, err)
	}
	packs, err := parsePacks(files["packs"])
	if err != nil {
		return nil, nil, fmt.Errorf("layer %s: %w", want, err)
	}
	return m, packs, nil
}

func parsePacks(b []byte) ([]pack, error) {
	var packs []pack
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var p pack
		var d string
		if _, err := fmt.Sscanf(sc.Text(), "%s %d", &d, &p.size); err != nil {
			return nil, fmt.Errorf("pack list line %q: %w", sc.Text(), err)
		}
		p.digest = digest.Digest(d)
		if err := p.digest.Validate(); err != nil || p.size < 0 {
			return nil, fmt.Errorf("pack list line %q: bad digest or size", sc.Text())
		}
		packs = append(packs, p)
	}
	return packs, sc.Err()
}
