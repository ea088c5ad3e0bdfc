package state

import (
	"cmp"
	"slices"
	"time"
)

// ImageUse is an image a service ran on this host.
type ImageUse struct {
	ID   string    `json:"id"`  // local image ID (sha256:...)
	Ref  string    `json:"ref"` // the reference it was deployed as
	Last time.Time `json:"last"`
}

// ImageHistory is, per service, the images it ran, most recent first, each
// ID once. reconciler keeps one per environment in its state dir, because
// the labels of a removed container are gone with it.
type ImageHistory map[string][]ImageUse

// Record puts u first in service's list, dropping an older entry with the
// same ID.
func (h ImageHistory) Record(service string, u ImageUse) {
	list := slices.DeleteFunc(slices.Clone(h[service]), func(o ImageUse) bool { return o.ID == u.ID })
	h[service] = append([]ImageUse{u}, list...)
}

// Prunable returns the images that retention may remove: those beyond the
// first keep of every service that ran them, and not in inUse (image IDs
// of every container on the host, ours or not). Sorted by ID, each once.
func (h ImageHistory) Prunable(keep int, inUse map[string]bool) []ImageUse {
	kept := map[string]bool{}
	for _, list := range h {
		for i, u := range list {
			if i < keep {
				kept[u.ID] = true
			}
		}
	}
	seen := map[string]bool{}
	var out []ImageUse
	for _, svc := range SortedKeys(h) {
		for _, u := range h[svc] {
			if kept[u.ID] || inUse[u.ID] || seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b ImageUse) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Forget drops the image id from every service's list.
func (h ImageHistory) Forget(id string) {
	for svc, list := range h {
		h[svc] = slices.DeleteFunc(list, func(u ImageUse) bool { return u.ID == id })
		if len(h[svc]) == 0 {
			delete(h, svc)
		}
	}
}

// Refs returns every reference the history names, for telling our tags
// from other people's.
func (h ImageHistory) Refs() map[string]bool {
	out := map[string]bool{}
	for _, list := range h {
		for _, u := range list {
			out[u.Ref] = true
		}
	}
	return out
}
