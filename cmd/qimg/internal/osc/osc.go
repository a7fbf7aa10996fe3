// Package osc prints results as the openstack CLI (cliff) does: a table
// (prettytable, numbers right-aligned), json (indented by 2) or value
// (space-separated, Python reprs for lists and dicts), of all columns or
// those chosen with -c.
//
// Values are string, int64, bool, nil, []string (the CLI's ListColumn:
// "a, b" in a table) and map[string]any (DictColumn: "k='v', k2='v2'").
package osc

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Formats are the -f values.
var Formats = []string{"table", "json", "value"}

// CheckFormat validates -f.
func CheckFormat(f string) error {
	if !slices.Contains(Formats, f) {
		return fmt.Errorf("-f %s: choose from %s", f, strings.Join(Formats, ", "))
	}
	return nil
}

// selectColumns keeps the columns named in sel (all when sel is empty),
// in the order of sel, as cliff does.
func selectColumns(columns []string, sel []string) ([]int, error) {
	if len(sel) == 0 {
		idx := make([]int, len(columns))
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	var idx []int
	for _, s := range sel {
		i := slices.Index(columns, s)
		if i < 0 {
			return nil, fmt.Errorf("no column %q (columns: %s)", s, strings.Join(columns, ", "))
		}
		idx = append(idx, i)
	}
	return idx, nil
}

// List prints rows under columns (the CLI's Lister commands).
func List(w io.Writer, format string, columns []string, rows [][]any, sel []string) error {
	idx, err := selectColumns(columns, sel)
	if err != nil {
		return err
	}
	pick := func(row []any) []any {
		out := make([]any, len(idx))
		for i, j := range idx {
			out[i] = row[j]
		}
		return out
	}
	names := pick(anySlice(columns))
	switch format {
	case "json":
		objs := make([]orderedObject, 0, len(rows))
		for _, r := range rows {
			objs = append(objs, orderedObject{keys: strs(names), values: pick(r)})
		}
		return writeJSON(w, objs)
	case "value":
		for _, r := range rows {
			var cells []string
			for _, v := range pick(r) {
				cells = append(cells, valueText(v))
			}
			if _, err := fmt.Fprintln(w, strings.Join(cells, " ")); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 {
		return nil
	}
	var picked [][]any
	for _, r := range rows {
		picked = append(picked, pick(r))
	}
	return table(w, strs(names), picked)
}

// Show prints one object's fields (the CLI's ShowOne commands), sorted
// by name as the image commands do.
func Show(w io.Writer, format string, fields map[string]any, sel []string) error {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	idx, err := selectColumns(names, sel)
	if err != nil {
		return err
	}
	var keys []string
	var values []any
	for _, i := range idx {
		keys = append(keys, names[i])
		values = append(values, fields[names[i]])
	}
	switch format {
	case "json":
		return writeJSON(w, orderedObject{keys: keys, values: values})
	case "value":
		for _, v := range values {
			if _, err := fmt.Fprintln(w, valueText(v)); err != nil {
				return err
			}
		}
		return nil
	}
	rows := make([][]any, len(keys))
	for i := range keys {
		rows[i] = []any{keys[i], values[i]}
	}
	return table(w, []string{"Field", "Value"}, rows)
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func strs(a []any) []string {
	out := make([]string, len(a))
	for i, v := range a {
		out[i] = v.(string)
	}
	return out
}

// orderedObject is a JSON object with keys in a given order.
type orderedObject struct {
	keys   []string
	values []any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		vj, err := json.Marshal(o.values[i])
		if err != nil {
			return nil, err
		}
		b.Write(kj)
		b.WriteByte(':')
		b.Write(vj)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// writeJSON is Python's json.dumps(v, indent=2): no HTML escaping.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// humanText is a value in a table.
func humanText(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return v
	case bool:
		return pyBool(v)
	case []string:
		s := slices.Clone(v)
		sort.Strings(s)
		return strings.Join(s, ", ")
	case map[string]any:
		keys := sortedKeys(v)
		parts := make([]string, len(keys))
		for i, k := range keys {
			// osc_lib's format_dict: k='v', nothing escaped
			parts[i] = k + "='" + scalarText(v[k]) + "'"
		}
		return strings.Join(parts, ", ")
	}
	return scalarText(v)
}

// valueText is a value in -f value: Python's str() of the machine value.
func valueText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = pyQuote(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		return pyRepr(v)
	}
	return humanText(v)
}

func scalarText(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return v
	case bool:
		return pyBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case float64:
		if v == float64(int64(v)) {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// pyRepr is Python's repr of a JSON value.
func pyRepr(v any) string {
	switch v := v.(type) {
	case string:
		return pyQuote(v)
	case map[string]any:
		keys := sortedKeys(v)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyQuote(k) + ": " + pyRepr(v[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return scalarText(v)
}

func pyQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isNumber(v any) bool {
	switch v.(type) {
	case int, int64, float64:
		return true
	}
	return false
}

// table draws a prettytable as cliff configures it: every column
// left-aligned except those whose first value is a number.
func table(w io.Writer, header []string, rows [][]any) error {
	width := make([]int, len(header))
	right := make([]bool, len(header))
	cells := make([][]string, len(rows))
	for i, h := range header {
		width[i] = utf8.RuneCountInString(h)
		right[i] = len(rows) > 0 && isNumber(rows[0][i])
	}
	for r, row := range rows {
		cells[r] = make([]string, len(row))
		for i, v := range row {
			cells[r][i] = humanText(v)
			width[i] = max(width[i], utf8.RuneCountInString(cells[r][i]))
		}
	}
	var b strings.Builder
	rule := func() {
		b.WriteByte('+')
		for _, n := range width {
			b.WriteString(strings.Repeat("-", n+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	line := func(row []string) {
		b.WriteByte('|')
		for i, s := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(s))
			if right[i] {
				b.WriteString(" " + pad + s + " |")
			} else {
				b.WriteString(" " + s + pad + " |")
			}
		}
		b.WriteByte('\n')
	}
	rule()
	line(header)
	rule()
	for _, row := range cells {
		line(row)
	}
	rule()
	_, err := io.WriteString(w, b.String())
	return err
}
