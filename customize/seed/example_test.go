package seed_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/qimg/qimg/customize/seed"
)

func ExampleBuild() {
	dir, _ := os.MkdirTemp("", "seed")
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "seed.iso"))
	if err != nil {
		panic(err)
	}
	defer f.Close()
	c := seed.Config{
		UserData: []byte("#cloud-config\nruncmd:\n  - echo hello > /dev/console\n"),
		Hostname: "web1",
	}
	if err := seed.Build(context.Background(), f, c, seed.Options{}); err != nil {
		panic(err)
	}
	files, _ := seed.Files(c, seed.Options{})
	for _, file := range files {
		fmt.Println(file.Path)
	}
	fmt.Printf("%s", files[0].Data)
	// Output:
	// meta-data
	// user-data
	// instance-id: iid-b00a4d6ebabb069a
	// local-hostname: web1
}
