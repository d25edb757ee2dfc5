package container

// RunDir is the container's runtime state directory (the launcher's pid,
// log and exit status live there).
func (m *Manager) RunDir(name string) string { return m.path(name, "run") }
