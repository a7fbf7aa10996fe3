package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// rateBar is a progress bar with the transfer rate and the time left,
// redrawn in place at most four times a second, only on a terminal:
//
//	[=========>          ]  47%  1.2 GiB / 2.5 GiB  110.3 MiB/s  ETA 0:12
type rateBar struct {
	mu      sync.Mutex
	w       io.Writer
	on      bool
	start   time.Time
	last    time.Time
	width   int
	printed bool
}

func newRateBar(w io.Writer, want bool) *rateBar {
	return &rateBar{w: w, on: want && isTerminal(w), start: time.Now(), width: 24}
}

// update is the progress callback of an upload or download.
func (b *rateBar) update(done, total int64) {
	if b == nil || !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(b.last) < 250*time.Millisecond {
		return
	}
	if done == 0 {
		b.start = now // a retry starts over
	}
	b.last = now
	b.printed = true
	fmt.Fprintf(b.w, "\r%s\x1b[K", b.line(done, total, now.Sub(b.start)))
}

// line renders the bar for done of total bytes after elapsed.
func (b *rateBar) line(done, total int64, elapsed time.Duration) string {
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	fill := int(frac * float64(b.width))
	bar := strings.Repeat("=", fill)
	if fill < b.width {
		bar += ">" + strings.Repeat(" ", b.width-fill-1)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	eta := "--:--"
	if rate > 0 && total >= done {
		eta = clock(time.Duration(float64(total-done) / rate * float64(time.Second)))
	}
	return fmt.Sprintf("[%s] %3.0f%%  %s / %s  %s/s  ETA %s", bar, frac*100,
		humanBytes(float64(done)), humanBytes(float64(total)), humanBytes(rate), eta)
}

// done ends the bar's line.
func (b *rateBar) done() {
	if b != nil && b.on && b.printed {
		fmt.Fprintln(b.w)
	}
}

func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func humanBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", n)
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
