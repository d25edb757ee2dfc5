package runtime

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseMemory parses a memory size as the --memory flag takes it: a number of
// bytes, optionally followed by a unit b, k, m or g (powers of 1024, case
// insensitive, an optional trailing "b" as in "512mb"). "512m", "1g" and
// "1048576" are valid; "1x", "m", "-1m" and "1.5.2g" are not.
func ParseMemory(s string) (int64, error) {
	in := strings.TrimSpace(s)
	lower := strings.ToLower(in)
	mult := int64(1)
	num := lower
	units := []struct {
		suffix string
		mult   int64
	}{
		{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	}
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			num, mult = strings.TrimSuffix(lower, u.suffix), u.mult
			break
		}
	}
	if num == "" {
		return 0, fmt.Errorf("invalid memory size %q: no number", s)
	}
	if strings.IndexFunc(num, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }) >= 0 {
		return 0, fmt.Errorf("invalid memory size %q: want a number of bytes with an optional unit b, k, m or g", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid memory size %q: %w", s, err)
	}
	bytes := v * float64(mult)
	if bytes < 1 || bytes > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid memory size %q: out of range", s)
	}
	return int64(bytes), nil
}

// ParseCPUs parses a CPU count as the --cpus flag takes it: a positive decimal
// number such as "0.5" or "2". The result is at least 0.01 CPU.
func ParseCPUs(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("invalid CPU count %q: want a decimal number such as 0.5: %w", s, err)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0.01 || v > 1<<16 {
		return 0, fmt.Errorf("invalid CPU count %q: want a number from 0.01 to 65536", s)
	}
	return v, nil
}
