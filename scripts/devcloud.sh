#!/usr/bin/env bash
# A small real OpenStack on 127.0.0.1 for qimg's tests and for people
# trying qimg upload: Keystone and Glance from Debian 12's packages
# (OpenStack Zed), run without systemd, each daemon in the foreground of
# its own session (setsid) with a log and a PID file.
#
#   bash scripts/devcloud.sh start     # install if needed, configure, start, bootstrap
#   bash scripts/devcloud.sh stop      # stop every daemon it started
#   bash scripts/devcloud.sh status    # exit 0 when Keystone and Glance answer
#   bash scripts/devcloud.sh env [admin|demo]   # OS_* exports for a shell
#   bash scripts/devcloud.sh install   # only the apt packages
#
# State (configuration, sqlite databases, keys, images, logs, clouds.yaml)
# lives in ${QIMG_DEVCLOUD:-/var/lib/qimg-devcloud}, never in the clone.
# Everything listens on 127.0.0.1 only: Keystone on 5000, Glance on 9292.
#
# Identities (passwords are random, made once, kept in $STATE/passwords):
#   admin / project admin   (role admin)      cloud "devcloud-admin"
#   demo  / project demo    (role member)     cloud "devcloud"
#   glance / project service (Glance's service user)
# $STATE/clouds.yaml names both clouds; OS_CLIENT_CONFIG_FILE points to it.
#
# Tokens live ${QIMG_DEVCLOUD_TOKEN_TTL:-30} seconds (Keystone's [token]
# expiration), short on purpose so that the tests see tokens expire during
# long operations; a changed TTL takes effect at the next start after a stop.
# For benchmarks start it with a long TTL: below 120 s Glance's
# keystonemiddleware fetches a new service token for every request.
#
# Idempotent: start does only what is missing (packages, configuration,
# databases, keys, users, running daemons). Needs root (apt, /var/lib).
# Install: about 225 packages without recommends (keystone glance-api
# python3-openstackclient uwsgi-plugin-python3 sqlite3 curl), about 150 s
# on an idle machine (831 s measured while another apt ran beside it);
# /usr/sbin/policy-rc.d keeps their postinst scripts from starting
# services. Cold start after the install: 35-70 s; warm start ~20 s.
#
# Not yet: the second stage for boot tests (Placement, Nova with libvirt
# and QEMU TCG, rabbitmq, mariadb, neutron-server; `start --nova`), see
# ../shared/notes/devcloud.md.
set -euo pipefail

STATE=${QIMG_DEVCLOUD:-/var/lib/qimg-devcloud}
HOST=127.0.0.1
KEYSTONE_PORT=5000
GLANCE_PORT=9292
TOKEN_TTL=${QIMG_DEVCLOUD_TOKEN_TTL:-30}
# Debian's interpreter: another python3 may come first on PATH.
PY=/usr/bin/python3
KEYSTONE_URL=http://$HOST:$KEYSTONE_PORT/v3
GLANCE_URL=http://$HOST:$GLANCE_PORT
PACKAGES=(keystone glance-api python3-openstackclient uwsgi-core uwsgi-plugin-python3 sqlite3 curl)

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
	*) want=$1 ;;
	esac
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$want"
}

# spawn NAME CMD...: runs CMD in a new session (its own process group, so
# stop can end it with its children), logging to $STATE/log/NAME.out.
spawn() {
	local name=$1
	shift
	running "$name" && return 0
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
	spawn keystone uwsgi --plugin python3 --http-socket "$HOST:$KEYSTONE_PORT" \
		--wsgi-file /usr/bin/keystone-wsgi-public --master --processes 2 --threads 1 \
		--lazy-apps --die-on-term --buffer-size 65535 --add-header "Connection: close" \
		--env "OS_KEYSTONE_CONFIG_FILES=$STATE/etc/keystone.conf"
	wait_http keystone "$KEYSTONE_URL"
}

start_glance() {
	spawn glance-api glance-api --config-file "$STATE/etc/glance-api.conf"
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

# bootstrap_identities creates, if missing, the service and demo projects,
# the glance and demo users, their roles, and Glance's catalog entry, with
# Keystone's REST API (one python process instead of a dozen CLI calls).
bootstrap_identities() {
	[ -e "$STATE/run/identities.done" ] && return 0
	log "creating projects, users, roles and the image endpoint"
	ADMIN_PW=$(password admin) GLANCE_PW=$(password glance) DEMO_PW=$(password demo) \
		KEYSTONE_URL=$KEYSTONE_URL GLANCE_URL=$GLANCE_URL "$PY" - <<'EOF'
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

projects = {p: ensure("projects", "project", p, {"domain_id": "default"}) for p in ("service", "demo")}
users = {
    "glance": ensure("users", "user", "glance", {"domain_id": "default", "password": os.environ["GLANCE_PW"]}),
    "demo": ensure("users", "user", "demo", {"domain_id": "default", "password": os.environ["DEMO_PW"]}),
}
roles = {r: find("roles", r) or ensure("roles", "role", r, {}) for r in ("admin", "member", "service")}
for user, project, role in (("glance", "service", "admin"), ("glance", "service", "service"),
                            ("demo", "demo", "member")):
    call("PUT", f"/projects/{projects[project]}/users/{users[user]}/roles/{roles[role]}", token=tok)
svc = find("services", "glance") or ensure("services", "service", "glance", {"type": "image"})
_, eps = call("GET", f"/endpoints?service_id={svc}", token=tok)
have = {e["interface"] for e in eps["endpoints"]}
for iface in ("public", "internal", "admin"):
    if iface not in have:
        call("POST", "/endpoints", {"endpoint": {"service_id": svc, "interface": iface,
                                                  "url": os.environ["GLANCE_URL"], "region_id": "RegionOne"}},
             token=tok)
EOF
	touch "$STATE/run/identities.done"
}

# --- client configuration -----------------------------------------------------

write_clouds_yaml() {
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

cmd_start() {
	local t0=$SECONDS
	make_dirs
	install_packages "${PACKAGES[@]}"
	write_keystone_conf
	write_glance_conf
	setup_keystone
	setup_glance
	if ! running keystone; then
		echo "$TOKEN_TTL" >"$STATE/run/token-ttl"
	fi
	start_keystone
	bootstrap_identities
	start_glance
	write_clouds_yaml
	log "Keystone $KEYSTONE_URL and Glance $GLANCE_URL up ($((SECONDS - t0)) s); state in $STATE"
}

cmd_status() {
	local ok=0 name
	for name in keystone glance-api; do
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
	fi
	return "$ok"
}

cmd_stop() {
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
start) locked cmd_start ;;
stop) locked cmd_stop ;;
status) cmd_status ;;
env) print_env "${2:-demo}" ;;
install)
	make_dirs
	locked install_packages "${PACKAGES[@]}"
	;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
