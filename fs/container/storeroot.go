package container

import "path/filepath"

// StoreRoot is the root of the store the containers are in (their
// directory is StoreRoot/containers): other state of the store's
// containers, such as their networks, lives there.
func (m *Manager) StoreRoot() string { return filepath.Dir(m.dir) }
