package container_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acetate/acetate/fs/container"
	"github.com/acetate/acetate/internal/testtree"
	"github.com/acetate/acetate/layers"
	"github.com/acetate/acetate/templates"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// bait is a host file in a host directory that the attacking container's
// symbolic links point at. Neither its content nor its name may show in
// anything a host tool reads, writes or says.
type bait struct {
	dir, file      string
	secret, name   string
	before         unix.Stat_t
	beforeDirNames []string
}

func newBait(t *testing.T) *bait {
	t.Helper()
	tag := fmt.Sprintf("%d", time.Now().UnixNano())
	b := &bait{dir: filepath.Join(t.TempDir(), "hostdir"), secret: "HOSTSECRET-" + tag, name: "HOSTNAME-" + tag}
	b.file = filepath.Join(b.dir, b.name)
	if err := os.Mkdir(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.file, []byte(b.secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(b.file, &b.before); err != nil {
		t.Fatal(err)
	}
	b.beforeDirNames = dirNames(t, b.dir)
	return b
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// leaks reports whether s holds the host file's content or name.
func (b *bait) leaks(s string) bool {
	return strings.Contains(s, b.secret) || strings.Contains(s, b.name)
}

// check fails the test if what a tool said (output or error) shows the
// host.
func (b *bait) check(t *testing.T, what string, said any) {
	t.Helper()
	if s := fmt.Sprint(said); b.leaks(s) {
		t.Errorf("%s shows the host: %s", what, s)
	}
}

// unchanged fails the test unless the host file and directory are as
// they were: same content, inode, mode, owner, times and names.
func (b *bait) unchanged(t *testing.T) {
	t.Helper()
	var st unix.Stat_t
	content, err := os.ReadFile(b.file)
	if err != nil || unix.Stat(b.file, &st) != nil {
		t.Fatalf("host file gone: %v", err)
	}
	if string(content) != b.secret || st.Ino != b.before.Ino || st.Mode != b.before.Mode ||
		st.Uid != b.before.Uid || st.Mtim != b.before.Mtim || st.Ctim != b.before.Ctim {
		t.Errorf("host file changed: %q, mode %o, ctime %v (was %v)", content, st.Mode, st.Ctim, b.before.Ctim)
	}
	if got := dirNames(t, b.dir); fmt.Sprint(got) != fmt.Sprint(b.beforeDirNames) {
		t.Errorf("host directory changed: %q", got)
	}
}

// swapper is the attacking container, a process of its own as a
// container is. In dir (its mount, or its upper directory as a container
// whose mount was detached still writes it) it exchanges, with renameat2
// RENAME_EXCHANGE in a loop, the regular file named file with a symbolic
// link to the host file and, with dirs, the directory "swapdir" with a
// link to the host directory, making them again when a tool removed them,
// until it is told to stop; it then reports how many exchanges it made.
type swapper struct {
	dir   string
	pairs [][2]string
	host  [2]string // the host file and directory the links point at
	cmd   *exec.Cmd
	out   *bufio.Reader
	swaps int
}

// swapperEnv carries a swapper's arguments to the test binary run as one.
const swapperEnv = "ACETATE_TEST_SWAPPER"

func newSwapper(dir, file string, dirs bool, hostFile, hostDir string) *swapper {
	s := &swapper{dir: dir, pairs: [][2]string{{file, file + ".l"}}, host: [2]string{hostFile, hostDir}}
	if dirs {
		s.pairs = append(s.pairs, [2]string{"swapdir", "swapdir.l"})
	}
	return s
}

// startSwapper runs a swapper process on dir until the test ends or halt.
func startSwapper(t *testing.T, dir, file string, dirs bool, b *bait) *swapper {
	t.Helper()
	s := newSwapper(dir, file, dirs, b.file, b.dir)
	s.cmd = exec.Command(os.Args[0])
	s.cmd.Env = append(os.Environ(), swapperEnv+"="+strings.Join([]string{dir, file, fmt.Sprint(dirs), b.file, b.dir}, "\n"))
	s.cmd.Stderr = os.Stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.out = bufio.NewReader(stdout)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.halt)
	if line, err := s.out.ReadString('\n'); line != "ready\n" {
		t.Fatalf("swapper: %q, %v", line, err)
	}
	return s
}

// halt stops the swapper process and collects its count.
func (s *swapper) halt() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(unix.SIGTERM)
	fmt.Fscan(s.out, &s.swaps)
	s.cmd.Wait()
}

// swapperIfRequested runs this process as a swapper when the test started
// it as one, and exits.
func swapperIfRequested() {
	arg, ok := os.LookupEnv(swapperEnv)
	if !ok {
		return
	}
	a := strings.Split(arg, "\n")
	s := newSwapper(a[0], a[1], a[2] == "true", a[3], a[4])
	if err := s.setup(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	var stop atomic.Bool
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGTERM)
	go func() { <-sig; stop.Store(true) }()
	fmt.Println("ready")
	for !stop.Load() {
		s.exchange()
	}
	fmt.Println(s.swaps)
	os.Exit(0)
}

// exchange exchanges each pair once.
func (s *swapper) exchange() {
	for _, pair := range s.pairs {
		err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(s.dir, pair[0]), unix.AT_FDCWD, filepath.Join(s.dir, pair[1]), unix.RENAME_EXCHANGE)
		switch {
		case err == nil:
			s.swaps++
		case errors.Is(err, unix.ENOENT):
			s.setup()
		}
	}
}

// setup makes what is missing of the pairs to exchange.
func (s *swapper) setup() error {
	p := func(name string) string { return filepath.Join(s.dir, name) }
	file := s.pairs[0][0]
	steps := map[string]func() error{
		file:        func() error { return os.WriteFile(p(file), []byte("container data"), 0o644) },
		file + ".l": func() error { return os.Symlink(s.host[0], p(file+".l")) },
	}
	if len(s.pairs) > 1 {
		steps["swapdir"] = func() error { // made whole: a path into it may be the host's
			if err := os.Mkdir(p("swapdir.new"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p("swapdir.new/own"), []byte("mine"), 0o644); err != nil {
				return err
			}
			return unix.Renameat2(unix.AT_FDCWD, p("swapdir.new"), unix.AT_FDCWD, p("swapdir"), unix.RENAME_NOREPLACE)
		}
		steps["swapdir.l"] = func() error { return os.Symlink(s.host[1], p("swapdir.l")) }
	}
	for name, make := range steps {
		var st unix.Stat_t
		if unix.Lstat(p(name), &st) == nil {
			continue
		}
		if err := make(); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// fooled reads the swapped names in upperDir by path, as the tools did
// before, and reports whether that read the host: the proof that the swap
// really runs where the tools read.
func (b *bait) fooled(upperDir, file string) bool {
	content, err := os.ReadFile(filepath.Join(upperDir, file))
	if err == nil && string(content) == b.secret {
		return true
	}
	ents, _ := os.ReadDir(filepath.Join(upperDir, "swapdir"))
	for _, e := range ents {
		if e.Name() == b.name {
			return true
		}
	}
	return false
}

// layerShows reports whether the top layer of template t holds the host
// file's content or a name from the host directory. (A symbolic link's
// target is the container's own text, naming the host file.)
func layerShows(t *testing.T, e *env, tpl *templates.Template, b *bait) bool {
	t.Helper()
	m, err := e.st.Layers.ReadLayer(tpl.Layers[len(tpl.Layers)-1])
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range m.Entries {
		if b.leaks(en.Path) {
			return true
		}
		if en.Type == layers.TypeReg && en.Digest != "" && objectShows(t, e, en, b) {
			return true
		}
	}
	return false
}

func objectShows(t *testing.T, e *env, en layers.Entry, b *bait) bool {
	r, err := e.st.Layers.OpenObject(en.Digest, en.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	content, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b.leaks(string(content))
}

// treeShows reports whether the tree at dir (a clone's upper directory,
// which the test made) holds the host file's content or name.
func treeShows(t *testing.T, dir string, b *bait) bool {
	t.Helper()
	found := false
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		found = b.leaks(d.Name())
		if d.Type().IsRegular() {
			content, _ := os.ReadFile(p)
			found = found || b.leaks(string(content))
		}
		return nil
	})
	return found
}

// raceRounds is how many times each tool runs against a swapping
// container.
const raceRounds = 25

// TestSwapDuringDiffCommitClone is the attack of issue 13 (item 3): a
// mounted container exchanges a file with a symbolic link to a host file,
// and a directory with a link to a host directory, in a loop, while the
// host runs diff, commit, snapshot and clone on it, on both drivers. No
// host byte may reach a template, a snapshot or a clone, no host name any output or error, and
// the host file and directory stay as they were. A path-based read of the
// same upper directory, run alongside, must be fooled at least once.
func TestSwapDuringDiffCommitClone(t *testing.T) {
	testtree.RequireRoot(t)
	for _, driver := range []string{"overlay", "fuse"} {
		t.Run(driver, func(t *testing.T) {
			e := withContainer(t, map[string]string{"etc/conf": "template"})
			b := newBait(t)
			s := startSwapper(t, e.mountWith("c", driver), "swap", true, b)
			fooled, committed, cloned, snapshotted := 0, 0, 0, 0
			for i := range raceRounds {
				if b.fooled(e.m.UpperDir("c"), "swap") {
					fooled++
				}
				ch, err := e.m.Diff("c")
				b.check(t, "diff", fmt.Sprint(ch, err))
				tpl, err := e.m.Commit(context.Background(), "c", templates.MustParseRef(fmt.Sprintf("snap:%d", i)), nil)
				b.check(t, "commit", err)
				if err == nil {
					committed++
					if layerShows(t, e, tpl, b) {
						t.Errorf("commit %d put the host into a template", i)
					}
				}
				snap, err := e.m.CreateSnapshot(context.Background(), "c", fmt.Sprintf("s%d", i), container.SnapshotOptions{})
				b.check(t, "snapshot", err)
				if err == nil {
					snapshotted++
					if layerShows(t, e, &templates.Template{Layers: []digest.Digest{snap.Layer}}, b) {
						t.Errorf("snapshot %d put the host into the store", i)
					}
				}
				clone := fmt.Sprintf("k%d", i)
				_, err = e.m.Clone("c", clone)
				b.check(t, "clone", err)
				if err == nil {
					cloned++
					if treeShows(t, e.m.UpperDir(clone), b) {
						t.Errorf("clone %d copied the host", i)
					}
					if err := e.m.Remove(clone, false); err != nil {
						t.Fatal(err)
					}
				}
			}
			s.halt()
			t.Logf("%s: %d exchanges, %d commits, %d snapshots and %d clones of %d succeeded, path-based reference fooled %d times",
				driver, s.swaps, committed, snapshotted, cloned, raceRounds, fooled)
			if fooled == 0 {
				t.Error("the path-based reference was never fooled: the swap did not run in the upper directory")
			}
			if committed == 0 || cloned == 0 || snapshotted == 0 {
				t.Error("no commit, snapshot or clone succeeded: a tool that always fails is no defence")
			}
			b.unchanged(t)
		})
	}
}

// TestSwapDuringRebase is the attack of issue 13 (item 4): a container
// whose mount was detached while it ran keeps writing its upper
// directory, exchanging a metacopy file (whose data rebase copies up, as
// the new template changes it) with a symbolic link to a host file, while
// the host rebases it back and forth. Rebase once wrote the template's
// content over the host file. The host file must stay as it was, and no
// host name may show in a report or error.
func TestSwapDuringRebase(t *testing.T) {
	testtree.RequireRoot(t)
	e := newEnv(t)
	// Both names the file takes are in the templates, so that the walk
	// finds its data below whichever it has.
	e.publish("base:1", writeTree(t, map[string]string{"m": "version one", "m.l": "version one"}))
	e.publish("base:2", writeTree(t, map[string]string{"m": "version two", "m.l": "version two"}))
	e.create("c", "base:1")
	upperDir := e.m.UpperDir("c")
	b := newBait(t)
	s := startSwapper(t, upperDir, "m", false, b)
	fooled, rebased := 0, 0
	for i := range 8 * raceRounds {
		if b.fooled(upperDir, "m") {
			fooled++
		}
		for _, name := range []string{"m", "m.l"} { // whichever is the file now
			unix.Lsetxattr(filepath.Join(upperDir, name), "trusted.overlay.metacopy", nil, 0)
		}
		r, err := e.m.Rebase("c", fmt.Sprintf("base:%d", 2-i%2))
		b.check(t, "rebase", fmt.Sprint(r, err))
		if err == nil {
			rebased++
		}
	}
	s.halt()
	t.Logf("%d exchanges, %d of %d rebases succeeded, path-based reference fooled %d times",
		s.swaps, rebased, 8*raceRounds, fooled)
	if fooled == 0 {
		t.Error("the path-based reference was never fooled: the swap did not run")
	}
	if rebased == 0 {
		t.Error("no rebase succeeded: a tool that always fails is no defence")
	}
	b.unchanged(t)
}

// TestSwapDuringReset: a container whose mount was detached keeps
// exchanging a file and a directory with links to a host file and
// directory while the host resets it, removing its old upper directory.
// The removal must not reach the host file or directory.
func TestSwapDuringReset(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "x"})
	b := newBait(t)
	s := startSwapper(t, e.m.UpperDir("c"), "swap", true, b)
	for range raceRounds {
		b.check(t, "reset", e.m.Reset("c"))
	}
	s.halt()
	t.Logf("%d exchanges", s.swaps)
	b.unchanged(t)
}

// TestRunningContainerRefused: unmount, reset, rebase and commit refuse a
// container the runtime says is running, with an error that says so, and
// change nothing.
func TestRunningContainerRefused(t *testing.T) {
	testtree.RequireRoot(t)
	e := withContainer(t, map[string]string{"f": "x"})
	e.publish("t2", writeTree(t, map[string]string{"f": "y"}))
	e.mount("c")
	e.m.SetRunning(func(name string) (int, error) { return 4242, nil })
	ops := map[string]func() error{
		"unmount": func() error { return e.m.Unmount("c") },
		"reset":   func() error { return e.m.Reset("c") },
		"rebase":  func() error { _, err := e.m.Rebase("c", "t2"); return err },
		"commit": func() error {
			_, err := e.m.Commit(context.Background(), "c", templates.MustParseRef("snap"), nil)
			return err
		},
	}
	for name, op := range ops {
		err := op()
		if !errors.Is(err, container.ErrRunning) || !strings.Contains(fmt.Sprint(err), "container c is running; stop it first") {
			t.Errorf("%s of a running container: %v", name, err)
		}
	}
	c, err := e.m.Get("c")
	if err != nil || c.Mount == nil || c.Template != "t:latest" {
		t.Errorf("container changed: %+v, %v", c, err)
	}
	if _, err := e.st.Lookup("snap"); err == nil {
		t.Error("commit of a running container made a template")
	}
	e.m.SetRunning(func(string) (int, error) { return 0, nil })
}
