package boot

import "regexp"

// Names of the default markers, for callers that look for one in a Result.
const (
	PhaseFirmware   = "firmware"
	PhaseBootloader = "bootloader"
	PhaseKernel     = "kernel"
	PhaseInitramfs  = "initramfs"
	PhaseInit       = "init"
	PhaseCloudInit  = "cloud-init started"
	PhaseLogin      = "login prompt"
	PhaseCloudDone  = "cloud-init finished"
)

// Patterns of the markers shared between the phase and the expect lists.
const (
	// agetty's prompt, alone or with console messages after it on the
	// same line ("debian12 login: [   71.4] cloud-init[394]: ..."), but
	// not "Last login: Sun Dec  6 ...".
	loginPattern     = `^\S+ login: (?:$|\[|\s)`
	cloudDonePattern = `Cloud-init v\. \S+ finished at `
)

// DefaultMarkers are the markers of a Linux guest that boots with
// cloud-init: it succeeds when the login prompt and cloud-init's final
// message have appeared, and fails when the firmware finds nothing to
// boot, on a kernel panic, an emergency or initramfs shell, a cloud-init
// error, or a login prompt before cloud-init started. The failure markers are the
// messages these programs print only when something went wrong, not words
// that benign lines contain ("error", "failed" alone would stop good
// boots: ACPI and udev print them on healthy machines).
func DefaultMarkers() Markers {
	return Markers{
		Expect: []Marker{
			{PhaseLogin, regexp.MustCompile(loginPattern)},
			{PhaseCloudDone, regexp.MustCompile(cloudDonePattern)},
		},
		Fail: []Marker{
			{"no bootable device", regexp.MustCompile(`^No bootable device\.`)},
			{"kernel panic", regexp.MustCompile(`Kernel panic - not syncing`)},
			// Windows' bug check as its Emergency Management Services
			// print it on the serial port (0x7B: the boot disk's
			// driver is missing, the commonest failure of a converted
			// image), and the same stop code as Windows 10 words it.
			{"inaccessible boot device", regexp.MustCompile(`INACCESSIBLE_BOOT_DEVICE|STOP: 0x0000007B|Stop code: INACCESSIBLE BOOT DEVICE`)},
			{"Windows stop error", regexp.MustCompile(`\*\*\* STOP: 0x[0-9A-Fa-f]{8}`)},
			{"kernel oops", regexp.MustCompile(`BUG: unable to handle|Oops: [0-9a-f]{4} \[#\d+\]`)},
			{"emergency shell", regexp.MustCompile(`You are in (?:emergency|rescue) mode|Give root password for maintenance|Entering emergency mode|Cannot open access to console, the root account is locked`)},
			{"initramfs shell", regexp.MustCompile(`Dropping to a shell!|Gave up waiting for root (?:file system )?device|^\(initramfs\) `)},
			{"cloud-init error", regexp.MustCompile(`Traceback \(most recent call last\)|\.py\[(?:ERROR|CRITICAL)\]|Failed to run module |Running module \S+ .* failed|Failed to start cloud-(?:init|config|final)`)},
		},
		Phases: []Marker{
			{PhaseFirmware, regexp.MustCompile(`SeaBIOS \(version |^BdsDxe: `)},
			{PhaseBootloader, regexp.MustCompile(`^(?:SYSLINUX|EXTLINUX|ISOLINUX) \d|GNU GRUB|^\s*Booting .(?:Debian|Ubuntu|.*Linux)|^Loading Linux `)},
			{PhaseKernel, regexp.MustCompile(`Linux version \d+\.\d+`)},
			{PhaseInitramfs, regexp.MustCompile(`Run /init as init process`)},
			{PhaseInit, regexp.MustCompile(`Run /sbin/init as init process|systemd\[1\]: systemd \d+ running|Welcome to .+!$|INIT: version`)},
			{PhaseCloudInit, regexp.MustCompile(`Cloud-init v\. \S+ running '(?:init-local|init)'`)},
			{PhaseLogin, regexp.MustCompile(loginPattern)},
			{PhaseCloudDone, regexp.MustCompile(cloudDonePattern)},
		},
		// cloud-init's first stage runs before the network is up, so
		// long before a login prompt; a prompt without it means that
		// cloud-init is disabled (its generator found no data source)
		// or missing, and will not finish.
		Orders: []Order{{Earlier: PhaseCloudInit, Later: PhaseLogin, Failure: "cloud-init did not start"}},
	}
}

// WatchMarkers are the markers of a boot test, wherever the machine runs:
// the defaults, without their expected markers when noDefaultExpect (a
// guest without cloud-init), each of expect as an expected marker, and,
// when the guest was given a seed (a NoCloud drive, a config drive),
// cloud-init finishing without a data source as a failure.
func WatchMarkers(expect []*regexp.Regexp, noDefaultExpect, seeded bool) Markers {
	m := DefaultMarkers()
	if noDefaultExpect {
		m.Expect, m.Orders = nil, nil
	}
	for _, re := range expect {
		m.Expect = append(m.Expect, Marker{Name: "/" + re.String() + "/", Pattern: re})
	}
	if seeded {
		m.Fail = append(m.Fail, noDataSource())
	}
	return m
}

// noDataSource fails a boot given a seed when cloud-init ran without
// finding it (its final message then names DataSourceNone).
func noDataSource() Marker {
	return Marker{"cloud-init found no data source", regexp.MustCompile(`Datasource DataSourceNone`)}
}
