package runtime

import "testing"

func TestParseMemory(t *testing.T) {
	good := map[string]int64{
		"512m": 512 << 20, "1g": 1 << 30, "1048576": 1048576, "1G": 1 << 30,
		"64k": 64 << 10, "100b": 100, "512mb": 512 << 20, "1.5g": 3 << 29, " 32m ": 32 << 20,
	}
	for in, want := range good {
		got, err := ParseMemory(in)
		if err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "1x", "12q", "-1m", "1.5.2g", "0", "1t", "abc", "10 m", "1e9"} {
		if got, err := ParseMemory(in); err == nil {
			t.Errorf("ParseMemory(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]float64{"0.5": 0.5, "2": 2, "1.25": 1.25} {
		got, err := ParseCPUs(in)
		if err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "half", "0.001", "NaN", "Inf", "1m"} {
		if got, err := ParseCPUs(in); err == nil {
			t.Errorf("ParseCPUs(%q) = %v, want an error", in, got)
		}
	}
}
