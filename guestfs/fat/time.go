package fat

import "time"

// FAT keeps local times without a zone; this package reads and writes
// them as UTC, as Linux does with tz=UTC.

// decodeTime reads a FAT date and time (two-second resolution) plus
// the creation time's hundredths.
func decodeTime(date, tm uint16, hundredths byte) time.Time {
	if date == 0 {
		return time.Time{}
	}
	month := max(int(date>>5&15), 1)
	day := max(int(date&31), 1)
	ns := int(hundredths) % 200 * int(10*time.Millisecond)
	return time.Date(1980+int(date>>9), time.Month(min(month, 12)), day,
		int(tm>>11), int(tm>>5&63), int(tm&31)*2, ns, time.UTC)
}

// encodeTime writes t as a FAT date, time and hundredths, clamped to
// FAT's 1980..2107.
func encodeTime(t time.Time) (date, tm uint16, hundredths byte) {
	t = t.UTC()
	switch {
	case t.Year() < 1980:
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	case t.Year() > 2107:
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	hundredths = byte(t.Second()%2*100 + t.Nanosecond()/int(10*time.Millisecond))
	return date, tm, hundredths
}
