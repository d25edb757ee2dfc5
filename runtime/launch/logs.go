package launch

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/acetate/acetate/runtime"
)

// FollowLog copies the log of container name to w. With follow it keeps
// copying what the container writes until the container ends or ctx is done.
func FollowLog(ctx context.Context, l *Launcher, name string, w io.Writer, follow bool) error {
	f, err := os.Open(l.LogPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // never started: no output yet
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		rs, err := runtime.LoadState(l.m.RunDir(name))
		if err != nil {
			return err
		}
		if !rs.Running {
			_, err := io.Copy(w, f) // what it wrote while ending
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
