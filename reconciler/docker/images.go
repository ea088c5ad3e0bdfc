package docker

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/developer-mesh/reconciler/state"
)

// ImagesInUse returns the image ID of every container on the host, of any
// state and owner.
func (r *Runtime) ImagesInUse(ctx context.Context) (map[string]bool, error) {
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make(map[string]bool, len(list))
	for _, c := range list {
		out[c.ImageID] = true
	}
	return out, nil
}

// ImageInfo is what retention needs to know of an image.
type ImageInfo = state.ImageInfo

// ImageInfo inspects the image id; found is false when it is gone.
func (r *Runtime) ImageInfo(ctx context.Context, id string) (info ImageInfo, found bool, err error) {
	img, err := r.cli.ImageInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return ImageInfo{}, false, nil
	}
	if err != nil {
		return ImageInfo{}, false, fmt.Errorf("inspect image %s: %w", state.ShortHash(id), err)
	}
	return ImageInfo{ID: img.ID, Tags: img.RepoTags, Size: img.Size}, true, nil
}

// RemoveImage removes each of info's tags and then the image, without
// force: the engine refuses to delete an image that any container uses,
// which backs up the caller's own check against a container created in the
// meantime.
func (r *Runtime) RemoveImage(ctx context.Context, info ImageInfo) error {
	refs := append(append([]string(nil), info.Tags...), info.ID)
	for _, ref := range refs {
		_, err := r.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove image %s (%s): %w", ref, state.ShortHash(info.ID), err)
		}
	}
	return nil
}
