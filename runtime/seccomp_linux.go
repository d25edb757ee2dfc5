package runtime

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

//go:generate ./mksyscalls.sh amd64
//go:generate ./mksyscalls.sh arm64

// SeccompUnconfined, as [Spec.Seccomp], runs the container without a system
// call filter.
const SeccompUnconfined = "unconfined"

// The system call filter.
//
// The profile is Docker's default one, as data, from
// github.com/moby/profiles/seccomp, which also reads Docker-format JSON
// profiles and resolves their conditions on capabilities, architecture and
// kernel version. It is an allow list: everything else fails with EPERM.
// Among what it refuses to a container without CAP_SYS_ADMIN: new
// namespaces (unshare, setns, clone with CLONE_NEW* flags, clone3), mount
// and the new mount API, pivot_root, keyctl, add_key, request_key,
// io_uring, bpf, perf_event_open, userfaultfd, open_by_handle_at, kexec,
// module loading, swapon, reboot.
//
// The filter is compiled here into classic BPF, not with libseccomp
// (libseccomp-golang needs cgo and libseccomp-dev) nor with
// github.com/elastic/go-seccomp-bpf (pure Go, but its syscall tables are
// maps built by package initialization, 0.15 ms in every process of the
// binary, so in every container start, and it emits a linear list of
// compares). This compiler emits a binary search over system call numbers,
// about eight compares to any decision, made only of the instructions the
// kernel's seccomp cache emulates (loads of the arch and syscall number,
// compares with constants, returns), so that the kernel can find once per
// filter which calls it allows whatever their arguments, and skip the
// filter for them. (Equality rules on one argument are tested as one set:
// socket(2)'s 29 allowed domains; returns are shared.) The default filter
// has 124 instructions on amd64. Loading it takes 55-95 us in a container's
// init here (a one-instruction filter: 12-15 us): most of it is the kernel
// working out its per-syscall cache, a walk of the search for every system
// call number. Its syscall table is a sorted array, static data, generated
// from golang.org/x/sys.

// syscallName is one entry of syscallTable.
type syscallName struct {
	name string
	nr   uint32
}

// syscallNumber returns the number of the named system call on this
// architecture.
func syscallNumber(name string) (uint32, bool) {
	lo, hi := 0, len(syscallTable)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := strings.Compare(syscallTable[m].name, name); {
		case c == 0:
			return syscallTable[m].nr, true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0, false
}

// seccompFilter returns the compiled filter that profile names (see
// [Spec.Seccomp]) for a container's processes, whose bounding set is caps
// (a profile's rules may depend on the capabilities: Docker's allows
// reboot with CAP_SYS_BOOT), or nil for [SeccompUnconfined].
func seccompFilter(profile string, caps []capability) ([]unix.SockFilter, error) {
	switch {
	case profile == SeccompUnconfined:
		return nil, nil
	case profile == "" && slices.Equal(caps, defaultCapabilities):
		return defaultFilter()
	case profile == "" && slices.Equal(caps, bootCapabilities):
		return bootFilter()
	}
	return compileProfile(profile, caps)
}

// defaultFilter and bootFilter are the default profile compiled for a
// command's and a booted container's capabilities, once per process
// (about 0.1 ms each).
var (
	defaultFilter = sync.OnceValues(func() ([]unix.SockFilter, error) {
		return compileProfile("", defaultCapabilities)
	})
	bootFilter = sync.OnceValues(func() ([]unix.SockFilter, error) {
		return compileProfile("", bootCapabilities)
	})
)

// compileProfile loads and compiles a profile ("" for the default) for
// processes with the capabilities caps.
func compileProfile(profile string, caps []capability) ([]unix.SockFilter, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	for _, c := range caps {
		rs.Process.Capabilities.Bounding = append(rs.Process.Capabilities.Bounding, c.name)
	}
	var p *specs.LinuxSeccomp
	var err error
	if profile == "" {
		p, err = seccomp.GetDefaultProfile(rs)
	} else {
		var data []byte
		if data, err = os.ReadFile(profile); err == nil {
			p, err = seccomp.LoadProfile(string(data), rs)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("failed to load seccomp profile %q: %w", profile, err)
	}
	if p == nil { // a profile with no default action and no rules
		return nil, nil
	}
	prog, err := compileSeccomp(p)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %q: %w", profile, err)
	}
	return prog, nil
}

// filterBytes returns prog as the bytes of its sock_filter structs, for a
// control message.
func filterBytes(prog []unix.SockFilter) []byte {
	if len(prog) == 0 {
		return nil
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*int(unsafe.Sizeof(prog[0])))...)
}

// filterFromBytes is the inverse of filterBytes.
func filterFromBytes(b []byte) []unix.SockFilter {
	prog := make([]unix.SockFilter, len(b)/int(unsafe.Sizeof(unix.SockFilter{})))
	if len(prog) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*int(unsafe.Sizeof(prog[0]))), b)
	}
	return prog
}

// loadSeccomp installs prog as the calling thread's system call filter; the
// processes it forks inherit it, and nothing removes it. Without
// no_new_privs this needs CAP_SYS_ADMIN.
func loadSeccomp(prog []unix.SockFilter) error {
	if len(prog) == 0 {
		return nil
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := rawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); err != nil {
		return fmt.Errorf("failed to install seccomp filter: %w", err)
	}
	return nil
}

// seccompRule is one rule of a profile for one system call: action when
// every argument condition holds.
type seccompRule struct {
	action uint32
	args   []specs.LinuxSeccompArg
}

// seccompSpan is the outcome for the system call numbers from first up to
// the next span's first: a constant action, or rules to evaluate.
type seccompSpan struct {
	first  uint32
	action uint32
	rules  []seccompRule
}

// Offsets in struct seccomp_data, and the x32 ABI's syscall number bit.
const (
	seccompNrOff   = 0
	seccompArchOff = 4
	seccompArgsOff = 16
	x32SyscallBit  = 0x40000000
)

// compileSeccomp compiles a resolved profile into a BPF program for this
// architecture. System calls it names that this architecture lacks are
// skipped; a process of another ABI (32-bit x86 on amd64, x32) is killed.
func compileSeccomp(p *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	def, err := seccompAction(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	rules := make([][]seccompRule, maxSyscall()+1) // by number
	for _, sc := range p.Syscalls {
		act, err := seccompAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, err
		}
		for _, name := range sc.Names {
			if nr, ok := syscallNumber(name); ok {
				rules[nr] = append(rules[nr], seccompRule{act, sc.Args})
			}
		}
	}
	b := &bpfBuilder{rev: make([]unix.SockFilter, 0, 512), rets: map[uint32]int{}}
	tree, err := b.search(seccompSpans(rules, def), def)
	if err != nil {
		return nil, err
	}
	const kill = unix.SECCOMP_RET_KILL_PROCESS
	if nativeAuditArch == unix.AUDIT_ARCH_X86_64 {
		b.jump(unix.BPF_JGE, x32SyscallBit, b.ret(kill), tree) // the load below falls through to it
	}
	nr := b.load(seccompNrOff)
	b.jump(unix.BPF_JEQ, nativeAuditArch, nr, b.ret(kill))
	b.load(seccompArchOff)
	return b.program(), nil
}

// seccompSpans partitions the system call numbers into spans of one
// outcome, in order; rules are indexed by number, and the last span covers
// every number past them.
func seccompSpans(rules [][]seccompRule, def uint32) []seccompSpan {
	var spans []seccompSpan
	for nr := range len(rules) + 1 {
		s := seccompSpan{first: uint32(nr), action: def}
		var r []seccompRule
		if nr < len(rules) {
			r = rules[nr]
		}
		if len(r) > 0 && len(r[0].args) == 0 {
			s.action = r[0].action
		} else if len(r) > 0 {
			s.rules = r
		}
		last := len(spans) - 1
		if last >= 0 && s.rules == nil && spans[last].rules == nil && spans[last].action == s.action {
			continue
		}
		spans = append(spans, s)
	}
	return spans
}

func maxSyscall() uint32 {
	var m uint32
	for _, s := range syscallTable {
		m = max(m, s.nr)
	}
	return m
}

// seccompAction returns the filter's return value for a profile action.
func seccompAction(a specs.LinuxSeccompAction, errno *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errno != nil {
		data = uint32(*errno) & unix.SECCOMP_RET_DATA
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	}
	return 0, fmt.Errorf("seccomp action %q is not supported", a)
}

// bpfBuilder builds a classic BPF program back to front, so that every jump
// goes to code already emitted, at a known distance. A label is the index
// of an instruction in rev, the program reversed.
type bpfBuilder struct {
	rev []unix.SockFilter
	// rets has the label of the last return of each value: every block
	// ends in a jump or a return, so returns near enough are shared.
	rets map[uint32]int
}

func (b *bpfBuilder) emit(code uint16, k uint32) int {
	b.rev = append(b.rev, unix.SockFilter{Code: code, K: k})
	return len(b.rev) - 1
}

// ret returns the label of a "return k", shared with one emitted before
// when a jump from here reaches it without a trampoline.
func (b *bpfBuilder) ret(k uint32) int {
	if l, ok := b.rets[k]; ok && len(b.rev)-l-1 < 200 {
		return l
	}
	l := b.emit(unix.BPF_RET|unix.BPF_K, k)
	b.rets[k] = l
	return l
}

func (b *bpfBuilder) load(off uint32) int { return b.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
func (b *bpfBuilder) and(k uint32) int    { return b.emit(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k) }

// jump emits "if A op k goto jt else goto jf".
func (b *bpfBuilder) jump(op uint16, k uint32, jt, jf int) int {
	jt = b.reach(jt)
	jf = b.reach(jf)
	i := b.emit(unix.BPF_JMP|op|unix.BPF_K, k)
	b.rev[i].Jt, b.rev[i].Jf = uint8(i-jt-1), uint8(i-jf-1)
	return i
}

// reach returns target, or a jump to it that a conditional jump emitted
// next (after at most one more such jump) can reach: their offsets are 8
// bits.
func (b *bpfBuilder) reach(target int) int {
	if len(b.rev)-target-1 < 254 {
		return target
	}
	return b.emit(unix.BPF_JMP|unix.BPF_JA, uint32(len(b.rev)-target-1))
}

func (b *bpfBuilder) program() []unix.SockFilter {
	out := make([]unix.SockFilter, len(b.rev))
	for i, f := range b.rev {
		out[len(out)-1-i] = f
	}
	return out
}

// search emits a binary search over spans, with the syscall number in A.
func (b *bpfBuilder) search(spans []seccompSpan, def uint32) (int, error) {
	if len(spans) == 1 {
		return b.rules(spans[0], def)
	}
	mid := len(spans) / 2
	right, err := b.search(spans[mid:], def)
	if err != nil {
		return 0, err
	}
	left, err := b.search(spans[:mid], def)
	if err != nil {
		return 0, err
	}
	return b.jump(unix.BPF_JGE, spans[mid].first, right, left), nil
}

// rules emits the outcome of one span: its rules in order, the first whose
// conditions all hold deciding, def when none does.
func (b *bpfBuilder) rules(s seccompSpan, def uint32) (int, error) {
	if s.rules == nil {
		return b.ret(s.action), nil
	}
	next := b.ret(def)
	for i := len(s.rules); i > 0; {
		j := equalRun(s.rules[:i])
		if i-j > 1 {
			next = b.valueSet(s.rules[j:i], next)
			i = j
			continue
		}
		fail := next // the rules after this one
		next = b.ret(s.rules[i-1].action)
		for _, a := range slices.Backward(s.rules[i-1].args) {
			var err error
			if next, err = b.arg(a, next, fail); err != nil {
				return 0, err
			}
		}
		i--
	}
	return next, nil
}

// equalRun returns where the run of rules at the end of rules starts that
// each test one argument for equality with a value, the same argument and
// high word, for the same action: socket(2)'s allowed domains are such a
// run of 29 rules, tested as one set by valueSet. It returns len(rules)-1
// when the last rule is not of that kind.
func equalRun(rules []seccompRule) int {
	last := rules[len(rules)-1]
	single := func(r seccompRule) bool {
		return len(r.args) == 1 && r.args[0].Op == specs.OpEqualTo && r.action == last.action &&
			r.args[0].Index == last.args[0].Index && r.args[0].Value>>32 == last.args[0].Value>>32
	}
	if !single(last) {
		return len(rules) - 1
	}
	j := len(rules) - 1
	for j > 0 && single(rules[j-1]) {
		j--
	}
	return j
}

// valueSet emits an equalRun's rules: their action when the argument is
// one of their values, else fail.
func (b *bpfBuilder) valueSet(rules []seccompRule, fail int) int {
	a := rules[0].args[0]
	off := seccompArgsOff + 8*uint32(a.Index)
	next := fail
	ok := b.ret(rules[0].action)
	for _, r := range slices.Backward(rules) {
		next = b.jump(unix.BPF_JEQ, uint32(r.args[0].Value), ok, next)
	}
	lo := b.load(off)
	b.jump(unix.BPF_JEQ, uint32(a.Value>>32), lo, fail)
	return b.load(off + 4)
}

// arg emits the test of one argument condition, going to ok when it holds
// and to fail when not. Arguments are 64 bits, compared as two 32-bit words
// (little-endian: the low word first).
func (b *bpfBuilder) arg(a specs.LinuxSeccompArg, ok, fail int) (int, error) {
	if a.Index > 5 {
		return 0, fmt.Errorf("seccomp argument index %d out of range", a.Index)
	}
	off := seccompArgsOff + 8*uint32(a.Index)
	lo, hi := uint32(a.Value), uint32(a.Value>>32)
	// cmpLo emits "load the low word; if A op lo goto t else goto f".
	cmpLo := func(op uint16, k uint32, t, f int) int {
		b.jump(op, k, t, f)
		return b.load(off)
	}
	// hiEqual emits "load the high word; if A == hi goto then else goto f".
	hiEqual := func(then, f int) int {
		b.jump(unix.BPF_JEQ, hi, then, f)
		return b.load(off + 4)
	}
	switch a.Op {
	case specs.OpEqualTo:
		return hiEqual(cmpLo(unix.BPF_JEQ, lo, ok, fail), fail), nil
	case specs.OpNotEqual:
		return hiEqual(cmpLo(unix.BPF_JEQ, lo, fail, ok), ok), nil
	case specs.OpMaskedEqual:
		lo2, hi2 := uint32(a.ValueTwo), uint32(a.ValueTwo>>32)
		b.jump(unix.BPF_JEQ, lo2, ok, fail)
		b.and(lo)
		l := b.load(off)
		b.jump(unix.BPF_JEQ, hi2, l, fail)
		b.and(hi)
		return b.load(off + 4), nil
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		op := uint16(unix.BPF_JGT)
		if a.Op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		eq := b.jump(unix.BPF_JEQ, hi, cmpLo(op, lo, ok, fail), fail)
		b.jump(unix.BPF_JGT, hi, ok, eq)
		return b.load(off + 4), nil
	case specs.OpLessThan, specs.OpLessEqual:
		op := uint16(unix.BPF_JGE)
		if a.Op == specs.OpLessEqual {
			op = unix.BPF_JGT
		}
		eq := b.jump(unix.BPF_JEQ, hi, cmpLo(op, lo, fail, ok), fail)
		b.jump(unix.BPF_JGE, hi, eq, ok)
		return b.load(off + 4), nil
	}
	return 0, fmt.Errorf("seccomp operator %q is not supported", a.Op)
}
