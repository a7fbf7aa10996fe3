package cloudinit

import (
	"strings"

	"github.com/qimg/qimg/internal/lazyregexp"
	"go.yaml.in/yaml/v3"
)

// jtype is a set of the types a YAML value can have once cloud-init has
// loaded it (PyYAML's safe_load) and its JSON schema looks at it.
type jtype uint8

const (
	tNull jtype = 1 << iota
	tBool
	tInt
	tFloat
	tString
	tList
	tMap
	tOther // a timestamp or binary: no cloud-config key takes one
)

var typeNames = []struct {
	t    jtype
	name string
}{
	{tString, "a string"}, {tBool, "a boolean"}, {tInt, "an integer"}, {tFloat, "a number"},
	{tList, "a list"}, {tMap, "a mapping"}, {tNull, "null"}, {tOther, "a date or binary"},
}

// String names the types of t, for messages: "a string or a list".
func (t jtype) String() string {
	var names []string
	for _, n := range typeNames {
		if t&n.t != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "nothing"
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// The YAML 1.1 plain-scalar forms PyYAML resolves (yaml.org/type),
// which differ from YAML 1.2's: yes/no/on/off are booleans, a leading 0
// makes an octal integer, 1e3 (no dot) is a string, and dates are
// timestamps.
var (
	reBool  = lazyregexp.New(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	reInt   = lazyregexp.New(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	reFloat = lazyregexp.New(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	reNull  = lazyregexp.New(`^(?:~|null|Null|NULL|)$`)
	reTime  = lazyregexp.New(`^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$`)
)

// The tags safe_load constructs; any other tag makes it fail.
var scalarTags = map[string]jtype{
	"!!str": tString, "!!int": tInt, "!!float": tFloat, "!!bool": tBool, "!!null": tNull,
	"!!binary": tOther, "!!timestamp": tOther,
}

// scalarType is the type PyYAML gives a scalar node, and false for a
// tag safe_load refuses.
func scalarType(n *yaml.Node) (jtype, bool) {
	if n.Style&yaml.TaggedStyle != 0 {
		t, ok := scalarTags[n.Tag]
		return t, ok
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return tString, true
	}
	v := n.Value
	if plainText(v) {
		return tString, true
	}
	switch {
	case reNull.MatchString(v):
		return tNull, true
	case reBool.MatchString(v):
		return tBool, true
	case reInt.MatchString(v):
		return tInt, true
	case reFloat.MatchString(v):
		return tFloat, true
	case reTime.MatchString(v):
		return tOther, true
	}
	return tString, true
}

// plainText says whether a plain scalar is text by its first byte alone:
// every other YAML 1.1 form starts with a digit, a sign, '.', '~' or a
// letter of yes/no/true/false/on/off/null.
func plainText(v string) bool {
	if v == "" {
		return false
	}
	c := v[0]
	return !(c >= '0' && c <= '9') && !strings.ContainsRune("+-.~yYnNtTfFoO", rune(c))
}

// boolValue is the canonical "true" or "false" of a YAML 1.1 boolean.
func boolValue(v string) string {
	switch strings.ToLower(v) {
	case "yes", "true", "on":
		return "true"
	}
	return "false"
}

// nodeType is the type of any node (aliases already resolved).
func nodeType(n *yaml.Node) (jtype, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		return scalarType(n)
	case yaml.SequenceNode:
		return tList, n.Style&yaml.TaggedStyle == 0 || n.Tag == "!!seq"
	case yaml.MappingNode:
		return tMap, n.Style&yaml.TaggedStyle == 0 || n.Tag == "!!map"
	}
	return tOther, true
}
