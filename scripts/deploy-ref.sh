#!/usr/bin/env bash
# The approval gate of .github/workflows/deployment.yml: the per-environment
# deploy refs that the staging and prod agents follow
# (`reconciler run --ref deploy/prod`). Only the deploy job that passed the
# GitHub environment's approval runs `move`, so a commit reaches those agents
# only approved. Run inside a clone whose remote "origin" is the repository.
#
#   deploy-ref.sh check   fetches and checks, changes nothing; prints the
#                         branch the environment's agent follows
#   deploy-ref.sh move    checks again (the refs may have moved during the
#                         approval), then pushes COMMIT to deploy/ENV
#
# The rules, per environment:
#   dev      follows SOURCE (main) and deploys at once: nothing to move;
#   staging  deploy/staging;
#   prod     deploy/prod, and only a commit that deploy/staging already
#            contains (staging goes first for the same commit);
#   another  refused: add it here.
# Every commit must be on SOURCE. The deploy ref moves forward only (to
# COMMIT or a descendant of where it is); ROLLBACK=true lets it go back,
# with a lease on the value it was checked at.
#
# Environment: ENV_NAME, COMMIT (40 hex), SOURCE (default main), ROLLBACK
# (true or false, default false), PUSH_TOKEN (optional): the token that may
# update deploy/* (the workflow's DEPLOY_REF_TOKEN). It is given to git as
# an HTTP basic-auth header through GIT_CONFIG_* variables, never on a
# command line, and it replaces the header actions/checkout left in the
# clone's config (the job's read-only GITHUB_TOKEN).
set -euo pipefail

cmd="${1:-}"
: "${ENV_NAME:?}" "${COMMIT:?}"
SOURCE="${SOURCE:-main}"
ROLLBACK="${ROLLBACK:-false}"

case "$cmd" in check|move) ;; *)
	echo "usage: deploy-ref.sh check|move (got '$cmd')" >&2; exit 2 ;;
esac
if ! [[ "$COMMIT" =~ ^[0-9a-f]{40}$ ]]; then
	echo "COMMIT: want 40 hex digits, got '$COMMIT'" >&2; exit 1
fi
case "$ENV_NAME" in
dev) ref=; after= ;;
staging) ref=deploy/staging; after= ;;
prod) ref=deploy/prod; after=deploy/staging ;;
*) echo "environment $ENV_NAME: no deploy ref rule (scripts/deploy-ref.sh knows dev, staging and prod)" >&2; exit 1 ;;
esac

export GIT_TERMINAL_PROMPT=0
if [ -n "${PUSH_TOKEN:-}" ]; then
	url=$(git remote get-url origin)
	if ! [[ "$url" =~ ^(https?://[^/]+/) ]]; then
		echo "PUSH_TOKEN needs an http(s) origin, got $url" >&2; exit 1
	fi
	key="http.${BASH_REMATCH[1]}.extraheader"
	auth=$(printf 'x-access-token:%s' "$PUSH_TOKEN" | base64 -w0)
	# An empty value first: it drops the headers configured before.
	export GIT_CONFIG_COUNT=2 GIT_CONFIG_KEY_0="$key" GIT_CONFIG_VALUE_0="" \
		GIT_CONFIG_KEY_1="$key" GIT_CONFIG_VALUE_1="AUTHORIZATION: basic $auth"
fi

# tip BRANCH: the commit of origin's BRANCH after a fetch, or nothing when
# origin has no such branch.
tip() {
	local out
	out=$(git ls-remote --heads origin "refs/heads/$1") || { echo "git ls-remote origin $1 failed" >&2; exit 1; }
	out=${out%%[[:space:]]*}
	if [ -n "$out" ]; then
		git fetch -q origin "+refs/heads/$1:refs/remotes/origin/$1"
	fi
	echo "$out"
}
# contains TIP: 0 when TIP is COMMIT or a descendant of it.
contains() {
	[ -n "$1" ] && git merge-base --is-ancestor "$COMMIT" "$1"
}

src=$(tip "$SOURCE")
if [ -z "$src" ]; then
	echo "origin has no branch $SOURCE" >&2; exit 1
fi
if ! git cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
	echo "$COMMIT is not a commit of this repository" >&2; exit 1
fi
if ! contains "$src"; then
	echo "$COMMIT is not on $SOURCE: only commits of $SOURCE are deployed; a hotfix is a PR to $SOURCE" >&2; exit 1
fi
if [ -z "$ref" ]; then
	echo "$ENV_NAME follows $SOURCE: no deploy ref to move" >&2
	echo "$SOURCE"
	exit 0
fi
if [ -n "$after" ]; then
	prev=$(tip "$after")
	if ! contains "$prev"; then
		echo "$COMMIT is not on $after (${prev:-absent}): deploy it to ${after#deploy/} first, then to $ENV_NAME" >&2; exit 1
	fi
fi
old=$(tip "$ref")
if [ -n "$old" ] && [ "$old" != "$COMMIT" ] && ! git merge-base --is-ancestor "$old" "$COMMIT"; then
	if [ "$ROLLBACK" != true ]; then
		echo "$ref is at $old, which $COMMIT does not contain: moving it there would go back; rerun with rollback to allow it" >&2; exit 1
	fi
	echo "$ref goes back from $old to $COMMIT (rollback)" >&2
fi

if [ "$cmd" = check ]; then
	echo "$ENV_NAME follows $ref, now ${old:-absent}; $COMMIT may go there" >&2
	echo "$ref"
	exit 0
fi
if [ "$old" = "$COMMIT" ]; then
	echo "$ref is already at $COMMIT" >&2
	echo "$ref"
	exit 0
fi
# The lease: push only if the ref is still where it was checked.
git push -q --force-with-lease="refs/heads/$ref:$old" origin "$COMMIT:refs/heads/$ref"
echo "$ref moved from ${old:-absent} to $COMMIT" >&2
echo "$ref"
