package qcow2

import (
	"container/list"
	"sync"
)

// lru is a small mutex-guarded least-recently-used cache.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // of lruItem, front = newest
	byKey map[K]*list.Element
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](maxItems int) *lru[K, V] {
	return &lru[K, V]{max: maxItems, order: list.New(), byKey: map[K]*list.Element{}}
}

func (c *lru[K, V]) get(k K) (v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e)
		return e.Value.(lruItem[K, V]).val
	}
	return v
}

func (c *lru[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		e.Value = lruItem[K, V]{k, v}
		c.order.MoveToFront(e)
		return
	}
	c.byKey[k] = c.order.PushFront(lruItem[K, V]{k, v})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(lruItem[K, V]).key)
	}
}

func (c *lru[K, V]) drop(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.Remove(e)
		delete(c.byKey, k)
	}
}

// reset empties the cache.
func (c *lru[K, V]) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.byKey)
}
