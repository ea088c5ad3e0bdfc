#!/bin/sh
# The first Let's Encrypt certificates on a fresh host, before reconciler
# deploys a TLS site (`nginx -t` refuses a site whose certificate files do
# not exist yet, so they must come first).
#
#   sh deploy/tls-bootstrap.sh EMAIL DOMAIN...
#   sh deploy/tls-bootstrap.sh ops@dev-mesh.io mcp.dev-mesh.io api.dev-mesh.io
#
# What it does, as root:
#   1. creates the webroot /var/www/letsencrypt and certbot's deploy-hook
#      directory (certbot creates it only on its first run), and installs
#      certbot-deploy-hook.sh there, so that every renewal reloads nginx
#      after a passing `nginx -t`;
#   2. adds a temporary port-80 server for the domains that answers ACME
#      HTTP-01 challenges from the webroot (Debian's default site would
#      answer them from /var/www/html), and reloads nginx;
#   3. runs `certbot certonly --webroot` for each domain (not --standalone:
#      nginx keeps port 80, and renewals use the same webroot through the
#      port-80 server reconciler writes for a TLS service);
#   4. removes the temporary server and reloads nginx, also on failure.
#
# Renewals then run from certbot's timer through reconciler's port-80
# server. `certbot renew --dry-run` checks the challenge path but does not
# run deploy hooks: check the hook by running it (docs/install-checklist.md).
#
# For tests, the environment may override NGINX_BIN, CERTBOT, CONF_DIR,
# WEBROOT, HOOK_DIR and LISTEN.
set -eu

NGINX_BIN="${NGINX_BIN:-nginx}"
CERTBOT="${CERTBOT:-certbot}"
CONF_DIR="${CONF_DIR:-/etc/nginx/conf.d}"
WEBROOT="${WEBROOT:-/var/www/letsencrypt}"
HOOK_DIR="${HOOK_DIR:-/etc/letsencrypt/renewal-hooks/deploy}"
LISTEN="${LISTEN:-80}"

if [ $# -lt 2 ]; then
	echo "usage: $0 EMAIL DOMAIN..." >&2
	exit 2
fi
email=$1
shift
for d in "$@"; do
	case $d in
	*[!a-z0-9.-]* | "" | .* | *..*)
		echo "tls-bootstrap: not a domain name: '$d'" >&2
		exit 2
		;;
	esac
done

here=$(dirname "$0")
install -d -m 0755 "$WEBROOT" "$HOOK_DIR"
install -m 0755 "$here/certbot-deploy-hook.sh" "$HOOK_DIR/reconciler-nginx.sh"

reload() {
	if ! out=$("$NGINX_BIN" -t 2>&1); then
		echo "tls-bootstrap: nginx -t failed; not reloading:" >&2
		echo "$out" >&2
		return 1
	fi
	"$NGINX_BIN" -s reload
}

site="$CONF_DIR/reconciler-acme-bootstrap.conf"
cat >"$site" <<SITE
# Temporary: written by deploy/tls-bootstrap.sh, removed when it ends.
server {
    listen $LISTEN;
    server_name $*;
    location ^~ /.well-known/acme-challenge/ {
        root $WEBROOT;
        default_type text/plain;
    }
    location / {
        return 404;
    }
}
SITE
cleanup() {
	rm -f "$site"
	reload || echo "tls-bootstrap: remove $site by hand and reload nginx" >&2
}
trap cleanup EXIT
trap 'exit 1' INT TERM
if ! reload; then
	exit 1
fi

for d in "$@"; do
	"$CERTBOT" certonly --webroot -w "$WEBROOT" -d "$d" \
		--email "$email" --agree-tos --non-interactive --keep-until-expiring
done
echo "tls-bootstrap: certificates for $* are in /etc/letsencrypt/live/"
