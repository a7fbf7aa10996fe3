package lazyregexp_test

import (
	"fmt"

	"github.com/qimg/qimg/internal/lazyregexp"
)

// A package variable compiles on its first match, not at start-up.
var version = lazyregexp.New(`(\d+)\.(\d+)`)

func Example() {
	fmt.Println(version.FindStringSubmatch("Debian 12.8"))
	fmt.Println(version.MatchString("no digits"))
	// Output:
	// [12.8 12 8]
	// false
}
