package cloudinit_test

import (
	"fmt"

	"github.com/qimg/qimg/customize/cloudinit"
)

func ExampleValidate() {
	userData := []byte(`#cloud-config
hostname: web1
pakages: [nginx]
write_files:
  - path: /etc/motd
    permissions: 0644
    content: hello
`)
	fmt.Println(cloudinit.Validate(userData, "user-data"))
	// Output:
	// user-data:3: key 'pakages' is not a cloud-config key (did you mean 'packages'?)
	// user-data:6: write_files[0].permissions: expected a string, got an integer (0644): YAML 1.1 reads a leading 0 as octal; quote it ('0644')
}

func ExampleParse() {
	r, err := cloudinit.Parse([]byte("#!/bin/sh\necho hello > /dev/console\n"), "user-data")
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Type)
	for _, n := range r.Notes {
		fmt.Println(n)
	}
	// Output:
	// text/x-shellscript
	// 1: a script: cloud-init runs it once, late in the first boot; its content is not checked
}
