package customize_test

import (
	"context"
	"fmt"
	"io/fs"
	"log"
	"os"

	"github.com/qimg/qimg/customize"
)

// Apply virt-customize-style operations to a guest filesystem, in order,
// committed at once.
func Example() {
	g, _, err := openGuest()
	if err != nil {
		log.Fatal(err)
	}
	g.Log = os.Stdout
	var ops []customize.Op
	for _, o := range [][2]string{
		{"mkdir", "/etc/cloud/cloud.cfg.d"},
		{"write", "/etc/cloud/cloud.cfg.d/90-datasources.cfg:datasource_list: [ OpenStack, ConfigDrive ]\n"},
		{"append-line", "/etc/hosts:127.0.1.1 guest"},
	} {
		op, err := customize.Parse(o[0], o[1])
		if err != nil {
			log.Fatal(err)
		}
		ops = append(ops, op)
	}
	if err := customize.Apply(context.Background(), g, ops); err != nil {
		log.Fatal(err)
	}
	b, _ := fs.ReadFile(g.FS, "etc/hosts")
	fmt.Printf("%q\n", b)
	// Output:
	// Making directory: /etc/cloud/cloud.cfg.d
	// Writing: /etc/cloud/cloud.cfg.d/90-datasources.cfg
	// Appending line to /etc/hosts
	// "127.0.1.1 guest\n"
}
