// Package cloudinit checks cloud-init user-data and configuration
// before qimg puts it into a seed, a config drive or an image, so that a
// typo is an error with a line number on the host instead of a warning
// in a guest's log after boot.
//
// Parse tells the kind of user-data as cloud-init tells it: gzip is
// decompressed; a MIME message (a "MIME-Version:" header in the first
// 4 KiB) is split into parts typed by their Content-Type; otherwise the
// first line decides (#cloud-config, #!, #include, #include-once,
// #cloud-boothook, #part-handler, #cloud-config-archive, "## template:
// jinja"), in lower case after leading white space. Anything else is an
// error (cloud-init would ignore it), with a hint when the content looks
// like cloud-config without its header. Scripts, include lists,
// boothooks, part handlers and templates are accepted with a note: they
// are not checked.
//
// #cloud-config is loaded as cloud-init loads it, PyYAML's safe_load:
// exactly one document, YAML 1.1 scalars (yes/no/on/off are booleans,
// 0644 is the octal integer 420, 2:30 is the sexagesimal 150, a date is
// a timestamp), merge keys, and no tags but the standard ones. The
// mapping is checked against the keys of cloud-init's modules and their
// documented types (cloud-init's JSON schema for cloud-config): every
// unknown key (with the nearest known one as a suggestion), wrong type,
// value outside an enumeration and missing required key is reported with
// its line; deprecated keys are accepted with a note. The common modules
// (users, write_files, growpart, power_state, packages, apt, ntp...) are
// checked inside; configuration-management modules (chef, puppet,
// ansible...) only for their top-level type. Keys that cloud-init reads
// only from its system configuration (datasource_list, datasource,
// network) are errors in user-data and accepted by ParseConfig, which
// checks a /etc/cloud/cloud.cfg.d drop-in. A key given twice is an
// error, although cloud-init silently keeps the last.
//
// The verdicts are cloud-init's: the tests run cloud-init's own
// validator (Debian 12's cloud-init 22.4, with unknown top-level keys
// refused as cloud-init 24 refuses them) on a table of samples and
// require the same verdict on each.
//
// # Security
//
// User-data is untrusted input. It is read up to MaxSize (also after
// decompression); the walk over the YAML tree is bounded (aliases can
// name an exponential tree: past 200,000 values the document is
// refused), alias chains and merge keys are followed to a fixed depth,
// a MIME message has at most 1,000 parts and is nested at most twice,
// and at most 100 problems are listed. FuzzParse runs both entry points
// on mutated samples.
package cloudinit
