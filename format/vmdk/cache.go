package vmdk

import (
	"container/list"
	"sync"
)

// lru is a small mutex-guarded least-recently-used cache bounded by the
// total cost of its values (a count, or bytes). Values are never modified
// once stored, so a caller may use one after unlocking.
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	maxCost int64
	cost    func(V) int64
	total   int64
	order   *list.List // of lruItem, front = newest
	byKey   map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](maxCost int64, cost func(V) int64) *lru[K, V] {
	return &lru[K, V]{maxCost: maxCost, cost: cost, order: list.New(), byKey: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (v V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(lruItem[K, V]).val, true
	}
	return v, false
}

func (c *lru[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.total -= c.cost(e.Value.(lruItem[K, V]).val)
		e.Value = lruItem[K, V]{k, v}
		c.order.MoveToFront(e)
	} else {
		c.byKey[k] = c.order.PushFront(lruItem[K, V]{k, v})
	}
	c.total += c.cost(v)
	// The newest value stays even if it alone is over the bound.
	for c.total > c.maxCost && c.order.Len() > 1 {
		last := c.order.Back()
		it := last.Value.(lruItem[K, V])
		c.order.Remove(last)
		delete(c.byKey, it.key)
		c.total -= c.cost(it.val)
	}
}
