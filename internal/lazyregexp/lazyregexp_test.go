package lazyregexp

import (
	"sync"
	"testing"
)

func TestConcurrentFirstUse(t *testing.T) {
	re := New(`^a+$`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if !re.MatchString("aaa") || re.MatchString("ab") {
				t.Error("wrong match")
			}
		})
	}
	wg.Wait()
	if re.Regexp() != re.Regexp() {
		t.Fatal("compiled twice")
	}
}

func TestBadPatternPanicsOnFirstUse(t *testing.T) {
	re := New(`(`) // no panic here
	defer func() {
		if recover() == nil {
			t.Fatal("a bad pattern did not panic on first use")
		}
	}()
	re.MatchString("x")
}
