// Package hive reads Windows registry hive files (the "regf" format of
// Windows\System32\config\SOFTWARE, SYSTEM and the others), read-only, as
// inspection needs them: keys by path, their subkeys and values, and
// values decoded as strings, numbers or bytes.
//
// Open takes the hive file as an io.ReaderAt (a file of a guest's NTFS
// filesystem, or bytes in memory) and reads cells on demand, so a hive
// of hundreds of MiB costs little memory.
//
// # What is read
//
// The base block (signature, version 1.1 to 1.6, primary file type,
// checksum) and the cells of the hive bins: key nodes ("nk") with ASCII
// or UTF-16 names, subkey lists of every kind ("lf", "lh", "li", and
// "ri" holding those), value lists, value nodes ("vk") with data inline,
// in one cell, or split over the segments of a big-data cell ("db",
// version 1.4 on). Names are matched case-insensitively, as Windows does.
// Transaction logs (.LOG1, .LOG2) are not replayed: a hive whose last
// write was not completed is read as it stands, as hivex does.
//
// # Security
//
// The hive is untrusted input. Every cell offset is checked to lie in the
// hive bins before it is read and every cell's size against the data
// behind it; counts are checked against the cell that holds the list;
// an "ri" list may hold only leaf lists, so lists cannot nest or loop;
// value data is read up to MaxValueSize. Key lookups go down a path and
// never revisit a key, but a corrupt hive may make a key its own
// descendant: callers that walk whole trees bound the depth (Windows
// allows 512 levels). Violations are image.ErrCorrupt errors naming the
// hive file and the structure. FuzzOpen looks up, lists and reads
// mutated hives.
package hive
