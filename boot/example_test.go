package boot_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"regexp"
	"time"

	"github.com/qimg/qimg/boot"
)

// A Watcher decides from console lines alone, wherever they come from
// (here a console log fetched from a cloud); a Console cleans raw bytes
// for it.
func ExampleWatcher() {
	m := boot.DefaultMarkers()
	m.Expect = append(m.Expect, boot.Marker{Name: "marker", Pattern: regexp.MustCompile(`QIMG-MARKER`)})
	w := boot.NewWatcher(m)
	start := time.Now()
	c := boot.NewConsole(w, func() time.Duration { return time.Since(start) }, nil)
	fmt.Fprint(c, "\x1b[0m[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\r\n")
	fmt.Fprint(c, "[   21.3] cloud-init[245]: Cloud-init v. 22.4.2 running 'init-local' at Wed, 01 Jan 2025 00:00:21 +0000. Up 21.18 seconds.\r\n")
	fmt.Fprint(c, "QIMG-MARKER from the user-data\r\n")
	fmt.Fprint(c, "[   64.0] cloud-init[412]: Cloud-init v. 22.4.2 finished at Wed, 01 Jan 2025 00:01:04 +0000. Datasource DataSourceNoCloud [seed=/dev/sr0][dsmode=net].  Up 63.87 seconds\r\n")
	fmt.Println(w.State() == boot.Succeeded, w.Missing())
	fmt.Fprint(c, "\r\ndebian12 login: ") // a prompt has no newline
	fmt.Println(w.State() == boot.Succeeded, w.Missing())
	for _, p := range w.Phases() {
		fmt.Println(p.Name)
	}
	// Output:
	// false [login prompt]
	// true []
	// kernel
	// cloud-init started
	// cloud-init finished
	// login prompt
}

// Local boots an image on a throwaway overlay; the image is never written.
func ExampleLocal() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res, err := boot.Local(ctx, boot.Options{
		Image:   "debian12.qcow2",
		Seed:    "seed.iso", // a NoCloud cidata ISO
		Expect:  []*regexp.Regexp{regexp.MustCompile(`QIMG-MARKER`)},
		Console: os.Stdout,
	})
	if err != nil {
		if res != nil {
			for _, l := range res.Tail {
				fmt.Println("|", l)
			}
		}
		log.Fatal(err)
	}
	for _, p := range res.Phases {
		fmt.Printf("%-20s %.1fs\n", p.Name, p.At.Seconds())
	}
}
