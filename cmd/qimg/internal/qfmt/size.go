package qfmt

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// ErrSize is returned by ParseSize for text that is not a size, and
// ErrRange for a size that does not fit in 64 bits.
var (
	ErrSize  = errors.New("invalid size")
	ErrRange = errors.New("size out of range")
)

// ParseSize parses a size the way qemu_strtosz does: a decimal number
// (or 0x-prefixed hexadecimal integer) with an optional fraction and an
// optional case-insensitive suffix B, K, M, G, T, P or E, all 1024-based.
// A bare number is bytes. A fraction needs a unit larger than bytes, and
// the result must fit in 64 bits.
func ParseSize(s string) (uint64, error) {
	bad := fmt.Errorf("%q: %w", s, ErrSize)
	tooBig := fmt.Errorf("%q: %w", s, ErrRange)
	if s == "" || strings.TrimLeft(s, " \t") != s || strings.HasPrefix(s, "-") {
		return 0, bad
	}
	var mant uint64
	var frac float64
	rest := s
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		i := 2
		for i < len(s) && isHex(s[i]) {
			i++
		}
		v, err := strconv.ParseUint(s[2:i], 16, 64)
		if err != nil {
			return 0, bad
		}
		mant, rest = v, s[i:]
		if strings.HasPrefix(rest, ".") {
			return 0, bad // QEMU rejects hex fractions
		}
	} else {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, bad
		}
		v, err := strconv.ParseUint(s[:i], 10, 64)
		if err != nil {
			return 0, tooBig
		}
		mant, rest = v, s[i:]
		if strings.HasPrefix(rest, ".") {
			j := 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if j == 1 {
				return 0, bad
			}
			f, err := strconv.ParseFloat("0"+rest[:j], 64)
			if err != nil {
				return 0, bad
			}
			frac, rest = f, rest[j:]
		}
	}
	mul := uint64(1)
	if rest != "" {
		shift, ok := suffixShift(rest[0])
		if !ok || len(rest) != 1 {
			return 0, bad
		}
		mul = 1 << shift
	}
	if frac != 0 && mul == 1 {
		return 0, bad // fractional bytes
	}
	hi, v := bits.Mul64(mant, mul)
	if hi != 0 {
		return 0, tooBig
	}
	if frac != 0 {
		f := math.Floor(frac * float64(mul))
		if float64(v)+f >= 18446744073709551616.0 {
			return 0, tooBig
		}
		sum, carry := bits.Add64(v, uint64(f), 0)
		if carry != 0 {
			return 0, tooBig
		}
		v = sum
	}
	return v, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func suffixShift(c byte) (uint, bool) {
	switch c {
	case 'b', 'B':
		return 0, true
	case 'k', 'K':
		return 10, true
	case 'm', 'M':
		return 20, true
	case 'g', 'G':
		return 30, true
	case 't', 'T':
		return 40, true
	case 'p', 'P':
		return 50, true
	case 'e', 'E':
		return 60, true
	}
	return 0, false
}

// SizeToStr renders a byte count as QEMU's size_to_str does: three
// significant digits and a binary unit, e.g. "196 KiB", "1.27 MiB",
// "1 GiB", "0 B".
func SizeToStr(v uint64) string {
	suffixes := []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	_, e := math.Frexp(float64(v) / (1000.0 / 1024.0))
	i := (e - 1) / 10
	if i < 0 {
		i = 0
	}
	if i >= len(suffixes) {
		i = len(suffixes) - 1
	}
	div := uint64(1) << (uint(i) * 10)
	return formatG3(float64(v)/float64(div)) + " " + suffixes[i] + "B"
}

// formatG3 is C's printf("%0.3g").
func formatG3(f float64) string {
	return strconv.FormatFloat(f, 'g', 3, 64)
}
