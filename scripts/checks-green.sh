#!/usr/bin/env bash
# Refuses a commit whose required GitHub checks are not green, for
# .github/workflows/deployment.yml ("verify CI has passed" before anything is
# deployed). The same rule as the agent's --require-checks
# (reconciler/github): a required name passes when its newest check run
# completed with success, neutral or skipped, or, when no check run has that
# name, when its commit status is success.
#
#   exits 0 when every required check passed;
#   exits 1 at once when one failed (any other conclusion or state);
#   polls while one is queued, in progress, pending or not reported yet
#     (CI runs on the push to main at the same time as the deploy), and
#     exits 1 after TIMEOUT seconds;
#   exits 1 at once when the API answers with an error.
#
# Environment: REPO (owner/name), COMMIT (40 hex), REQUIRED (check names,
# comma-separated, e.g. lint,test,validate; empty is an error: a gate that
# checks nothing is a mistake), GH_TOKEN (needs checks: read and statuses:
# read), API (default https://api.github.com), TIMEOUT (default 1800), POLL
# (default 15).
set -euo pipefail

: "${REPO:?}" "${COMMIT:?}"
REQUIRED="${REQUIRED:-}"
GH_TOKEN="${GH_TOKEN:-}"
API="${API:-https://api.github.com}"
API="${API%/}"
TIMEOUT="${TIMEOUT:-1800}"
POLL="${POLL:-15}"

if ! [[ "$REPO" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]]; then
	echo "REPO: want owner/name, got '$REPO'" >&2; exit 1
fi
if ! [[ "$COMMIT" =~ ^[0-9a-f]{40}$ ]]; then
	echo "COMMIT: want 40 hex digits, got '$COMMIT'" >&2; exit 1
fi
names=()
IFS=, read -ra raw <<<"$REQUIRED"
for n in "${raw[@]}"; do
	n="${n#"${n%%[![:space:]]*}"}"; n="${n%"${n##*[![:space:]]}"}"
	[ -z "$n" ] || names+=("$n")
done
if [ "${#names[@]}" -eq 0 ]; then
	echo "REQUIRED: no check names (set vars.DEPLOY_REQUIRED_CHECKS, e.g. lint,test,validate)" >&2; exit 1
fi

hdr=(-H 'Accept: application/vnd.github+json' -H 'X-GitHub-Api-Version: 2022-11-28')
if [ -n "$GH_TOKEN" ]; then
	hdr+=(-H "Authorization: Bearer $GH_TOKEN")
fi
# get PATH: the JSON body, or exit 1 naming the endpoint and the status.
get() {
	local body code
	body=$(mktemp)
	code=$(curl -sS --max-time 30 -o "$body" -w '%{http_code}' "${hdr[@]}" "$API$1") || code=000
	if [ "$code" != 200 ]; then
		echo "GitHub API ${1%%\?*}: HTTP $code: $(head -c 300 "$body")" >&2
		rm -f "$body"; exit 1
	fi
	cat "$body"; rm -f "$body"
}

# join A B C: "A, B, C".
join() {
	local out="$1"
	shift
	for x in "$@"; do out+=", $x"; done
	echo "$out"
}

short=${COMMIT::12}
deadline=$((SECONDS + TIMEOUT))
while :; do
	# The newest check run of each name (by id), over up to 10 pages.
	runs='[]'
	for page in 1 2 3 4 5 6 7 8 9 10; do
		res=$(get "/repos/$REPO/commits/$COMMIT/check-runs?per_page=100&page=$page")
		runs=$(jq -c --argjson acc "$runs" '$acc + [(.check_runs // [])[] | {id, name, status, conclusion}]' <<<"$res")
		n=$(jq '.check_runs // [] | length' <<<"$res")
		total=$(jq '.total_count // 0' <<<"$res")
		if [ "$n" -lt 100 ] || [ $((page * 100)) -ge "$total" ]; then break; fi
	done
	statuses=$(get "/repos/$REPO/commits/$COMMIT/status?per_page=100")
	failed=() pending=()
	for name in "${names[@]}"; do
		verdict=$(jq -rn --arg n "$name" --argjson runs "$runs" --argjson st "$statuses" '
			([$runs[] | select(.name == $n)] | max_by(.id)) as $r
			| if $r != null then
				if $r.status != "completed" then "pending \($r.status)"
				elif ($r.conclusion | IN("success", "neutral", "skipped")) then "ok"
				else "failed \($r.conclusion)" end
			  else
				([$st.statuses[]? | select(.context == $n)] | first) as $s
				| if $s == null then "pending not reported"
				  elif $s.state == "success" then "ok"
				  elif $s.state == "pending" then "pending pending"
				  else "failed \($s.state)" end
			  end')
		case "$verdict" in
		ok) ;;
		failed*) failed+=("$name (${verdict#failed })") ;;
		*) pending+=("$name (${verdict#pending })") ;;
		esac
	done
	if [ "${#failed[@]}" -gt 0 ]; then
		echo "commit $short: required checks did not pass: $(join "${failed[@]}")" >&2
		exit 1
	fi
	if [ "${#pending[@]}" -eq 0 ]; then
		echo "commit $short: required checks passed: ${names[*]}" >&2
		exit 0
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "commit $short: timed out after ${TIMEOUT}s: required checks have not finished: $(join "${pending[@]}")" >&2
		exit 1
	fi
	sleep "$POLL"
done
