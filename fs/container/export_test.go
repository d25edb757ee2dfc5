package container

import (
	"context"
	"errors"
)

// RestoreCutShort restores container name to snapshot snap as
// RestoreSnapshot does, but stops as a crash would: right after the
// restore intent is written (exchanged false), or right after the upper
// directory is exchanged, before the record is written (exchanged true).
func (m *Manager) RestoreCutShort(ctx context.Context, name, snap string, exchanged bool) error {
	s, err := m.GetSnapshot(name, snap)
	if err != nil {
		return err
	}
	rec := s.Container
	rec.Name, rec.Mount = name, nil
	errCrash := errors.New("crash")
	err = m.replaceUpper(ctx, name, s.Layer, nil, func(upper uint64) error {
		if err := writeJSON(m.path(name, restoreIntentFile), &restoreIntent{Upper: upper, Record: &rec}, durable); err != nil {
			return err
		}
		if !exchanged {
			return errCrash // the intent is written, the exchange never happens
		}
		return nil
	})
	if errors.Is(err, errCrash) {
		return nil
	}
	return err
}
