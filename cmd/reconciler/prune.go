package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, pruneCmd) }

func pruneCmd(g *globals) *cobra.Command {
	var f envFlags
	var dryRun bool
	var lockTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "prune --env NAME [--dry-run]",
		Short: "Remove images the env's services ran that no container uses, beyond the last keepImages of each service (and unused name proxy images)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, e, err := loadEnv(ctx, f)
			if err != nil {
				g.log.Warn("desired state unavailable; keeping the default number of images", zap.Int("keepImages", state.DefaultKeepImages), zap.Error(err))
				e = &state.Env{Environment: f.env}
				e.Default()
			}
			h, unlock, err := lockedHost(ctx, g, e, "reconciler prune --env "+f.env, lockTimeout)
			if err != nil {
				return err
			}
			defer unlock()
			rep, err := h.retain(ctx, e.Environment, e.KeepImages, dryRun)
			rep.print(g.stdout, dryRun)
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only say what would be removed")
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 10*time.Minute, "how long to wait for an apply of the same env to finish")
	return cmd
}

// pruneReport is what retention removed (or would remove).
type pruneReport struct {
	Removed []prunedImage
	Kept    []string // why an image beyond keepImages stayed
	Freed   int64
}

type prunedImage struct {
	ID, Ref string
	Size    int64
}

func (r pruneReport) print(w io.Writer, dryRun bool) {
	verb, freed := "removed", "freed"
	if dryRun {
		verb, freed = "would remove", "would free"
	}
	for _, k := range r.Kept {
		fmt.Fprintf(w, "kept %s\n", k)
	}
	for _, im := range r.Removed {
		fmt.Fprintf(w, "%s %s (%s, %s)\n", verb, im.Ref, shortImageID(im.ID), humanBytes(im.Size))
	}
	fmt.Fprintf(w, "images: %s %d, %s %s\n", verb, len(r.Removed), freed, humanBytes(r.Freed))
}

// retain records the images env's containers run now as their services'
// most recent ones, and removes those of the env's image history beyond the
// last keep of each service that no container on the host uses and that
// carry no tag but ours.
func (h *host) retain(ctx context.Context, env string, keep int, dryRun bool) (pruneReport, error) {
	var rep pruneReport
	hist, err := h.dir.Images(env)
	if err != nil {
		return rep, err
	}
	snap, err := h.rt.Observe(ctx, env, nil)
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
	inUse, err := h.rt.ImagesInUse(ctx)
	if err != nil {
		return rep, err
	}
	refs := hist.Refs()
	var errs []error
	for _, u := range hist.Prunable(keep, inUse) {
		info, found, err := h.rt.ImageInfo(ctx, u.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !found {
			hist.Forget(u.ID)
			continue
		}
		if i := slices.IndexFunc(info.Tags, func(t string) bool { return !refs[t] }); i >= 0 {
			rep.Kept = append(rep.Kept, fmt.Sprintf("%s (%s): also tagged %s, which no service of %s ran", u.Ref, shortImageID(u.ID), info.Tags[i], env))
			continue
		}
		if !dryRun {
			if err := h.rt.RemoveImage(ctx, info); err != nil {
				errs = append(errs, err)
				continue
			}
			hist.Forget(u.ID)
		}
		rep.Removed = append(rep.Removed, prunedImage{ID: u.ID, Ref: u.Ref, Size: info.Size})
		rep.Freed += info.Size
	}
	// Name proxy images of earlier reconciler binaries that no proxy runs.
	proxies, err := h.rt.UnusedProxyImages(ctx, inUse)
	if err != nil {
		errs = append(errs, err)
	}
	for _, info := range proxies {
		if !dryRun {
			if err := h.rt.RemoveImage(ctx, info); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		ref := docker.ProxyImageRepo
		if len(info.Tags) > 0 {
			ref = info.Tags[0]
		}
		rep.Removed = append(rep.Removed, prunedImage{ID: info.ID, Ref: ref, Size: info.Size})
		rep.Freed += info.Size
	}
	if !dryRun {
		if err := h.dir.RecordImages(env, hist); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("prune images: %w", errors.Join(errs...))
	}
	return rep, nil
}

func shortImageID(id string) string {
	if len(id) > 19 {
		return id[:19] // "sha256:" and 12 hex digits
	}
	return id
}

// humanBytes is n in B, KB, MB or GB (powers of 1024).
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
