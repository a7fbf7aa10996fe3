package cloudinit

import "sync"

// The cloud-config keys of cloud-init's modules and their types, as
// cloud-init documents them (its JSON schema for cloud-config, version
// 1, as of cloud-init 25). The common modules are described to the
// depth people get wrong (write_files, users, growpart, power_state...);
// the rest have their top-level type. A key not here is refused, as
// current cloud-init refuses unknown top-level keys.

// schema holds the specs of whole documents.
type schema struct {
	userData *spec // user-data's cloud-config
	system   *spec // cloud-init's system configuration
	// moduleKeys are the keys user-data may hold.
	moduleKeys map[string]*spec
	// elsewhere tells, for a system key found in user-data, where it goes.
	elsewhere map[string]string
}

// schemaOnce builds the schema on first use: its tables cost about a
// millisecond to build, which every qimg command paid at start-up when
// they were package variables.
var schemaOnce = sync.OnceValue(newSchema)

func newSchema() *schema {
	// userSpec is one entry of users: a user to create.
	userSpec := obj(map[string]*spec{
		"name":                str,
		"doas":                strList.min(1),
		"expiredate":          str,
		"gecos":               str,
		"groups":              either(str, strList.min(1), dict(null)),
		"homedir":             str,
		"inactive":            str,
		"lock_passwd":         boolean,
		"lock-passwd":         deprecated(boolean, "use lock_passwd"),
		"no_create_home":      boolean,
		"no-create-home":      deprecated(boolean, "use no_create_home"),
		"no_log_init":         boolean,
		"no-log-init":         deprecated(boolean, "use no_log_init"),
		"no_user_group":       boolean,
		"no-user-group":       deprecated(boolean, "use no_user_group"),
		"passwd":              str,
		"hashed_passwd":       str,
		"hashed-passwd":       deprecated(str, "use hashed_passwd"),
		"plain_text_passwd":   str,
		"plain-text-passwd":   deprecated(str, "use plain_text_passwd"),
		"create_groups":       boolean,
		"create-groups":       deprecated(boolean, "use create_groups"),
		"primary_group":       str,
		"primary-group":       deprecated(str, "use primary_group"),
		"selinux_user":        str,
		"selinux-user":        deprecated(str, "use selinux_user"),
		"shell":               str,
		"snapuser":            str,
		"ssh_authorized_keys": strList.min(1),
		"ssh-authorized-keys": deprecated(strList.min(1), "use ssh_authorized_keys"),
		"ssh_import_id":       strList.min(1),
		"ssh-import-id":       deprecated(strList.min(1), "use ssh_import_id"),
		"ssh_redirect_user":   boolean,
		"ssh-redirect-user":   deprecated(boolean, "use ssh_redirect_user"),
		"system":              boolean,
		"sudo":                either(str, null, listOf(either(str, null)), boolean),
		"uid":                 intOrStr,
	})

	// users: "default", a comma-separated string, a list of names, lists or
	// user mappings, or (old form) a mapping.
	usersSpec := either(str, listOf(either(str, strList, userSpec)), anyMap)

	// groupsSpec: a group name, a list of names or {group: members}, or
	// {group: members}.
	groupMembers := dict(either(str, strList.min(1), null))
	groupsSpec := either(str, listOf(either(str, groupMembers)).min(1), groupMembers)

	writeFile := obj(map[string]*spec{
		"path":        str,
		"content":     str,
		"source":      obj(map[string]*spec{"uri": str, "headers": dict(str)}).req("uri"),
		"owner":       str,
		"permissions": str,
		"encoding":    enum("gz", "gzip", "gz+base64", "gzip+base64", "gz+b64", "gzip+b64", "b64", "base64", "text/plain"),
		"append":      boolean,
		"defer":       boolean,
	}).req("path")

	aptMirror := listOf(obj(map[string]*spec{
		"arches": strList.min(1), "uri": str, "search": strList.min(1), "search_dns": boolean,
		"keyid": str, "key": str, "keyserver": str,
	}).req("arches")).min(1)

	aptSpec := obj(map[string]*spec{
		"preserve_sources_list": boolean,
		"disable_suites":        strList.min(1),
		"primary":               aptMirror,
		"security":              aptMirror,
		"add_apt_repo_match":    str,
		"debconf_selections":    dict(str),
		"sources_list":          str,
		"conf":                  str,
		"https_proxy":           str,
		"http_proxy":            str,
		"proxy":                 str,
		"ftp_proxy":             str,
		"sources": dict(obj(map[string]*spec{
			"source": str, "keyid": str, "key": str, "keyserver": str, "filename": str, "append": boolean,
		})),
	})

	// packageItem is a name, or [name, version].
	packageItem := either(str, strList)

	growpartSpec := obj(map[string]*spec{
		"mode":                     enum("auto", "growpart", "gpart", "off", "false"),
		"devices":                  strList,
		"ignore_growroot_disabled": boolean,
	})

	powerStateSpec := obj(map[string]*spec{
		"delay":     either(integer, str),
		"mode":      enum("poweroff", "reboot", "halt"),
		"message":   str,
		"timeout":   integer,
		"condition": either(str, boolean, anyList),
	}).req("mode")

	phoneHomeSpec := obj(map[string]*spec{
		"url":   str,
		"post":  either(enum("all"), listOf(enum("pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "instance_id", "hostname", "fqdn"))),
		"tries": integer,
	}).req("url")

	chpasswdSpec := obj(map[string]*spec{
		"expire": boolean,
		"users": listOf(obj(map[string]*spec{
			"name": str, "type": enum("RANDOM", "hash", "text"), "password": str,
		}).req("name")),
		"list": deprecated(either(str, strList), "use chpasswd.users"),
	})

	ntpSpec := either(null, obj(map[string]*spec{
		"pools": strList, "servers": strList, "peers": strList, "allow": strList,
		"ntp_client": str, "enabled": boolean,
		"config": obj(map[string]*spec{
			"confpath": str, "check_exe": str, "packages": strList, "service_name": str, "template": str,
		}),
	}))

	fsSetupSpec := listOf(obj(map[string]*spec{
		"label": str, "filesystem": str, "device": str,
		"partition":  either(enum("auto", "any", "none"), integer, str),
		"overwrite":  boolean,
		"replace_fs": str,
		"extra_opts": either(str, strList),
		"cmd":        either(str, strList),
	}))

	diskSetupSpec := dict(obj(map[string]*spec{
		"table_type": enum("mbr", "gpt"),
		"layout":     either(enum("remove"), boolean, listOf(either(integer, listOf(either(integer, str))))),
		"overwrite":  boolean,
	}))

	caCertsSpec := obj(map[string]*spec{
		"remove_defaults": boolean,
		"remove-defaults": deprecated(boolean, "use remove_defaults"),
		"trusted":         strList.min(1),
	})

	snapCommands := either(listOf(command), dict(command))
	snapSpec := obj(map[string]*spec{
		"assertions": either(strList, dict(str)),
		"commands":   snapCommands,
	})

	rsyslogSpec := obj(map[string]*spec{
		"config_dir":             str,
		"config_filename":        str,
		"configs":                listOf(either(str, obj(map[string]*spec{"filename": str, "content": str}).req("content"))),
		"remotes":                anyMap,
		"service_reload_command": either(enum("auto"), strList),
		"install_rsyslog":        boolean,
		"check_exe":              str,
		"packages":               strList,
	})

	keyboardSpec := obj(map[string]*spec{"layout": str, "model": str, "variant": str, "options": str}).req("layout")

	mergeSpec := either(str, listOf(obj(map[string]*spec{"name": enum("list", "dict", "str"), "settings": strList}).req("name", "settings")))

	// moduleKeys are the keys user-data may hold.
	moduleKeys := map[string]*spec{
		// base configuration
		"cloud_init_modules":   anyList,
		"cloud_config_modules": anyList,
		"cloud_final_modules":  anyList,
		"launch-index":         integer,
		"merge_how":            mergeSpec,
		"merge_type":           mergeSpec,
		"system_info":          deprecated(anyMap, "system settings are not meant to be overridden by user-data"),
		"reporting":            anyMap,
		"output":               obj(map[string]*spec{"all": anything, "init": anything, "config": anything, "final": anything}),

		// users, passwords and ssh
		"users":                     usersSpec,
		"user":                      either(str, userSpec),
		"groups":                    groupsSpec,
		"ssh_authorized_keys":       strList,
		"ssh_pwauth":                either(boolean, str),
		"chpasswd":                  chpasswdSpec,
		"password":                  str,
		"ssh_keys":                  dict(str),
		"ssh_deletekeys":            boolean,
		"ssh_genkeytypes":           listOf(enum("ecdsa", "ed25519", "rsa")),
		"disable_root":              boolean,
		"disable_root_opts":         str,
		"allow_public_ssh_keys":     boolean,
		"ssh_quiet_keygen":          boolean,
		"ssh_publish_hostkeys":      obj(map[string]*spec{"enabled": boolean, "blacklist": strList}),
		"ssh":                       obj(map[string]*spec{"emit_keys_to_console": boolean}),
		"ssh_key_console_blacklist": strList,
		"ssh_fp_console_blacklist":  strList,
		"no_ssh_fingerprints":       boolean,
		"authkey_hash":              str,
		"ssh_import_id":             strList,

		// host identity
		"hostname":                  str,
		"fqdn":                      str,
		"prefer_fqdn_over_hostname": boolean,
		"create_hostname_file":      boolean,
		"preserve_hostname":         boolean,
		"manage_etc_hosts":          enum("true", "false", "localhost", "template"),
		"timezone":                  str,
		"locale":                    either(boolean, str),
		"locale_configfile":         str,
		"keyboard":                  keyboardSpec,
		"manage_resolv_conf":        boolean,
		"resolv_conf":               anyMap,
		"random_seed": obj(map[string]*spec{
			"file": str, "data": str, "encoding": enum("raw", "base64", "b64", "gzip", "gz"),
			"command": strList, "command_required": boolean,
		}),

		// packages
		"packages":                   listOf(either(obj(map[string]*spec{"apt": listOf(packageItem), "snap": listOf(packageItem)}), packageItem)).min(1),
		"package_update":             boolean,
		"package_upgrade":            boolean,
		"package_reboot_if_required": boolean,
		"apt_update":                 deprecated(boolean, "use package_update"),
		"apt_upgrade":                deprecated(boolean, "use package_upgrade"),
		"apt_reboot_if_required":     deprecated(boolean, "use package_reboot_if_required"),
		"apt":                        aptSpec,
		"apt_pipelining":             either(integer, boolean, enum("os", "none", "unchanged")),
		"yum_repos":                  dict(dict(either(integer, boolean, str))),
		"yum_repo_dir":               str,
		"zypper":                     obj(map[string]*spec{"repos": listOf(anyMap), "config": anyMap}),
		"apk_repos":                  anyMap,
		"snap":                       snapSpec,

		// commands and files
		"runcmd":      listOf(either(str, strList, null)),
		"bootcmd":     listOf(either(str, strList)),
		"write_files": listOf(writeFile).min(1),

		// disks
		"growpart":             growpartSpec,
		"resize_rootfs":        enum("true", "false", "noblock"),
		"disk_setup":           diskSetupSpec,
		"fs_setup":             fsSetupSpec,
		"device_aliases":       dict(str),
		"mounts":               listOf(strList.min(1)).min(1),
		"mount_default_fields": listOf(either(str, null)),
		"swap":                 obj(map[string]*spec{"filename": str, "size": either(integer, str), "maxsize": either(integer, str)}),

		// services
		"ntp":                  ntpSpec,
		"ca_certs":             caCertsSpec,
		"ca-certs":             deprecated(caCertsSpec, "use ca_certs"),
		"rsyslog":              rsyslogSpec,
		"final_message":        str,
		"power_state":          powerStateSpec,
		"phone_home":           phoneHomeSpec,
		"vendor_data":          obj(map[string]*spec{"enabled": either(boolean, str), "prefix": either(str, strList)}),
		"disable_ec2_metadata": boolean,
		"updates":              obj(map[string]*spec{"network": obj(map[string]*spec{"when": strList})}),
		"wireguard":            either(null, anyMap),

		// configuration management and vendors: their own schemas, not checked inside
		"ansible": anyMap, "chef": anyMap, "puppet": anyMap, "salt_minion": anyMap, "mcollective": anyMap,
		"landscape": anyMap, "lxd": anyMap, "fan": anyMap, "spacewalk": anyMap, "rh_subscription": anyMap,
		"ubuntu_pro": anyMap, "ubuntu_advantage": deprecated(anyMap, "use ubuntu_pro"), "drivers": anyMap,
		"autoinstall": anyMap, "grub_dpkg": anyMap, "grub-dpkg": deprecated(anyMap, "use grub_dpkg"),
		"byobu_by_default": enum("enable-system", "enable-user", "disable-system", "disable-user", "enable", "disable", "user", "system"),
		"rpi":              anyMap, "migrate": boolean, "version": anything,
	}

	// systemKeys are read only from cloud-init's system configuration
	// (/etc/cloud/cloud.cfg and /etc/cloud/cloud.cfg.d/*.cfg), never from
	// user-data, because they are needed before user-data is read.
	systemKeys := map[string]*spec{
		"datasource_list":              listOf(str).min(1),
		"datasource":                   dict(anyMap),
		"network":                      either(obj(map[string]*spec{"config": enum("disabled")}), anyMap),
		"manual_cache_clean":           boolean,
		"def_log_file":                 str,
		"syslog_fix_perms":             either(str, strList, null),
		"log_cfgs":                     anyList,
		"disable_network_activation":   boolean,
		"disable_vmware_customization": boolean,
		"allow_userdata":               boolean,
		"hotplug":                      anyMap,
		"vendor_data2":                 anyMap,
	}

	return &schema{
		userData:   obj(moduleKeys),
		system:     obj(union(moduleKeys, systemKeys)),
		moduleKeys: moduleKeys,
		elsewhere:  elsewhere(systemKeys),
	}
}

// Datasources are the names datasource_list takes, as cloud-init spells
// them (each is a DataSource<Name> of cloud-init).
var Datasources = []string{
	"Akamai", "AliYun", "AltCloud", "Azure", "Bigstep", "CloudCIX", "CloudSigma", "CloudStack",
	"ConfigDrive", "DigitalOcean", "Ec2", "Exoscale", "GCE", "Hetzner", "IBMCloud", "LXD", "MAAS",
	"NWCS", "NoCloud", "None", "OVF", "OpenNebula", "OpenStack", "Oracle", "RbxCloud", "Scaleway",
	"SmartOS", "UpCloud", "VMware", "Vultr", "WSL",
}

// elsewhere tells, for a system key found in user-data, where it goes.
func elsewhere(systemKeys map[string]*spec) map[string]string {
	m := map[string]string{}
	for k := range systemKeys {
		m[k] = "cloud-init reads it from its system configuration (/etc/cloud/cloud.cfg.d/*.cfg in the image) before user-data"
	}
	return m
}

func union(a, b map[string]*spec) map[string]*spec {
	m := make(map[string]*spec, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}
