// Package github reads the CI results of a commit from the GitHub REST API
// (check runs and commit statuses), so that the agent deploys only commits
// whose required checks passed: the plan's first pre-deploy check, "verify
// CI has passed".
package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultAPI is GitHub's REST API.
const DefaultAPI = "https://api.github.com"

// maxPages bounds the pages of check runs read per commit (100 a page).
const maxPages = 10

var (
	// ErrPending is matched (errors.Is) when a required check has not
	// finished, or has not reported yet: ask again later.
	ErrPending = errors.New("required checks have not finished")
	// ErrFailed is matched when a required check finished without
	// passing: the commit must not be deployed.
	ErrFailed = errors.New("required checks did not pass")
	// ErrAPI is matched when the API could not be read (network, token,
	// rate limit): nothing is known about the checks.
	ErrAPI = errors.New("GitHub API")
)

// Checks reads the required checks of commits of one repository.
type Checks struct {
	// API is the REST API's base URL; DefaultAPI when empty.
	API string
	// Repo is "owner/name".
	Repo string
	// Token authenticates (a fine-grained token with read access to checks
	// and commit statuses; empty for a public repository). It is sent only
	// in the Authorization header and never appears in an error.
	Token string
	// Required are the names of the check runs or status contexts that must
	// pass, as branch protection names them ("test", "lint").
	Required []string
	// Client makes the requests; a client with a 30s timeout when nil.
	Client *http.Client
}

// Verify returns nil when every required check of the commit sha passed: a
// check run completed with conclusion success, neutral or skipped (what
// branch protection accepts), or a commit status in state success. When a
// name has several check runs (re-runs), the newest counts. Otherwise the
// error wraps ErrFailed (some finished and failed: named with their
// conclusion), ErrPending (some not finished or not reported) or ErrAPI.
func (c *Checks) Verify(ctx context.Context, sha string) error {
	if len(c.Required) == 0 {
		return nil
	}
	runs, err := c.checkRuns(ctx, sha)
	if err != nil {
		return err
	}
	statuses, err := c.statuses(ctx, sha)
	if err != nil {
		return err
	}
	var failed, pending []string
	for _, name := range c.Required {
		if r, ok := runs[name]; ok {
			switch {
			case r.Status != "completed":
				pending = append(pending, fmt.Sprintf("%s (%s)", name, r.Status))
			case r.Conclusion == "success" || r.Conclusion == "neutral" || r.Conclusion == "skipped":
			default:
				failed = append(failed, fmt.Sprintf("%s (%s)", name, r.Conclusion))
			}
			continue
		}
		switch st, ok := statuses[name]; {
		case !ok:
			pending = append(pending, name+" (not reported)")
		case st == "success":
		case st == "pending":
			pending = append(pending, name+" (pending)")
		default:
			failed = append(failed, fmt.Sprintf("%s (%s)", name, st))
		}
	}
	short := sha
	if len(short) > 12 {
		short = short[:12]
	}
	if len(failed) > 0 {
		return fmt.Errorf("commit %s: %w: %s", short, ErrFailed, strings.Join(failed, ", "))
	}
	if len(pending) > 0 {
		return fmt.Errorf("commit %s: %w: %s", short, ErrPending, strings.Join(pending, ", "))
	}
	return nil
}

type checkRun struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	Conclusion string `json:"conclusion"`
}

// checkRuns returns the newest check run of each name.
func (c *Checks) checkRuns(ctx context.Context, sha string) (map[string]checkRun, error) {
	out := map[string]checkRun{}
	for page := 1; page <= maxPages; page++ {
		var res struct {
			TotalCount int        `json:"total_count"`
			CheckRuns  []checkRun `json:"check_runs"`
		}
		if err := c.get(ctx, fmt.Sprintf("/repos/%s/commits/%s/check-runs?per_page=100&page=%d", c.Repo, url.PathEscape(sha), page), &res); err != nil {
			return nil, err
		}
		for _, r := range res.CheckRuns {
			if old, ok := out[r.Name]; !ok || r.ID > old.ID {
				out[r.Name] = r
			}
		}
		if len(res.CheckRuns) < 100 || page*100 >= res.TotalCount {
			break
		}
	}
	return out, nil
}

// statuses returns the latest state of each status context (the combined
// status lists one per context, the newest).
func (c *Checks) statuses(ctx context.Context, sha string) (map[string]string, error) {
	var res struct {
		Statuses []struct {
			Context string `json:"context"`
			State   string `json:"state"`
		} `json:"statuses"`
	}
	if err := c.get(ctx, fmt.Sprintf("/repos/%s/commits/%s/status?per_page=100", c.Repo, url.PathEscape(sha)), &res); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range res.Statuses {
		out[s.Context] = s.State
	}
	return out, nil
}

func (c *Checks) get(ctx context.Context, path string, v any) error {
	api := strings.TrimRight(c.API, "/")
	if api == "" {
		api = DefaultAPI
	}
	client := c.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+path, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAPI, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	req.Header.Set("User-Agent", "reconciler")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	endpoint, _, _ := strings.Cut(path, "?")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the message below already
		}
		return fmt.Errorf("%w: GET %s: %v", ErrAPI, endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrAPI, endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("%w: GET %s: status %d: %s", ErrAPI, endpoint, resp.StatusCode, e.Message)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrAPI, endpoint, err)
	}
	return nil
}

// RepoFromURL returns "owner/name" of a github.com remote URL
// (https://github.com/owner/name(.git), ssh://git@github.com/owner/name,
// git@github.com:owner/name.git), or "" for another host.
func RepoFromURL(remote string) string {
	rest := ""
	switch {
	case strings.HasPrefix(remote, "git@github.com:"):
		rest = strings.TrimPrefix(remote, "git@github.com:")
	default:
		u, err := url.Parse(remote)
		if err != nil || !strings.EqualFold(u.Hostname(), "github.com") {
			return ""
		}
		rest = strings.TrimPrefix(u.Path, "/")
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(rest, "/"), ".git"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return ""
	}
	return parts[0] + "/" + parts[1]
}
