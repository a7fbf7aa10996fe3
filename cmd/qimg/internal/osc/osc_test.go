package osc

import (
	"bytes"
	"testing"
)

// The expected texts are what python3-openstackclient 6.0 (cliff,
// prettytable) prints for the same data.
func TestListTable(t *testing.T) {
	var b bytes.Buffer
	err := List(&b, "table", []string{"ID", "Size", "Tags"}, [][]any{
		{"a550", int64(340), []string{"b", "a"}},
		{"b287", int64(1048576), []string{}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `+------+---------+------+
| ID   |    Size | Tags |
+------+---------+------+
| a550 |     340 | a, b |
| b287 | 1048576 |      |
+------+---------+------+
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestShowFormats(t *testing.T) {
	fields := map[string]any{"name": "t1", "protected": false, "size": int64(5),
		"tags": []string{"b", "a"}, "properties": map[string]any{"os_hidden": false, "a": "it's"}}
	for format, want := range map[string]string{
		"table": `+------------+-----------------------------+
| Field      | Value                       |
+------------+-----------------------------+
| name       | t1                          |
| properties | a='it's', os_hidden='False' |
| protected  | False                       |
| size       | 5                           |
| tags       | a, b                        |
+------------+-----------------------------+
`,
		"value": "t1\n{'a': 'it\\'s', 'os_hidden': False}\nFalse\n5\n['b', 'a']\n",
		"json": `{
  "name": "t1",
  "properties": {
    "a": "it's",
    "os_hidden": false
  },
  "protected": false,
  "size": 5,
  "tags": [
    "b",
    "a"
  ]
}
`,
	} {
		var b bytes.Buffer
		if err := Show(&b, format, fields, nil); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("-f %s: got\n%s\nwant\n%s", format, b.String(), want)
		}
	}
	var b bytes.Buffer
	if err := Show(&b, "value", fields, []string{"size", "name"}); err != nil || b.String() != "5\nt1\n" {
		t.Errorf("-c size -c name: %q %v", b.String(), err)
	}
	if err := Show(&b, "value", fields, []string{"nosuch"}); err == nil {
		t.Error("-c nosuch accepted")
	}
}
