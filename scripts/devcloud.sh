#!/usr/bin/env bash
# A small real OpenStack on 127.0.0.1 for qimg's tests and for people
# trying qimg upload: Keystone and Glance from Debian 12's packages
# (OpenStack Zed), run without systemd, each daemon in the foreground of
# its own session (setsid) with a log and a PID file.
#
#   bash scripts/devcloud.sh start     # install if needed, configure, start, bootstrap
#   bash scripts/devcloud.sh start --nova   # and the second stage, for boot tests
#   bash scripts/devcloud.sh stop      # stop every daemon it started (both stages)
#   bash scripts/devcloud.sh status    # exit 0 when every daemon started answers
#   bash scripts/devcloud.sh env [admin|demo]   # OS_* exports for a shell
#   bash scripts/devcloud.sh install [--nova]   # only the apt packages
#
# State (configuration, databases, keys, images, instances, logs,
# clouds.yaml) lives in ${QIMG_DEVCLOUD:-/var/lib/qimg-devcloud}, never in
# the clone. Everything listens on 127.0.0.1 only: Keystone on 5000,
# Glance on 9292, Placement 8778, Nova 8774, Neutron 9696, rabbitmq 5672
# (QIMG_DEVCLOUD_PORT_OFFSET adds to each; a state directory keeps the
# offset it was made with). A port another process holds stops the start.
#
# Identities (passwords are random, made once, kept in $STATE/passwords):
#   admin / project admin   (role admin)      cloud "devcloud-admin"
#   demo  / project demo    (role member)     cloud "devcloud"
#   glance, placement, nova, neutron / project service (service users)
# $STATE/clouds.yaml names both clouds; OS_CLIENT_CONFIG_FILE points to it.
#
# The second stage (start --nova) runs, from Debian's packages too:
# mariadb (skip-networking, a unix socket in $STATE/run; Nova on sqlite
# fails "database is locked"), rabbitmq, Placement (uwsgi, sqlite),
# neutron-server (ML2, type flat, no mechanism driver, no agents: Nova
# needs a network endpoint even for servers without a NIC), nova-api,
# -conductor, -scheduler and -compute (one worker each; libvirt,
# virt_type=qemu, cpu_mode=none), virtlogd and libvirtd. It maps the
# compute host to the cell (nova-manage cell_v2 discover_hosts) and makes
# a public flavor "qimg.tiny" (1 vCPU, 768 MiB, 3 GB disk). Domains are
# named qimg-<tag of $STATE>-%08x; stop destroys and undefines this
# cloud's before it stops libvirtd (QEMU is not in libvirtd's process
# group), and leaves a libvirtd alone that it did not start or that still
# runs another cloud's domains.
#
# Tokens live ${QIMG_DEVCLOUD_TOKEN_TTL:-30} seconds (Keystone's [token]
# expiration), short on purpose so that the tests see tokens expire during
# long operations; a changed TTL takes effect at the next start after a stop.
# For benchmarks start it with a long TTL: below 120 s Glance's
# keystonemiddleware fetches a new service token for every request. Nova
# sends a service token with the user's, so that a build outlives the
# user's token; with a TTL this short the services authenticate on almost
# every call between them, and Keystone is the stage's busiest daemon.
#
# Idempotent: start does only what is missing (packages, configuration,
# databases, keys, users, running daemons). Needs root (apt, /var/lib).
# Install: about 225 packages without recommends (keystone glance-api
# python3-openstackclient uwsgi-plugin-python3 sqlite3 curl), about 150 s
# on an idle machine (831 s measured while another apt ran beside it);
# /usr/sbin/policy-rc.d keeps their postinst scripts from starting
# services. Cold start after the install: 35-70 s; warm start ~20 s.
# The Nova stage adds about 140 packages: 218 s to install on a machine
# with a load average of 5-7 (other jobs on its 2 cores). Its cold start
# (databases, cells, services, host discovery, flavor) took 131 s after
# Keystone and Glance's 71 s (load 5-8); a warm start 4-10 s; stop
# ~55 s (eventlet services wait for their KILL). Memory (PSS): the Nova
# stage's daemons 1.3 GiB (neutron-server 240 MiB, nova-compute 220,
# nova-api 200, mariadb 165, conductor 130, scheduler 120, placement 100,
# rabbitmq 95), 1.8 GiB with Keystone and Glance, plus each guest.
# Boot tests under TCG: the Debian 12 test image (qimg boot-test --cloud,
# --nic none, config drive) ACTIVE after 52-85 s (most of it the image's
# download from Glance), its last marker at 117 s (load 1-3) to 207-213 s
# (load 7-9); a kernel panic on the console seen at 54 s; a server delete
# 30-90 s. Keystone (tokens of 30 s, see above) is the bottleneck then:
# ~100 token requests a minute at ~0.9 s each.
set -euo pipefail

STATE=${QIMG_DEVCLOUD:-/var/lib/qimg-devcloud}
HOST=127.0.0.1
# QIMG_DEVCLOUD_PORT_OFFSET moves every port, so that a second cloud (a
# CI run beside a developer's) can run on the same machine.
PORT_OFFSET=${QIMG_DEVCLOUD_PORT_OFFSET:-0}
KEYSTONE_PORT=$((5000 + PORT_OFFSET))
GLANCE_PORT=$((9292 + PORT_OFFSET))
PLACEMENT_PORT=$((8778 + PORT_OFFSET))
NOVA_PORT=$((8774 + PORT_OFFSET))
NEUTRON_PORT=$((9696 + PORT_OFFSET))
RABBIT_PORT=$((5672 + PORT_OFFSET))
RABBIT_DIST_PORT=$((25672 + PORT_OFFSET))
TOKEN_TTL=${QIMG_DEVCLOUD_TOKEN_TTL:-30}
# Debian's interpreter: another python3 may come first on PATH.
PY=/usr/bin/python3
KEYSTONE_URL=http://$HOST:$KEYSTONE_PORT/v3
GLANCE_URL=http://$HOST:$GLANCE_PORT
PLACEMENT_URL=http://$HOST:$PLACEMENT_PORT
NOVA_URL=http://$HOST:$NOVA_PORT/v2.1
NEUTRON_URL=http://$HOST:$NEUTRON_PORT
# Names that are machine-wide (libvirt domains, the Erlang node) carry a
# tag of the state directory: two clouds never take each other's.
TAG=$(printf '%s' "$STATE" | cksum | { read -r sum _ && printf '%08x' "$sum"; })
INSTANCE_PREFIX=qimg-$TAG
RABBIT_NODE=qimg-$TAG@localhost
# The flavor the boot tests use: one vCPU, 768 MiB, a root disk for the
# 2 GiB test image.
FLAVOR=qimg.tiny
PACKAGES=(keystone glance-api python3-openstackclient uwsgi-core uwsgi-plugin-python3 sqlite3 curl)
# The second stage (start --nova): Placement, Nova with libvirt and QEMU
# TCG, its message queue and database, and a neutron-server.
NOVA_PACKAGES=(placement-api nova-api nova-conductor nova-scheduler nova-compute nova-compute-kvm
	libvirt-daemon-system qemu-system-x86 rabbitmq-server mariadb-server neutron-server genisoimage)

log() { printf '==> devcloud: %s\n' "$*" >&2; }
die() { printf 'devcloud: %s\n' "$*" >&2; exit 1; }

# --- packages ---------------------------------------------------------------

missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || printf '%s\n' "$p"
	done
}

# install_packages installs the named Debian packages that are missing,
# with a policy-rc.d that forbids their postinst scripts to start services
# (there is no systemd here, and we start the daemons our own way).
install_packages() {
	local missing
	mapfile -t missing < <(missing_packages "$@")
	[ "${#missing[@]}" -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing packages ${missing[*]}; run as root"
	local policy=/usr/sbin/policy-rc.d made_policy=""
	if ! { [ -x "$policy" ] && grep -q 'exit 101' "$policy"; }; then
		[ -e "$policy" ] && cp -p "$policy" "$policy.qimg-devcloud-saved"
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	local start=$SECONDS
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$STATE/log/apt.log" 2>&1; then
		log "apt-get update"
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$STATE/log/apt.log" 2>&1 ||
			{ tail -20 "$STATE/log/apt.log" >&2; die "apt-get install failed (log: $STATE/log/apt.log)"; }
	fi
	if [ -n "$made_policy" ]; then
		rm -f "$policy"
		[ -e "$policy.qimg-devcloud-saved" ] && mv "$policy.qimg-devcloud-saved" "$policy"
	fi
	log "installed in $((SECONDS - start)) s"
}

# --- passwords and configuration --------------------------------------------

# password NAME prints the password of NAME, made once.
password() {
	local f=$STATE/passwords/$1
	if [ ! -s "$f" ]; then
		umask 077
		head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$f"
	fi
	cat "$f"
}

make_dirs() {
	mkdir -p "$STATE"/{etc,log,run,db,passwords,keystone/fernet-keys,keystone/credential-keys} \
		"$STATE"/glance/{images,staging,tasks}
	chmod 700 "$STATE/passwords" "$STATE/keystone"
}

write_keystone_conf() {
	cat >"$STATE/etc/keystone.conf.new" <<EOF
# Written by qimg's scripts/devcloud.sh; rewritten at each start.
[DEFAULT]
log_file = $STATE/log/keystone.log
[database]
connection = sqlite:///$STATE/db/keystone.db
[identity]
# bcrypt's cheapest cost: a dev cloud's passwords need no brute-force
# resistance, and the default cost (12) makes every token take a second
# on a busy 2-core machine (Glance's service user authenticates on each
# request while tokens live less than keystoneauth's 120-s margin)
password_hash_rounds = 4
[token]
provider = fernet
expiration = $TOKEN_TTL
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
[credential]
key_repository = $STATE/keystone/credential-keys
EOF
	mv "$STATE/etc/keystone.conf.new" "$STATE/etc/keystone.conf"
}

write_glance_conf() {
	cat >"$STATE/etc/glance-api.conf.new" <<EOF
# Written by qimg's scripts/devcloud.sh; rewritten at each start.
[DEFAULT]
bind_host = $HOST
bind_port = $GLANCE_PORT
workers = 1
log_file = $STATE/log/glance-api.log
enabled_import_methods = [glance-direct,web-download]
# where glance-direct stages data (also named in os_glance_staging_store)
node_staging_uri = file://$STATE/glance/staging
[database]
connection = sqlite:///$STATE/db/glance.db
[keystone_authtoken]
www_authenticate_uri = http://$HOST:$KEYSTONE_PORT
auth_url = http://$HOST:$KEYSTONE_PORT
auth_type = password
user_domain_name = Default
project_domain_name = Default
project_name = service
username = glance
password = $(password glance)
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = $STATE/glance/images
# zero chunks become holes: multi-GiB sparse test images cost no disk
filesystem_thin_provisioning = true
[os_glance_staging_store]
filesystem_store_datadir = $STATE/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $STATE/glance/tasks
[import_filtering_opts]
# web-download from a test server on 127.0.0.1 (loopback is refused unless
# listed) on any port
allowed_ports = []
allowed_hosts = [127.0.0.1]
EOF
	mv "$STATE/etc/glance-api.conf.new" "$STATE/etc/glance-api.conf"
}

# wal turns on sqlite's write-ahead log (kept in the file): readers no
# longer block the writer ("database is locked").
wal() { sqlite3 "$1" 'PRAGMA journal_mode=WAL;' >/dev/null; }

# kmanage runs keystone-manage with its chatter (eventlet's exit noise)
# in a log, shown only when it fails.
kmanage() {
	keystone-manage --config-file "$STATE/etc/keystone.conf" "$@" >>"$STATE/log/keystone-manage.log" 2>&1 ||
		{ tail -20 "$STATE/log/keystone-manage.log" >&2; die "keystone-manage $1 failed"; }
}

setup_keystone() {
	if [ ! -s "$STATE/db/keystone.db" ] || [ ! -e "$STATE/run/keystone.synced" ]; then
		log "keystone-manage db_sync"
		kmanage db_sync
		wal "$STATE/db/keystone.db"
		touch "$STATE/run/keystone.synced"
	fi
	if [ ! -e "$STATE/keystone/fernet-keys/0" ]; then
		kmanage fernet_setup --keystone-user root --keystone-group root
	fi
	if [ ! -e "$STATE/keystone/credential-keys/0" ]; then
		kmanage credential_setup --keystone-user root --keystone-group root
	fi
	if [ ! -e "$STATE/run/keystone.bootstrapped" ]; then
		log "keystone-manage bootstrap"
		kmanage bootstrap --bootstrap-password "$(password admin)" \
			--bootstrap-admin-url "$KEYSTONE_URL/" --bootstrap-internal-url "$KEYSTONE_URL/" \
			--bootstrap-public-url "$KEYSTONE_URL/" --bootstrap-region-id RegionOne
		touch "$STATE/run/keystone.bootstrapped"
	fi
}

setup_glance() {
	if [ ! -s "$STATE/db/glance.db" ] || [ ! -e "$STATE/run/glance.synced" ]; then
		log "glance-manage db_sync"
		glance-manage --config-file "$STATE/etc/glance-api.conf" db_sync >>"$STATE/log/glance-manage.log" 2>&1 ||
			{ tail -20 "$STATE/log/glance-manage.log" >&2; die "glance-manage db_sync failed"; }
		wal "$STATE/db/glance.db"
		touch "$STATE/run/glance.synced"
	fi
}

# --- daemons ----------------------------------------------------------------

# running NAME: its PID file names a live process that is still that
# daemon (after a reboot or a kill the number may belong to another).
running() {
	local pid want
	pid=$(cat "$STATE/run/$1.pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	case $1 in
	keystone) want=keystone-wsgi-public ;;
	placement) want=placement-api ;;
	mariadb) want=mariadbd ;;
	rabbitmq) want=rabbit ;;
	*) want=$1 ;;
	esac
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$want"
}

# port_taken PORT: something listens on 127.0.0.1:PORT.
port_taken() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# spawn NAME [PORT] CMD...: runs CMD in a new session (its own process
# group, so stop can end it with its children), logging to
# $STATE/log/NAME.out. A PORT that another process holds is an error:
# otherwise the wait for the daemon would greet a stranger (another
# cloud; QIMG_DEVCLOUD_PORT_OFFSET moves them all).
spawn() {
	local name=$1
	shift
	local port=""
	case $1 in [0-9]*) port=$1 && shift ;; esac
	running "$name" && return 0
	if [ -n "$port" ] && port_taken "$port"; then
		die "$name: port $port is taken by another process (QIMG_DEVCLOUD_PORT_OFFSET moves every port)"
	fi
	log "starting $name"
	# 9>&-: the daemon must not keep the lock (see locked) open.
	setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 9>&- &
	echo $! >"$STATE/run/$name.pid"
}

# wait_http NAME URL: waits until URL answers (any HTTP status below 500).
wait_http() {
	local name=$1 url=$2 code i
	for i in $(seq 1 120); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)
		if [ "$code" != 000 ] && [ "$code" -lt 500 ]; then
			return 0
		fi
		running "$name" || { tail -30 "$STATE/log/$name.out" >&2; die "$name died (log: $STATE/log/$name.out)"; }
		sleep 0.5
	done
	die "$name does not answer at $url"
}

start_keystone() {
	# One thread per process: Keystone's sqlite sessions are not shared
	# across threads. lazy-apps: each worker opens its own database.
	# uwsgi's --http-socket closes connections silently; "Connection:
	# close" tells clients not to reuse them.
	spawn keystone "$KEYSTONE_PORT" uwsgi --plugin python3 --http-socket "$HOST:$KEYSTONE_PORT" \
		--wsgi-file /usr/bin/keystone-wsgi-public --master --processes 2 --threads 1 \
		--lazy-apps --die-on-term --buffer-size 65535 --add-header "Connection: close" \
		--env "OS_KEYSTONE_CONFIG_FILES=$STATE/etc/keystone.conf"
	wait_http keystone "$KEYSTONE_URL"
}

start_glance() {
	spawn glance-api "$GLANCE_PORT" glance-api --config-file "$STATE/etc/glance-api.conf"
	wait_http glance-api "$GLANCE_URL/versions"
}

# stop_daemon NAME: TERM to its process group, then KILL after 10 s.
stop_daemon() {
	local name=$1 pid i
	pid=$(cat "$STATE/run/$name.pid" 2>/dev/null) || return 0
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		log "stopping $name"
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 20); do
			kill -0 -- "-$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$STATE/run/$name.pid"
}

# --- identities -------------------------------------------------------------

# ensure_identities MARKER SERVICE:TYPE:URL...: creates, if missing, the
# service and demo projects, the demo user (member of demo), and for each
# SERVICE its user (admin and service in project service) and its catalog
# entry of TYPE at URL, with Keystone's REST API (one python process
# instead of dozens of CLI calls). MARKER names the file that says it is
# done.
ensure_identities() {
	local marker=$STATE/run/$1.done
	shift
	[ -e "$marker" ] && return 0
	log "creating projects, users, roles and the endpoints of: ${*%%:*}"
	local spec env=()
	for spec in "$@"; do
		env+=("PW_${spec%%:*}=$(password "${spec%%:*}")")
	done
	env "${env[@]}" ADMIN_PW="$(password admin)" DEMO_PW="$(password demo)" \
		KEYSTONE_URL="$KEYSTONE_URL" SERVICES="$*" "$PY" - <<'EOF'
import json, os, urllib.request, urllib.error

ks = os.environ["KEYSTONE_URL"]

def call(method, path, body=None, token=None):
    req = urllib.request.Request(ks + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    with urllib.request.urlopen(req, timeout=60) as r:
        data = r.read()
        return r.headers, (json.loads(data) if data else None)

hdr, _ = call("POST", "/auth/tokens", {"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": os.environ["ADMIN_PW"]}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
tok = hdr["X-Subject-Token"]

def find(kind, name, **query):
    q = "&".join(f"{k}={v}" for k, v in {"name": name, **query}.items())
    _, body = call("GET", f"/{kind}?{q}", token=tok)
    items = body[kind]
    return items[0]["id"] if items else None

def ensure(kind, single, name, body, **query):
    found = find(kind, name, **query)
    if found:
        return found
    _, created = call("POST", f"/{kind}", {single: {"name": name, **body}}, token=tok)
    return created[single]["id"]

def user(name, password):
    return ensure("users", "user", name, {"domain_id": "default", "password": password})

def grant(project, user, role):
    call("PUT", f"/projects/{project}/users/{user}/roles/{role}", token=tok)

projects = {p: ensure("projects", "project", p, {"domain_id": "default"}) for p in ("service", "demo")}
roles = {r: find("roles", r) or ensure("roles", "role", r, {}) for r in ("admin", "member", "service")}
grant(projects["demo"], user("demo", os.environ["DEMO_PW"]), roles["member"])
for spec in os.environ["SERVICES"].split():
    name, kind, url = spec.split(":", 2)
    uid = user(name, os.environ["PW_" + name])
    grant(projects["service"], uid, roles["admin"])
    grant(projects["service"], uid, roles["service"])
    svc = find("services", name) or ensure("services", "service", name, {"type": kind})
    _, eps = call("GET", f"/endpoints?service_id={svc}", token=tok)
    have = {e["interface"] for e in eps["endpoints"]}
    for iface in ("public", "internal", "admin"):
        if iface not in have:
            call("POST", "/endpoints", {"endpoint": {"service_id": svc, "interface": iface,
                                                      "url": url, "region_id": "RegionOne"}}, token=tok)
EOF
	touch "$marker"
}

# --- the second stage: Placement, Nova, Neutron -----------------------------

make_nova_dirs() {
	mkdir -p "$STATE"/{etc/placement,etc/nova,etc/neutron,mysql,rabbitmq,locks} \
		"$STATE"/nova/instances "$STATE"/neutron
	# QEMU runs as libvirt-qemu and must reach the instances' disks.
	chmod 755 "$STATE" "$STATE/nova" "$STATE/nova/instances"
}

# db_url NAME DATABASE: SQLAlchemy's URL of a mariadb database, through
# the unix socket.
db_url() {
	printf 'mysql+pymysql://%s:%s@localhost/%s?unix_socket=%s&charset=utf8' \
		"$1" "$(password "$1-db")" "$2" "$STATE/run/mysqld.sock"
}

# auth_section USER: the keystoneauth options of a service user.
auth_section() {
	cat <<EOF
auth_type = password
auth_url = http://$HOST:$KEYSTONE_PORT
user_domain_name = Default
project_domain_name = Default
project_name = service
username = $1
password = $(password "$1")
region_name = RegionOne
EOF
}

# authtoken_section USER: keystonemiddleware's options.
authtoken_section() {
	printf 'www_authenticate_uri = http://%s:%s\n' "$HOST" "$KEYSTONE_PORT"
	auth_section "$1"
}

write_mariadb_conf() {
	cat >"$STATE/etc/my.cnf" <<EOF
# Written by qimg's scripts/devcloud.sh; rewritten at each start.
[client]
socket = $STATE/run/mysqld.sock
[mysqld]
user = root
datadir = $STATE/mysql
socket = $STATE/run/mysqld.sock
pid-file = $STATE/mysql/mariadbd.pid
skip-networking
log-error = $STATE/log/mariadb.log
character-set-server = utf8mb3
collation-server = utf8mb3_general_ci
innodb_buffer_pool_size = 64M
performance_schema = OFF
max_connections = 500
EOF
}

# sql runs mariadb's client as root on the socket.
sql() { mariadb --defaults-file="$STATE/etc/my.cnf" -u root "$@"; }

start_mariadb() {
	write_mariadb_conf
	if [ ! -d "$STATE/mysql/mysql" ]; then
		log "mariadb-install-db"
		mariadb-install-db --defaults-file="$STATE/etc/my.cnf" --auth-root-authentication-method=socket \
			--skip-test-db >>"$STATE/log/mariadb-install.log" 2>&1 ||
			{ tail -20 "$STATE/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
	fi
	spawn mariadb mariadbd --defaults-file="$STATE/etc/my.cnf"
	local i
	for i in $(seq 1 120); do
		sql -e 'SELECT 1' >/dev/null 2>&1 && break
		running mariadb || { tail -30 "$STATE/log/mariadb.log" >&2; die "mariadb died (log: $STATE/log/mariadb.log)"; }
		sleep 0.5
	done
	sql -e 'SELECT 1' >/dev/null || die "mariadb does not answer on $STATE/run/mysqld.sock"
	local db user
	for db in nova_api:nova nova:nova nova_cell0:nova neutron:neutron; do
		user=${db#*:}
		db=${db%%:*}
		sql -e "CREATE DATABASE IF NOT EXISTS $db;
			CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$(password "$user-db")';
			GRANT ALL PRIVILEGES ON $db.* TO '$user'@'localhost';"
	done
}

# wait_port NAME PORT: waits until something listens on PORT.
wait_port() {
	local name=$1 port=$2 i
	for i in $(seq 1 240); do
		port_taken "$port" && return 0
		running "$name" || { tail -30 "$STATE/log/$name.out" >&2; die "$name died (log: $STATE/log/$name.out)"; }
		sleep 0.5
	done
	die "$name does not listen on port $port"
}

start_rabbitmq() {
	cat >"$STATE/etc/rabbitmq.conf" <<EOF
# Written by qimg's scripts/devcloud.sh; rewritten at each start.
listeners.tcp.default = $HOST:$RABBIT_PORT
disk_free_limit.absolute = 100MB
EOF
	printf '[].\n' >"$STATE/etc/rabbitmq-enabled-plugins"
	: >"$STATE/etc/rabbitmq-env.conf"
	# The broker itself, as root: Debian's wrapper would switch to the
	# rabbitmq user, which cannot write $STATE. HOME holds the Erlang
	# cookie; epmd (Erlang's port mapper, shared by every node on the
	# machine) is started by the broker and outlives it.
	spawn rabbitmq "$RABBIT_PORT" env HOME="$STATE/rabbitmq" RABBITMQ_NODENAME="$RABBIT_NODE" \
		RABBITMQ_CONF_ENV_FILE="$STATE/etc/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$STATE/etc/rabbitmq" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$STATE/etc/rabbitmq-enabled-plugins" \
		RABBITMQ_MNESIA_BASE="$STATE/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$STATE/log" RABBITMQ_LOGS=- \
		RABBITMQ_PID_FILE="$STATE/rabbitmq/pid" RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT" \
		ERL_EPMD_ADDRESS="$HOST" /usr/lib/rabbitmq/bin/rabbitmq-server
	wait_port rabbitmq "$RABBIT_PORT"
}

write_placement_conf() {
	cat >"$STATE/etc/placement/placement.conf" <<EOF
# Written by qimg's scripts/devcloud.sh; rewritten at each start.
[DEFAULT]
log_file = $STATE/log/placement.log
[api]
auth_strategy = keystone
[keystone_authtoken]
$(authtoken_section placement)
[placement_database]
connection = sqlite:///$STATE/db/placement.db
EOF
}

setup_placement() {
	[ -e "$STATE/run/placement.synced" ] && return 0
	log "placement-manage db sync"
	placement-manage --config-file "$STATE/etc/placement/placement.conf" db sync \
		>>"$STATE/log/placement-manage.log" 2>&1 ||
		{ tail -20 "$STATE/log/placement-manage.log" >&2; die "placement-manage db sync failed"; }
	wal "$STATE/db/placement.db"
	touch "$STATE/run/placement.synced"
}

start_placement() {
	# One process with one thread: sqlite, as for Keystone.
	spawn placement "$PLACEMENT_PORT" uwsgi --plugin python3 --http-socket "$HOST:$PLACEMENT_PORT" \
		--wsgi-file /usr/bin/placement-api --master --processes 1 --threads 1 \
		--lazy-apps --die-on-term --buffer-size 65535 --add-header "Connection: close" \
		--env "OS_PLACEMENT_CONFIG_DIR=$STATE/etc/placement"
	wait_http placement "$PLACEMENT_URL/"
}

write_neutron_conf() {
	cat >"$STATE/etc/neutron/neutron.conf" <<EOF
# Written by qimg's scripts/devcloud.sh; rewritten at each start.
[DEFAULT]
bind_host = $HOST
bind_port = $NEUTRON_PORT
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
core_plugin = ml2
service_plugins =
auth_strategy = keystone
api_paste_config = /etc/neutron/api-paste.ini
transport_url = rabbit://guest:guest@$HOST:$RABBIT_PORT/
state_path = $STATE/neutron
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
[database]
connection = $(db_url neutron neutron)
[keystone_authtoken]
$(authtoken_section neutron)
[oslo_concurrency]
lock_path = $STATE/locks
[oslo_messaging_notifications]
driver = noop
EOF
	cat >"$STATE/etc/neutron/ml2_conf.ini" <<EOF
# Written by qimg's scripts/devcloud.sh: networks exist as records only
# (no mechanism driver, no agents); enough for servers without a NIC.
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers =
extension_drivers =
[ml2_type_flat]
flat_networks = *
EOF
}

neutron_files() { printf -- '--config-file\n%s\n--config-file\n%s\n' "$STATE/etc/neutron/neutron.conf" "$STATE/etc/neutron/ml2_conf.ini"; }

setup_neutron() {
	[ -e "$STATE/run/neutron.synced" ] && return 0
	log "neutron-db-manage upgrade head"
	local files
	mapfile -t files < <(neutron_files)
	neutron-db-manage "${files[@]}" upgrade head >>"$STATE/log/neutron-db-manage.log" 2>&1 ||
		{ tail -20 "$STATE/log/neutron-db-manage.log" >&2; die "neutron-db-manage failed"; }
	touch "$STATE/run/neutron.synced"
}

start_neutron() {
	local files
	mapfile -t files < <(neutron_files)
	spawn neutron-server "$NEUTRON_PORT" neutron-server "${files[@]}" --log-file "$STATE/log/neutron-server.log"
	wait_http neutron-server "$NEUTRON_URL/"
}

write_nova_conf() {
	cat >"$STATE/etc/nova/nova.conf" <<EOF
# Written by qimg's scripts/devcloud.sh; rewritten at each start.
[DEFAULT]
host = devcloud-$TAG
my_ip = $HOST
transport_url = rabbit://guest:guest@$HOST:$RABBIT_PORT/
state_path = $STATE/nova
instances_path = $STATE/nova/instances
instance_name_template = $INSTANCE_PREFIX-%08x
compute_driver = libvirt.LibvirtDriver
enabled_apis = osapi_compute
osapi_compute_listen = $HOST
osapi_compute_listen_port = $NOVA_PORT
osapi_compute_workers = 1
# the instances' network info is never refreshed: they have no NIC
heal_instance_info_cache_interval = -1
# boot from the qcow2 as Glance has it: converting a 2 GiB test image to
# raw first costs a minute on a busy machine
force_raw_images = false
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[api_database]
connection = $(db_url nova nova_api)
[database]
connection = $(db_url nova nova)
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[keystone_authtoken]
$(authtoken_section nova)
# Tokens live $TOKEN_TTL s: Nova sends a service token with the user's,
# so that Glance takes a user token that expired during a build.
[service_user]
send_service_user_token = true
$(auth_section nova)
[placement]
$(auth_section nova)
[neutron]
$(auth_section nova)
[libvirt]
virt_type = qemu
cpu_mode = none
[vnc]
enabled = false
[spice]
enabled = false
[oslo_concurrency]
lock_path = $STATE/locks
[oslo_messaging_notifications]
driver = noop
EOF
}

# nmanage runs nova-manage, its chatter in a log shown when it fails.
nmanage() {
	nova-manage --config-file "$STATE/etc/nova/nova.conf" "$@" >>"$STATE/log/nova-manage.log" 2>&1 ||
		{ tail -20 "$STATE/log/nova-manage.log" >&2; die "nova-manage $* failed"; }
}

setup_nova() {
	[ -e "$STATE/run/nova.synced" ] && return 0
	log "nova-manage api_db sync, cells, db sync"
	nmanage api_db sync
	nmanage cell_v2 map_cell0 --database_connection "$(db_url nova nova_cell0)"
	if ! nova-manage --config-file "$STATE/etc/nova/nova.conf" cell_v2 list_cells 2>/dev/null | grep -q ' cell1 '; then
		nmanage cell_v2 create_cell --name cell1
	fi
	nmanage db sync
	touch "$STATE/run/nova.synced"
}

# nova_spawn NAME: starts one of Nova's services with the configuration.
nova_spawn() {
	local name=$1
	shift
	spawn "$name" "$@" "$name" --config-file "$STATE/etc/nova/nova.conf" --log-file "$STATE/log/$name.log"
}

# libvirt_ours: libvirtd is ours to start and stop; one another cloud or
# the system started is used as it is.
libvirt_ours() {
	running libvirtd && return 0
	! virsh -c qemu:///system version >/dev/null 2>&1
}

start_libvirt() {
	libvirt_ours || return 0
	spawn virtlogd virtlogd
	spawn libvirtd libvirtd
	local i
	for i in $(seq 1 120); do
		virsh -c qemu:///system version >/dev/null 2>&1 && return 0
		running libvirtd || { tail -30 "$STATE/log/libvirtd.out" >&2; die "libvirtd died (log: $STATE/log/libvirtd.out)"; }
		sleep 0.5
	done
	die "libvirtd does not answer"
}

# wait_compute waits until nova-compute has registered its node, then maps
# it to the cell (the scheduler finds no host before that), and until the
# service has reported since $1 (UTC): restarted on an old state, it is
# "down" to the scheduler ("No valid host was found") until its first
# report, about 10 s after it starts.
wait_compute() {
	local i host=devcloud-$TAG since=$1
	wait_mapped
	for i in $(seq 1 120); do
		[ "$(sql -N -e "SELECT count(*) FROM nova.services WHERE host='$host' AND topic='compute' AND deleted=0 AND updated_at >= '$since'")" -gt 0 ] && return 0
		running nova-compute || { tail -30 "$STATE/log/nova-compute.log" >&2; die "nova-compute died (log: $STATE/log/nova-compute.log)"; }
		sleep 1
	done
	die "nova-compute did not report (log: $STATE/log/nova-compute.log)"
}

# wait_mapped waits until nova-compute's node is registered and mapped to
# the cell.
wait_mapped() {
	local i host=devcloud-$TAG
	[ "$(sql -N -e "SELECT count(*) FROM nova_api.host_mappings WHERE host='$host'")" -gt 0 ] && return 0
	for i in $(seq 1 240); do
		if [ "$(sql -N -e "SELECT count(*) FROM nova.compute_nodes WHERE host='$host' AND deleted=0")" -gt 0 ]; then
			nmanage cell_v2 discover_hosts
			[ "$(sql -N -e "SELECT count(*) FROM nova_api.host_mappings WHERE host='$host'")" -gt 0 ] && return 0
		fi
		running nova-compute || { tail -30 "$STATE/log/nova-compute.log" >&2; die "nova-compute died (log: $STATE/log/nova-compute.log)"; }
		sleep 1
	done
	die "nova-compute did not register (log: $STATE/log/nova-compute.log)"
}

# admin_cli runs the openstack CLI as admin.
admin_cli() {
	env $(print_env admin | sed -n 's/^export //p' | grep -v '^OS_CLIENT_CONFIG_FILE=') /usr/bin/openstack "$@"
}

ensure_flavor() {
	[ -e "$STATE/run/flavor.done" ] && return 0
	if ! admin_cli flavor show "$FLAVOR" >/dev/null 2>&1; then
		admin_cli flavor create --vcpus 1 --ram 768 --disk 3 --public "$FLAVOR" >/dev/null
	fi
	touch "$STATE/run/flavor.done"
}

# warm_neutron: a neutron-server just started answers GET /ports with a
# 500 ("Port has no attribute 'port_forwardings'") until some query has
# made SQLAlchemy configure its mappers (the attribute is a backref):
# listing the networks does that.
warm_neutron() {
	admin_cli network list >/dev/null
	admin_cli port list >/dev/null
}

start_nova_stage() {
	local t0=$SECONDS
	install_packages "${NOVA_PACKAGES[@]}"
	make_nova_dirs
	# Nova's services make files QEMU (libvirt-qemu) reads.
	umask 022
	start_mariadb
	start_rabbitmq
	ensure_identities identities-nova "placement:placement:$PLACEMENT_URL" \
		"nova:compute:$NOVA_URL" "neutron:network:$NEUTRON_URL"
	write_placement_conf
	write_neutron_conf
	write_nova_conf
	setup_placement
	start_placement
	setup_neutron
	local fresh_neutron=""
	running neutron-server || fresh_neutron=1
	start_neutron
	setup_nova
	nova_spawn nova-api "$NOVA_PORT"
	wait_http nova-api "$NOVA_URL/"
	nova_spawn nova-conductor
	nova_spawn nova-scheduler
	start_libvirt
	local since
	since=$(sql -N -e "SELECT UTC_TIMESTAMP()")
	nova_spawn nova-compute
	wait_compute "$since"
	ensure_flavor
	[ -z "$fresh_neutron" ] || warm_neutron
	touch "$STATE/run/nova-stage"
	log "Placement, Nova $NOVA_URL and Neutron up ($((SECONDS - t0)) s); flavor $FLAVOR"
}

# destroy_instances removes this cloud's libvirt domains: QEMU is not in
# libvirtd's process group, and would outlive it.
destroy_instances() {
	virsh -c qemu:///system version >/dev/null 2>&1 || return 0
	local dom
	for dom in $(virsh -c qemu:///system list --all --name | grep "^$INSTANCE_PREFIX-" || true); do
		log "removing domain $dom"
		virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
		virsh -c qemu:///system undefine --nvram "$dom" >/dev/null 2>&1 ||
			virsh -c qemu:///system undefine "$dom" >/dev/null 2>&1 || true
	done
}

stop_nova_stage() {
	stop_daemon nova-compute
	destroy_instances
	# libvirtd serves every cloud on the machine: it stops with the last
	# domain.
	if [ -z "$(virsh -c qemu:///system list --all --name 2>/dev/null | grep .)" ]; then
		stop_daemon libvirtd
		stop_daemon virtlogd
	fi
	local name
	for name in nova-scheduler nova-conductor nova-api neutron-server placement rabbitmq mariadb; do
		stop_daemon "$name"
	done
	rm -f "$STATE/run/nova-stage"
}

# --- client configuration -----------------------------------------------------

write_clouds_yaml() {
	local mask
	mask=$(umask)
	umask 077
	cat >"$STATE/clouds.yaml.new" <<EOF
# Written by qimg's scripts/devcloud.sh.
clouds:
  devcloud:
    auth:
      auth_url: $KEYSTONE_URL
      username: demo
      password: $(password demo)
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  devcloud-admin:
    auth:
      auth_url: $KEYSTONE_URL
      username: admin
      password: $(password admin)
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOF
	umask "$mask"
	mv "$STATE/clouds.yaml.new" "$STATE/clouds.yaml"
}

print_env() {
	local who=${1:-demo}
	case $who in
	admin | demo) ;;
	*) die "env: unknown identity $who (admin or demo)" ;;
	esac
	cat <<EOF
export OS_AUTH_URL=$KEYSTONE_URL
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=$who
export OS_PASSWORD=$(password "$who")
export OS_PROJECT_NAME=$who
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
# the same identities as clouds (--os-cloud devcloud / devcloud-admin):
export OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml
export QIMG_DEVCLOUD_TOKEN_TTL=$(cat "$STATE/run/token-ttl" 2>/dev/null || echo "$TOKEN_TTL")
EOF
}

# --- commands -----------------------------------------------------------------

# check_ports: the catalog in Keystone's database holds the URLs of the
# first start, so a state directory keeps its port offset.
check_ports() {
	local f=$STATE/run/port-offset
	if [ -e "$f" ] && [ "$(cat "$f")" != "$PORT_OFFSET" ]; then
		die "$STATE was made with QIMG_DEVCLOUD_PORT_OFFSET=$(cat "$f"); use that, or another QIMG_DEVCLOUD"
	fi
	echo "$PORT_OFFSET" >"$f"
}

cmd_start() {
	local t0=$SECONDS nova=${1:-}
	make_dirs
	check_ports
	install_packages "${PACKAGES[@]}"
	write_keystone_conf
	write_glance_conf
	setup_keystone
	setup_glance
	if ! running keystone; then
		echo "$TOKEN_TTL" >"$STATE/run/token-ttl"
	fi
	start_keystone
	ensure_identities identities "glance:image:$GLANCE_URL"
	start_glance
	write_clouds_yaml
	log "Keystone $KEYSTONE_URL and Glance $GLANCE_URL up ($((SECONDS - t0)) s); state in $STATE"
	if [ "$nova" = --nova ]; then
		start_nova_stage
	fi
}

NOVA_DAEMONS=(mariadb rabbitmq placement neutron-server nova-api nova-conductor nova-scheduler virtlogd libvirtd nova-compute)

cmd_status() {
	local ok=0 name names=(keystone glance-api)
	if [ -e "$STATE/run/nova-stage" ]; then
		names+=("${NOVA_DAEMONS[@]}")
	fi
	for name in "${names[@]}"; do
		if [ "$name" = libvirtd ] || [ "$name" = virtlogd ]; then
			libvirt_ours || { echo "$name: not ours (another cloud's or the system's)"; continue; }
		fi
		if running "$name"; then
			echo "$name: running (pid $(cat "$STATE/run/$name.pid"))"
		else
			echo "$name: stopped"
			ok=1
		fi
	done
	if [ "$ok" -eq 0 ]; then
		curl -sf -o /dev/null --max-time 10 "$KEYSTONE_URL" || { echo "keystone: not answering"; ok=1; }
		curl -s -o /dev/null --max-time 10 "$GLANCE_URL/versions" || { echo "glance-api: not answering"; ok=1; }
		if [ -e "$STATE/run/nova-stage" ]; then
			curl -s -o /dev/null --max-time 10 "$NOVA_URL/" || { echo "nova-api: not answering"; ok=1; }
			curl -s -o /dev/null --max-time 10 "$NEUTRON_URL/" || { echo "neutron-server: not answering"; ok=1; }
			curl -s -o /dev/null --max-time 10 "$PLACEMENT_URL/" || { echo "placement: not answering"; ok=1; }
		fi
	fi
	return "$ok"
}

cmd_stop() {
	stop_nova_stage
	stop_daemon glance-api
	stop_daemon keystone
}

# locked runs a command under $STATE/lock: test binaries of several
# packages may start the cloud at the same time.
locked() {
	mkdir -p "$STATE"
	exec 9>"$STATE/lock"
	flock 9
	"$@"
}

case ${1:-} in
start) locked cmd_start "${2:-}" ;;
stop) locked cmd_stop ;;
status) cmd_status ;;
env) print_env "${2:-demo}" ;;
install)
	make_dirs
	if [ "${2:-}" = --nova ]; then
		locked install_packages "${PACKAGES[@]}" "${NOVA_PACKAGES[@]}"
	else
		locked install_packages "${PACKAGES[@]}"
	fi
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
