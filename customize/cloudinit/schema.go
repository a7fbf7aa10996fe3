package cloudinit

import (
	"slices"
	"strconv"
	"strings"
)

// spec says what a value of cloud-config may be: a small subset of JSON
// schema, enough for the modules' documented types. Specs are built once
// by the constructors below and never changed.
type spec struct {
	types    jtype            // accepted types; 0 = anything
	enum     []string         // accepted scalar values (booleans as "true"/"false")
	items    *spec            // a list's elements
	fields   map[string]*spec // a mapping's known keys
	values   *spec            // any other key of a mapping: nil = not allowed
	required []string         // keys a mapping must have
	alts     []*spec          // either of these (types is their union)
	minItems int
	// deprecated tells what to use instead; the key is still accepted.
	deprecated string
}

var (
	anything = &spec{}
	str      = &spec{types: tString}
	boolean  = &spec{types: tBool}
	integer  = &spec{types: tInt}
	null     = &spec{types: tNull}
	// a string or a list of strings (a command, or a list of names)
	strOrList = either(str, listOf(str))
	// a shell command: a string run by sh, or an argv list
	command  = either(str, listOf(str))
	strList  = listOf(str)
	anyMap   = &spec{types: tMap, values: anything}
	anyList  = &spec{types: tList, items: anything}
	intOrStr = either(integer, str)
)

func listOf(s *spec) *spec { return &spec{types: tList, items: s} }

// obj is a mapping with only the keys given.
func obj(fields map[string]*spec) *spec { return &spec{types: tMap, fields: fields} }

// dict is a mapping whose every value is v.
func dict(v *spec) *spec { return &spec{types: tMap, values: v} }

// either accepts a value any of alts accepts.
func either(alts ...*spec) *spec {
	s := &spec{alts: alts}
	for _, a := range alts {
		s.types |= a.types
	}
	return s
}

// enum accepts the strings and booleans given ("true", "false" for
// booleans).
func enum(values ...string) *spec {
	s := &spec{enum: values}
	for _, v := range values {
		if v == "true" || v == "false" {
			s.types |= tBool
		} else {
			s.types |= tString
		}
	}
	return s
}

func (s *spec) req(keys ...string) *spec {
	c := *s
	c.required = keys
	return &c
}

func (s *spec) min(n int) *spec {
	c := *s
	c.minItems = n
	return &c
}

func deprecated(s *spec, use string) *spec {
	c := *s
	c.deprecated = use
	return &c
}

// describe is what s expects, for messages.
func (s *spec) describe() string {
	if len(s.enum) > 0 {
		return "one of " + strings.Join(s.enum, ", ")
	}
	if s.types == 0 {
		return "anything"
	}
	if s.types == tList && s.items != nil && s.items.types != 0 && len(s.items.alts) == 0 && s.items.types != tMap {
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(s.items.types.String(), "a "), "an ") + "s"
	}
	return s.types.String()
}

// closest returns the known key nearest to key, if near enough to be a
// likely typo: a few letters off, or one a prefix of the other
// ("sudoers" for "sudo").
func closest(key string, known []string) string {
	if len(key) > 64 {
		return ""
	}
	best, bestD := "", 1<<30
	norm := strings.ReplaceAll(strings.ToLower(key), "-", "_")
	for _, k := range known {
		if k == norm {
			return k
		}
		d := distance(norm, k)
		near := d <= max(1, min(len(key)/3, 3)) ||
			min(len(k), len(norm)) >= 4 && (strings.HasPrefix(norm, k) || strings.HasPrefix(k, norm))
		if near && (d < bestD || d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between two short strings
// (bounded by the caller: keys are at most maxKeyLen bytes).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortedKeys lists a field table's keys.
func sortedKeys(m map[string]*spec) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quote shows a scalar in a message, shortened.
func quote(v string) string {
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	if strings.ContainsRune(v, '\'') || !strconv.CanBackquote(v) {
		return strconv.Quote(v)
	}
	return "'" + v + "'"
}
