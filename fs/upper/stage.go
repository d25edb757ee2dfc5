package upper

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/acetate/acetate/layers"
	"github.com/opencontainers/go-digest"
)

// stager stages the content of the files a walk hands it on all cores,
// as layers.Store.ReadDir does, with at most one open file per worker
// waiting.
type stager struct {
	ctx  context.Context
	t    *layers.Tree
	p    layers.Progress
	jobs chan stageJob
	wg   sync.WaitGroup

	mu     sync.Mutex
	err    error
	staged map[string]stagedFile // path -> content
}

type stageJob struct {
	path string
	f    *os.File
}

type stagedFile struct {
	digest digest.Digest
	size   int64
}

func newStager(ctx context.Context, t *layers.Tree, p layers.Progress) *stager {
	s := &stager{ctx: ctx, t: t, p: p, jobs: make(chan stageJob), staged: map[string]stagedFile{}}
	for range 2 * runtime.NumCPU() {
		s.wg.Add(1)
		go s.work()
	}
	return s
}

// stage is a stageFunc: it hands f to a worker, which closes it.
func (s *stager) stage(e *layers.Entry, f *os.File) error {
	if err := s.failed(); err != nil {
		f.Close()
		return err
	}
	select {
	case s.jobs <- stageJob{e.Path, f}:
		return nil
	case <-s.ctx.Done():
		f.Close()
		return s.ctx.Err()
	}
}

func (s *stager) work() {
	defer s.wg.Done()
	for j := range s.jobs {
		d, n, err := s.t.StageFile(j.f)
		j.f.Close()
		s.mu.Lock()
		if err != nil && s.err == nil {
			s.err = fmt.Errorf("upper dir: %q: %w", j.path, err)
		}
		s.staged[j.path] = stagedFile{d, n}
		s.mu.Unlock()
		if err == nil && s.p != nil {
			s.p.Advance(n)
		}
	}
}

func (s *stager) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// wait waits for the workers to finish and returns the first error.
func (s *stager) wait() error {
	close(s.jobs)
	s.wg.Wait()
	return s.err
}

// fill gives every regular file of m held in full its content's digest
// and size (a hardlink its leader's).
func (s *stager) fill(m *layers.Manifest) {
	for i := range m.Entries {
		e := &m.Entries[i]
		key := e.Path
		if e.LinkTo != "" {
			key = e.LinkTo
		}
		if f, ok := s.staged[key]; ok && e.Type == layers.TypeReg && e.Digest == "" {
			e.Digest, e.Size = f.digest, f.size
		}
	}
}
