package fstree

import "sync"

// Cache is a map bounded by the total weight of what it holds. When a
// new value would push it past its bound it is emptied whole: readers
// look up the same few directories and inodes again and again, so
// starting afresh costs little and needs no bookkeeping per entry.
// It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu     sync.Mutex
	m      map[K]V
	weight int
	max    int
}

// NewCache returns an empty cache that holds at most max weight.
func NewCache[K comparable, V any](max int) *Cache[K, V] {
	return &Cache[K, V]{max: max}
}

// Get returns the value kept for k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

// Load returns the value kept for k, or loads it and keeps it with
// weight 1.
func (c *Cache[K, V]) Load(k K, load func(K) (V, error)) (V, error) {
	if v, ok := c.Get(k); ok {
		return v, nil
	}
	v, err := load(k)
	if err != nil {
		return v, err
	}
	c.Put(k, v, 1)
	return v, nil
}

// Put keeps v for k; a value heavier than the whole cache is not kept.
func (c *Cache[K, V]) Put(k K, v V, weight int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.weight+weight > c.max {
		c.m, c.weight = map[K]V{}, 0
	}
	if weight <= c.max {
		c.m[k] = v
		c.weight += weight
	}
}

// Update calls change with the value kept for k, if any, under the
// cache's lock; change returns the weight it added. Writers use it to
// keep a cached directory in step with an edit.
func (c *Cache[K, V]) Update(k K, change func(V) int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		c.weight += change(v)
	}
}

// Delete forgets k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// Clear forgets everything.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m, c.weight = nil, 0
}
