package qfmt

import (
	"fmt"
	"strconv"
	"strings"
)

// OptType is the type of a QemuOpts option.
type OptType int

// Option types, as QEMU_OPT_*.
const (
	OptString OptType = iota
	OptBool
	OptNumber
	OptSize
)

// OptDesc describes one -o option.
type OptDesc struct {
	Name    string
	Type    OptType
	Help    string
	Default string // printed in the "Formatting" line when not set
}

// Opts is a set of option values checked against a descriptor list, in the
// descriptor list's order.
type Opts struct {
	Descs []OptDesc
	vals  map[string]string
	nums  map[string]uint64
}

// NewOpts makes an empty option set for descs.
func NewOpts(descs []OptDesc) *Opts {
	return &Opts{Descs: descs, vals: map[string]string{}, nums: map[string]uint64{}}
}

// SplitList splits a QemuOpts list "a=b,c=d" into key/value pairs; ",,"
// stands for a literal comma. A key without "=" gets the value "on".
func SplitList(s string) ([][2]string, error) {
	if s == "" || strings.HasSuffix(s, ",") && !strings.HasSuffix(s, ",,") {
		return nil, fmt.Errorf("Invalid option list: %s", s)
	}
	var out [][2]string
	var cur strings.Builder
	var parts []string
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			if i+1 < len(s) && s[i+1] == ',' {
				cur.WriteByte(',')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	parts = append(parts, cur.String())
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("Invalid option list: %s", s)
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			v = "on"
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// HasHelp reports whether an option list asks for help ("help" or "?").
func HasHelp(s string) bool {
	kvs, err := SplitList(s)
	if err != nil {
		return false
	}
	for _, kv := range kvs {
		if kv[0] == "help" || kv[0] == "?" {
			return true
		}
	}
	return false
}

func (o *Opts) desc(name string) *OptDesc {
	for i := range o.Descs {
		if o.Descs[i].Name == name {
			return &o.Descs[i]
		}
	}
	return nil
}

// Parse adds the options of a list, checking names and values as
// qemu_opts_do_parse does. Later values replace earlier ones.
func (o *Opts) Parse(list string) error {
	kvs, err := SplitList(list)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := o.Set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// Set sets one option, validating its value.
func (o *Opts) Set(name, value string) error {
	d := o.desc(name)
	if d == nil {
		return fmt.Errorf("Invalid parameter '%s'", name)
	}
	switch d.Type {
	case OptBool:
		if _, err := ParseBool(value); err != nil {
			return fmt.Errorf("Parameter '%s' expects 'on' or 'off'", name)
		}
	case OptNumber:
		n, err := strconv.ParseUint(value, 0, 64)
		if err != nil {
			return fmt.Errorf("Parameter '%s' expects a number", name)
		}
		o.nums[name] = n
	case OptSize:
		n, err := ParseSize(value)
		if err != nil {
			return fmt.Errorf("Parameter '%s' expects a non-negative number below 2^64", name)
		}
		o.nums[name] = n
	}
	o.vals[name] = value
	return nil
}

// SetNumber sets a size or number option from a value computed by qimg.
func (o *Opts) SetNumber(name string, n uint64) {
	o.vals[name] = strconv.FormatUint(n, 10)
	o.nums[name] = n
}

// Has reports whether the option was set.
func (o *Opts) Has(name string) bool { _, ok := o.vals[name]; return ok }

// String returns the value as given, or def.
func (o *Opts) String(name, def string) string {
	if v, ok := o.vals[name]; ok {
		return v
	}
	return def
}

// Bool returns a boolean option, or def.
func (o *Opts) Bool(name string, def bool) bool {
	if v, ok := o.vals[name]; ok {
		b, _ := ParseBool(v)
		return b
	}
	return def
}

// Number returns a size or number option, or def.
func (o *Opts) Number(name string, def uint64) uint64 {
	if n, ok := o.nums[name]; ok {
		return n
	}
	return def
}

// Print renders the options as qemu_opts_print does for the "Formatting"
// line: descriptor order, set values as given (sizes and numbers as
// decimal), defaults for unset options that have one, commas doubled.
func (o *Opts) Print() string {
	var parts []string
	for _, d := range o.Descs {
		v, set := o.vals[d.Name]
		if !set {
			v = d.Default
		}
		if v == "" && !set {
			continue
		}
		if set && (d.Type == OptSize || d.Type == OptNumber) {
			v = strconv.FormatUint(o.nums[d.Name], 10)
		}
		if d.Type == OptString {
			v = strings.ReplaceAll(v, ",", ",,")
		}
		parts = append(parts, d.Name+"="+v)
	}
	return strings.Join(parts, " ")
}

// Help renders the descriptor list as "qemu-img create -o help" does:
// sorted by name, "name=<type>" padded to 22 columns.
func Help(format string, descs []OptDesc) string {
	sorted := append([]OptDesc(nil), descs...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j].Name < sorted[j-1].Name; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Supported %s options:\n", format)
	for _, d := range sorted {
		typ := map[OptType]string{OptString: "str", OptBool: "bool (on/off)", OptNumber: "num", OptSize: "size"}[d.Type]
		fmt.Fprintf(&b, "  %-22s - %s\n", d.Name+"=<"+typ+">", d.Help)
	}
	b.WriteString("\nThe protocol level may support further options.\nSpecify the target filename to include those options.\n")
	return b.String()
}

// ParseBool accepts QEMU's boolean spellings.
func ParseBool(s string) (bool, error) {
	switch s {
	case "on", "yes", "true", "y":
		return true, nil
	case "off", "no", "false", "n":
		return false, nil
	}
	return false, fmt.Errorf("%q is not on or off", s)
}
