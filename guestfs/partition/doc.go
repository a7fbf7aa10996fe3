// Package partition reads the partition table of a disk image, the first
// step of looking into a guest's file systems without a kernel, as
// libguestfs does with the guest's Linux.
//
// Read takes any image.Image (a raw file, a qcow2 chain, a section of
// another image) and finds:
//
//   - an MBR: the four primary slots, and the chain of EBRs of an
//     extended partition, whose logical partitions are numbered 5, 6, ...
//     in chain order, as Linux numbers them;
//   - a GPT, announced by a protective (or hybrid) MBR: the primary
//     header at sector 1 and the backup at the disk's last sector, each
//     with its header CRC32 and entry array CRC32 checked; the backup is
//     used, and Table.UsedBackup set, when only the primary is damaged;
//     type and unique GUIDs, UTF-16LE names and attribute bits are read;
//   - nothing: a disk whose first sector is no MBR (no 55 AA signature,
//     or a FAT boot sector's bytes where the status flags would be) is
//     one device, which libguestfs calls /dev/sda.
//
// Sectors are 512 bytes. A GPT written for 4096-byte logical sectors is
// recognised by its header at byte 4096 (or 4096 bytes before the end);
// an MBR is always read in 512-byte sectors, as nothing in it says
// otherwise.
//
// Partitions are named as libguestfs names them (DeviceName, /dev/sda1)
// and opened as images of their own (Partition.Open, an image.Section),
// so file system readers need not know where they sit on the disk.
//
// # Hostile tables
//
// A disk image may come from anyone, so its table is checked before it is
// believed, and a bad one is an error, never a panic or a huge
// allocation:
//
//   - every size is bounded before anything is allocated from it: a GPT
//     entry array may hold at most MaxGPTEntryArray bytes (a larger one is
//     image.ErrLimit), entries are 128 times a power of two bytes long,
//     and an EBR chain at most MaxEBRChain links, each visited once;
//   - every address must lie on the disk: GPT headers must say where they
//     are, the entry array must sit between a header and the usable
//     sectors, GPT partitions inside the usable sectors, logical
//     partitions inside the extended one and past their EBR;
//   - partitions must not overlap each other, the MBR, an EBR or a GPT
//     structure, so that writing to one cannot damage another or the
//     table.
//
// Errors wrap image.ErrCorrupt (or image.ErrLimit) and name the image
// and the structure at fault, as image.FileErrorf words them. A damaged
// backup GPT behind a good primary is not an error: Table.BackupErr says
// what is wrong with it, as Linux warns and goes on.
package partition
