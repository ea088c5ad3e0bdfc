#!/bin/sh
# certbot deploy hook: runs after every successful issuance or renewal.
# nginx reads certificates only when it (re)loads its configuration, so a
# renewed certificate takes effect at the reload below. The reload follows a
# passing `nginx -t`; when the test fails, the running nginx keeps serving the
# old certificate and the hook fails, so certbot reports the error.
#
# deploy/tls-bootstrap.sh installs it as
#   /etc/letsencrypt/renewal-hooks/deploy/reconciler-nginx.sh
# certbot runs every executable in renewal-hooks/deploy/ after a renewal
# (not on `renew --dry-run`: run the hook by hand to check it).
set -eu

# Not $NGINX: nginx itself reads that variable (inherited sockets).
NGINX_BIN="${NGINX_BIN:-nginx}"

if ! out=$("$NGINX_BIN" -t 2>&1); then
	echo "certbot deploy hook: nginx -t failed; not reloading (nginx keeps the old certificate):" >&2
	echo "$out" >&2
	exit 1
fi
"$NGINX_BIN" -s reload
echo "certbot deploy hook: nginx reloaded for ${RENEWED_DOMAINS:-the renewed certificates}"
