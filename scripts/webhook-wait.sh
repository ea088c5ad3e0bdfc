#!/usr/bin/env bash
# Waits until the host agent (reconciler run) has applied COMMIT, for the
# webhook mode of .github/workflows/deployment.yml. Run inside a clone of the
# repository whose remote "origin" has the branch the agent follows.
#
# The agent deploys the tip of its branch, so COMMIT is live once the
# applied commit is COMMIT or a descendant of it (main moved on after the
# merge, or a tag that is not the tip). It polls $URL/status and
#   exits 0 when appliedCommit is COMMIT or contains it;
#   exits 1 at once when the agent failed COMMIT, when a failed tip
#     contains COMMIT (the agent does not retry it), or when COMMIT is not
#     an ancestor of the branch tip (the agent will never deploy it);
#   exits 1 after TIMEOUT seconds otherwise.
#
# Environment: URL (the agent behind nginx, e.g. https://api.dev-mesh.io:8443),
# COMMIT (40 hex), BRANCH, STATUS_TOKEN (bearer token of /status; may be
# empty), TIMEOUT (default 1500), POLL (default 10). The last status goes to
# stdout.
set -euo pipefail

: "${URL:?}" "${COMMIT:?}" "${BRANCH:?}"
STATUS_TOKEN="${STATUS_TOKEN:-}"
TIMEOUT="${TIMEOUT:-1500}"
POLL="${POLL:-10}"

# contains A B: 0 when B is A or a descendant of A, 1 when not, 2 when it
# cannot tell (B is not known here even after fetching the branch: B was
# pushed after this clone was made).
contains() {
	[ "$1" = "$2" ] && return 0
	if ! git cat-file -e "$2^{commit}" 2>/dev/null; then
		git fetch -q origin "+refs/heads/$BRANCH:refs/remotes/origin/$BRANCH" >&2 || true
		git cat-file -e "$2^{commit}" 2>/dev/null || return 2
	fi
	local rc=0
	git merge-base --is-ancestor "$1" "$2" || rc=$?
	[ "$rc" -le 1 ] || return 2
	return "$rc"
}

auth=()
if [ -n "$STATUS_TOKEN" ]; then
	auth=(-H "Authorization: Bearer $STATUS_TOKEN")
fi
deadline=$((SECONDS + TIMEOUT))
status='{}'
while :; do
	status=$(curl -fsS --max-time 10 "${auth[@]}" "$URL/status" || echo '{}')
	applied=$(jq -r '.appliedCommit // ""' <<<"$status")
	failed=$(jq -r '.failedCommit // ""' <<<"$status")
	tip=$(jq -r '.desiredCommit // ""' <<<"$status")
	if [ -n "$applied" ] && contains "$COMMIT" "$applied"; then
		echo "$status"
		echo "applied: $applied contains $COMMIT" >&2
		exit 0
	fi
	if [ -n "$failed" ] && contains "$COMMIT" "$failed"; then
		echo "$status"
		echo "the agent failed $failed, which contains $COMMIT (it is not retried; see lastError)" >&2
		exit 1
	fi
	rc=0
	[ -z "$tip" ] || contains "$COMMIT" "$tip" || rc=$?
	if [ "$rc" -eq 1 ]; then
		echo "$status"
		echo "$COMMIT is not an ancestor of the tip $tip of $BRANCH: the agent will never deploy it" >&2
		exit 1
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "$status"
		echo "timed out after ${TIMEOUT}s waiting for the agent to apply $COMMIT" >&2
		exit 1
	fi
	sleep "$POLL"
done
