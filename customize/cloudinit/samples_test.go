package cloudinit

// samples are cloud-config documents with qimg's expected verdict: want
// is "" for valid, else a part of the error (file name, line, message).
// TestAgainstCloudInit checks cloud-init gives the same verdict on each,
// so every sample is one cloud-init 22.4 (Debian 12) and current
// cloud-init judge alike.
var samples = []struct {
	what, text, want string
}{
	{"hostname and packages", "#cloud-config\nhostname: web1\nfqdn: web1.example.org\npackages: [nginx, [vim, '2:9.0']]\npackage_update: true\npackage_upgrade: yes\n", ""},
	{"users and keys", `#cloud-config
users:
  - default
  - name: alice
    gecos: Alice
    groups: [adm, sudo]
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    lock_passwd: no
    uid: 1001
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample alice@host
ssh_pwauth: false
disable_root: true
ssh_deletekeys: true
ssh_genkeytypes: [rsa, ed25519]
`, ""},
	{"write_files", `#cloud-config
write_files:
  - path: /etc/motd
    content: |
      hello
    owner: root:root
    permissions: '0644'
  - path: /opt/x.bin
    encoding: b64
    content: aGVsbG8=
    append: false
    defer: true
`, ""},
	{"runcmd and bootcmd", "#cloud-config\nbootcmd:\n  - echo boot > /dev/console\n  - [cloud-init-per, once, x, 'true']\nruncmd:\n  - [sh, -c, 'echo hi']\n  - echo done\nfinal_message: up after $UPTIME s\n", ""},
	{"growpart and resize", "#cloud-config\ngrowpart:\n  mode: auto\n  devices: ['/']\n  ignore_growroot_disabled: false\nresize_rootfs: noblock\n", ""},
	{"growpart off as false", "#cloud-config\ngrowpart: {mode: false}\nresize_rootfs: false\n", ""},
	{"timezone, locale, ntp", "#cloud-config\ntimezone: Europe/Paris\nlocale: fr_FR.UTF-8\nntp:\n  enabled: true\n  servers: [ntp.example.org]\n  pools: [0.pool.ntp.org]\nkeyboard: {layout: fr}\n", ""},
	{"manage_etc_hosts", "#cloud-config\nmanage_etc_hosts: localhost\npreserve_hostname: false\n", ""},
	{"chpasswd", "#cloud-config\npassword: secret\nchpasswd:\n  expire: false\n  users:\n    - {name: root, password: secret2, type: text}\n    - {name: bob, type: RANDOM}\n", ""},
	{"power_state and phone_home", "#cloud-config\npower_state:\n  mode: reboot\n  delay: now\n  message: bye\n  timeout: 30\n  condition: true\nphone_home:\n  url: http://example.org/$INSTANCE_ID/\n  post: all\n  tries: 5\n", ""},
	{"mounts and swap", "#cloud-config\nmounts:\n  - [ /dev/vdb, /mnt, auto, 'defaults,nofail', '0', '2' ]\nswap:\n  filename: /swap.img\n  size: auto\n  maxsize: 1000000\n", ""},
	{"disk_setup and fs_setup", "#cloud-config\ndisk_setup:\n  /dev/vdb:\n    table_type: gpt\n    layout: [50, [50, 82]]\n    overwrite: false\nfs_setup:\n  - label: data\n    filesystem: ext4\n    device: /dev/vdb\n    partition: auto\n", ""},
	{"apt sources", "#cloud-config\napt:\n  preserve_sources_list: true\n  sources:\n    docker.list:\n      source: deb https://download.docker.com/linux/debian bookworm stable\n      keyid: 9DC858229FC7DD38854AE2D88D81803C0EBFCD88\n", ""},
	{"yum_repos", "#cloud-config\nyum_repos:\n  epel:\n    baseurl: https://example.org/epel/9/\n    name: EPEL\n    enabled: true\n    gpgcheck: 1\n", ""},
	{"ca_certs and rsyslog", "#cloud-config\nca_certs:\n  remove_defaults: false\n  trusted:\n    - |\n      -----BEGIN CERTIFICATE-----\n      MIIB\n      -----END CERTIFICATE-----\nrsyslog:\n  remotes: {log: '@10.0.0.1'}\n  configs: ['*.* @@10.0.0.1']\n", ""},
	{"snap and ssh_keys", "#cloud-config\nsnap:\n  commands:\n    - snap install hello\nssh_keys:\n  rsa_private: |\n    -----BEGIN RSA PRIVATE KEY-----\n    x\n  rsa_public: ssh-rsa AAAA\n", ""},
	{"anchors and merge keys", "#cloud-config\nx_common: &u {shell: /bin/sh}\n", "user-data:2: key 'x_common' is not a cloud-config key"},
	{"merge key in users", "#cloud-config\nusers:\n  - &base {name: a, shell: /bin/sh}\n  - <<: *base\n    name: b\n", ""},
	{"deprecated keys still valid", "#cloud-config\napt_update: true\napt_upgrade: false\n", ""},
	{"yaml 1.1 booleans", "#cloud-config\nssh_pwauth: on\npackage_update: Off\ndisable_root: YES\n", ""},

	{"sexagesimal version", "#cloud-config\npackages: [[vim, 2:9.0]]\n", "user-data:2: packages[0]"},
	{"unquoted true in a command", "#cloud-config\nbootcmd:\n  - [sh, -c, true]\n", "user-data:3: bootcmd[0]"},
	{"typo in a key", "#cloud-config\nhostname: a\npakages: [vim]\n", "user-data:3: key 'pakages' is not a cloud-config key (did you mean 'packages'?)"},
	{"unknown key", "#cloud-config\nfoo: bar\n", "user-data:2: key 'foo' is not a cloud-config key"},
	{"hostname integer", "#cloud-config\nhostname: 5\n", "user-data:2: hostname: expected a string, got an integer (5)"},
	{"runcmd string", "#cloud-config\nruncmd: echo hi\n", "user-data:2: runcmd: expected a list"},
	{"packages mapping", "#cloud-config\npackages:\n  vim: latest\n", "user-data:3: packages: expected a list"},
	{"octal permissions", "#cloud-config\nwrite_files:\n  - path: /x\n    content: y\n    permissions: 0644\n", "user-data:5: write_files[0].permissions: expected a string, got an integer (0644): YAML 1.1 reads a leading 0 as octal"},
	{"write_files typo", "#cloud-config\nwrite_files:\n  - path: /x\n    contnet: y\n", "user-data:4: write_files[0]: unknown key 'contnet' (did you mean 'content'?)"},
	{"write_files without path", "#cloud-config\nwrite_files:\n  - content: y\n", "user-data:3: write_files[0]: missing required key 'path'"},
	{"write_files bad encoding", "#cloud-config\nwrite_files:\n  - path: /x\n    encoding: base65\n", "user-data:4: write_files[0].encoding: 'base65' is not one of"},
	{"write_files append as text", "#cloud-config\nwrite_files:\n  - path: /x\n    append: 'yes'\n", "user-data:4: write_files[0].append: expected a boolean, got a string"},
	{"growpart bad mode", "#cloud-config\ngrowpart:\n  mode: fast\n", "user-data:3: growpart.mode: 'fast' is not one of auto, growpart, gpart, off, false"},
	{"growpart unknown key", "#cloud-config\ngrowpart:\n  device: [/]\n", "user-data:3: growpart: unknown key 'device' (did you mean 'devices'?)"},
	{"resize_rootfs bad", "#cloud-config\nresize_rootfs: sometimes\n", "user-data:2: resize_rootfs: 'sometimes' is not one of true, false, noblock"},
	{"ssh_authorized_keys string", "#cloud-config\nssh_authorized_keys: ssh-ed25519 AAAA\n", "user-data:2: ssh_authorized_keys: expected a list of strings, got a string"},
	{"user with unknown key", "#cloud-config\nusers:\n  - name: a\n    sudoers: ALL\n", "user-data:4: users[0]: unknown key 'sudoers' (did you mean 'sudo'?)"},
	{"user lock_passwd text", "#cloud-config\nusers:\n  - name: a\n    lock_passwd: 'false'\n", "user-data:4: users[0].lock_passwd: expected a boolean, got a string"},
	{"power_state without mode", "#cloud-config\npower_state:\n  delay: now\n", "user-data:3: power_state: missing required key 'mode'"},
	{"power_state bad mode", "#cloud-config\npower_state: {mode: restart}\n", "user-data:2: power_state.mode: 'restart' is not one of poweroff, reboot, halt"},
	{"manage_etc_hosts bad", "#cloud-config\nmanage_etc_hosts: always\n", "user-data:2: manage_etc_hosts: 'always' is not one of"},
	{"ssh_pwauth list", "#cloud-config\nssh_pwauth: [yes]\n", "user-data:2: ssh_pwauth: expected a boolean or a string, got a list"},
	{"package_update text", "#cloud-config\npackage_update: 'true'\n", "user-data:2: package_update: expected a boolean, got a string"},
	{"mounts flat", "#cloud-config\nmounts: [/dev/vdb, /mnt]\n", "user-data:2: mounts[0]: expected a list"},
	{"datasource_list in user-data", "#cloud-config\ndatasource_list: [NoCloud]\n", "user-data:2: key 'datasource_list' is not read from user-data"},
	{"not a mapping", "#cloud-config\n- hostname: a\n", "user-data:2: cloud-config must be a mapping"},
	{"YAML syntax", "#cloud-config\nhostname: a\n  fqdn: b\n", "user-data:3: YAML: mapping values are not allowed in this context"},
	{"missing header", "hostname: a\npackages: [vim]\n", "add '#cloud-config' as the first line"},
	{"two problems", "#cloud-config\nhostname: [a]\nruncmd:\n  - {a: b}\n", "user-data:2: hostname: expected a string, got a list\nuser-data:4: runcmd[0]: expected a string, a list of strings or null, got a mapping"},
}
