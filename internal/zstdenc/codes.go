package zstdenc

import "math/bits"

// Code tables of RFC 8878 section 3.1.1.3.2.1.1: the first value of each
// literal-length and match-length code and the extra bits that follow it.
var (
	llBase = [36]uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 28, 32, 40,
		48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536}
	mlBase = [53]uint32{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
		26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027,
		2051, 4099, 8195, 16387, 32771, 65539}
	llBits = [36]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11,
		12, 13, 14, 15, 16}
	mlBits = [53]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

	// The code of each literal length below 64 and of each match length
	// below 131 (indexed by length - 3); longer ones follow from their
	// top bit (TestCodeTables checks both against the bases).
	llCodeOf = [64]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 16, 17, 17, 18, 18, 19, 19,
		20, 20, 20, 20, 21, 21, 21, 21, 22, 22, 22, 22, 22, 22, 22, 22, 23, 23, 23, 23, 23, 23, 23, 23,
		24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24}
	mlCodeOf = [128]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
		24, 25, 26, 27, 28, 29, 30, 31, 32, 32, 33, 33, 34, 34, 35, 35, 36, 36, 36, 36, 37, 37, 37, 37,
		38, 38, 38, 38, 38, 38, 38, 38, 39, 39, 39, 39, 39, 39, 39, 39, 40, 40, 40, 40, 40, 40, 40, 40,
		40, 40, 40, 40, 40, 40, 40, 40, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41,
		42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42,
		42, 42, 42, 42, 42, 42, 42, 42}
)

// Predefined distributions of RFC 8878 section 3.1.1.3.2.2 and their
// accuracy logs.
var (
	llDefault = []int16{4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
		-1, -1, -1, -1}
	mlDefault = []int16{1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1}
	ofDefault = []int16{1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1}
)

const (
	llDefaultLog, mlDefaultLog, ofDefaultLog = 6, 6, 5
	llMaxLog, mlMaxLog, ofMaxLog             = 9, 9, 8
)

func llCode(v uint32) uint8 {
	if v < 64 {
		return llCodeOf[v]
	}
	return uint8(bits.Len32(v) - 1 + 19) // 64 -> 25, 128 -> 26, ...
}

func mlCode(v uint32) uint8 {
	if v-3 < 128 {
		return mlCodeOf[v-3]
	}
	return uint8(bits.Len32(v-3) - 1 + 36) // 131 -> 43, 259 -> 44, ...
}

// offsetValue applies RFC 8878's repeat-offset rules (section 3.1.1.5):
// it returns the value coded for a match distance and the new history.
func offsetValue(litLen, off, r1, r2, r3 uint32) (uint32, uint32, uint32, uint32) {
	if litLen > 0 {
		switch off {
		case r1:
			return 1, r1, r2, r3
		case r2:
			return 2, r2, r1, r3
		case r3:
			return 3, r3, r1, r2
		}
	} else {
		switch off {
		case r2:
			return 1, r2, r1, r3
		case r3:
			return 2, r3, r1, r2
		case r1 - 1:
			return 3, r1 - 1, r1, r2
		}
	}
	return off + 3, off, r1, r2
}
