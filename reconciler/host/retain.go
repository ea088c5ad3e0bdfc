package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// PruneReport is what image retention removed (or, in a dry run, would
// remove).
type PruneReport struct {
	Removed []PrunedImage
	// Kept says why an image beyond keepImages stayed.
	Kept  []string
	Freed int64 // bytes
}

// PrunedImage is one image retention removed.
type PrunedImage struct {
	ID, Ref string
	Size    int64
}

// Print writes the report, one line per image and a total.
func (r PruneReport) Print(w io.Writer, dryRun bool) {
	verb, freed := "removed", "freed"
	if dryRun {
		verb, freed = "would remove", "would free"
	}
	for _, k := range r.Kept {
		fmt.Fprintf(w, "kept %s\n", k)
	}
	for _, im := range r.Removed {
		fmt.Fprintf(w, "%s %s (%s, %s)\n", verb, im.Ref, state.ShortImageID(im.ID), state.HumanBytes(im.Size))
	}
	fmt.Fprintf(w, "images: %s %d, %s %s\n", verb, len(r.Removed), freed, state.HumanBytes(r.Freed))
}

// Retain records the images env's containers run now as their services'
// most recent ones, and removes those of the env's image history beyond the
// last keep of each service that no container on the host uses and that
// carry no tag but ours; then the name proxy images no proxy runs. With
// dryRun it removes nothing and records nothing.
func (h *Host) Retain(ctx context.Context, env string, keep int, dryRun bool) (PruneReport, error) {
	var rep PruneReport
	hist, err := h.Dir.Images(env)
	if err != nil {
		return rep, err
	}
	snap, err := h.Runtime.Observe(ctx, env, nil)
	if err != nil {
		return rep, err
	}
	ours := snap.Containers
	now := time.Now().UTC()
	// Older first, so the newest container's image ends up first.
	slices.SortStableFunc(ours, func(a, b state.Container) int { return a.StartedAt.Compare(b.StartedAt) })
	for _, c := range ours {
		if c.Running() && c.ImageID != "" && c.Spec.Image != "" {
			hist.Record(c.Service, state.ImageUse{ID: c.ImageID, Ref: c.Spec.Image, Last: now})
		}
	}
	inUse, err := h.Runtime.ImagesInUse(ctx)
	if err != nil {
		return rep, err
	}
	refs := hist.Refs()
	var errs []error
	for _, u := range hist.Prunable(keep, inUse) {
		info, found, err := h.Runtime.ImageInfo(ctx, u.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !found {
			hist.Forget(u.ID)
			continue
		}
		if i := slices.IndexFunc(info.Tags, func(t string) bool { return !refs[t] }); i >= 0 {
			rep.Kept = append(rep.Kept, fmt.Sprintf("%s (%s): also tagged %s, which no service of %s ran", u.Ref, state.ShortImageID(u.ID), info.Tags[i], env))
			continue
		}
		if !dryRun {
			if err := h.Runtime.RemoveImage(ctx, info); err != nil {
				errs = append(errs, err)
				continue
			}
			hist.Forget(u.ID)
		}
		rep.Removed = append(rep.Removed, PrunedImage{ID: u.ID, Ref: u.Ref, Size: info.Size})
		rep.Freed += info.Size
	}
	// Name proxy images of earlier reconciler binaries that no proxy runs.
	proxies, err := h.Runtime.UnusedProxyImages(ctx, inUse)
	if err != nil {
		errs = append(errs, err)
	}
	for _, info := range proxies {
		if !dryRun {
			if err := h.Runtime.RemoveImage(ctx, info); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		ref := state.ShortImageID(info.ID)
		if len(info.Tags) > 0 {
			ref = info.Tags[0]
		}
		rep.Removed = append(rep.Removed, PrunedImage{ID: info.ID, Ref: ref, Size: info.Size})
		rep.Freed += info.Size
	}
	if !dryRun {
		if err := h.Dir.RecordImages(env, hist); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("prune images: %w", errors.Join(errs...))
	}
	return rep, nil
}
