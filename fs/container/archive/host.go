package archive

import (
	"fmt"
	"strings"

	"github.com/acetate/acetate/fs/container"
)

// confine takes out of s what reaches the host rather than the container
// (bind mounts of host paths, a seccomp profile read from a host path or
// none at all, the host's network, published host ports), and says what
// it took. The attack it stops: an archive or a pushed container, made by
// whoever could write it, whose settings bind the host's / into the
// container, or turn its system call filter off, the first time an
// operator starts what they imported. Import and Pull apply it unless
// told the settings are trusted (a move between one's own stores).
func confine(s *container.Settings) []string {
	var dropped []string
	kept := s.Mounts[:0:0]
	for _, m := range s.Mounts {
		if m.Type == container.MountBind {
			dropped = append(dropped, fmt.Sprintf("bind mount %s:%s", m.Source, m.Target))
			continue
		}
		kept = append(kept, m)
	}
	s.Mounts = kept
	if s.Seccomp != "" {
		dropped = append(dropped, "seccomp "+s.Seccomp)
		s.Seccomp = ""
	}
	if s.Network == "host" {
		dropped = append(dropped, "network host")
		s.Network = ""
	}
	if len(s.Publish) > 0 {
		dropped = append(dropped, "published ports "+strings.Join(s.Publish, ","))
		s.Publish = nil
	}
	return dropped
}

// confineAll applies confine to the record and the snapshots' records
// unless trusted, and returns what it took out, once each.
func confineAll(trusted bool, rec *container.Container, snaps []*container.Snapshot) []string {
	if trusted {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range append([]*container.Settings{&rec.Settings}, settingsOf(snaps)...) {
		for _, d := range confine(s) {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}

func settingsOf(snaps []*container.Snapshot) []*container.Settings {
	out := make([]*container.Settings, len(snaps))
	for i, s := range snaps {
		out[i] = &s.Container.Settings
	}
	return out
}
